"""The search index behind the query language: which fields it holds, how a record becomes rows, reindexing.

A record's *search document* is its GET representation's stored fields (``search_document``). Fields whose
column compares exactly as the document's value does (strings, numbers, booleans, the creator's username)
are queried on their own columns (``records.query``); every other field — JSON fields above all, and values
the API renders as strings from another type (datetimes, UUIDs) — is shredded into ``SearchEntry`` rows:

* each JSON value gets one row per path that reaches it, spelled the way a query names it. MongoDB's
  array traversal is expanded at write time: a value inside ``items[2]`` is reachable as ``items.b`` and
  as ``items.2.b``; the elements of an array reached by a path also get an ``is_element`` row at that path
  (one level, as in MongoDB: ``{"tags": "x"}`` matches ``["x"]`` but not ``[["x"]]``);
* a path can name at most ``MAX_POSITIONS`` array positions, which bounds the rows a deeply nested
  document can produce; keys containing ``"."`` can't be named by a path and are not indexed.
"""
import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import connections, models, router, transaction

from records.documents import INDEXED, USER, document_fields, how_queried, render_value
from records.models import KEY_LENGTH, PATH_LENGTH, RecordModel, SearchEntry, ValueKind

#: The most array positions (numeric components) one path may use; deeper combinations aren't indexed.
MAX_POSITIONS = 4

@dataclass(frozen=True)
class FieldSpec:
    """How a top-level field of the search document is queried."""

    name: str
    how: str  # STRING/NUMBER/BOOL: its own column; USER: the creator's username; INDEXED: SearchEntry rows
    column: str  # the ORM name of the column (attname for USER)
    nullable: bool
    is_json: bool


_specs: dict[type, dict[str, FieldSpec]] = {}


def field_specs(model: type[models.Model]) -> dict[str, FieldSpec]:
    """The queryable top-level fields of ``model``, by name (those of its search document)."""
    specs = _specs.get(model)
    if specs is None:
        specs = {}
        for field in document_fields(model):
            specs[field.name] = FieldSpec(field.name, how_queried(field), field.attname if how_queried(field) == USER else field.name,
                                          field.null, isinstance(field, models.JSONField))
        _specs[model] = specs
    return specs


def indexed_field_names(model: type[models.Model]) -> list[str]:
    return [spec.name for spec in field_specs(model).values() if spec.how == INDEXED]


# --- values as rows ----------------------------------------------------------------------------------------

def canonical(value) -> str:
    """A JSON text equal for values MongoDB (and mongomock) call equal: key order ignored, 2 == 2.0."""

    def normal(v):
        if isinstance(v, dict):
            return {str(k): normal(x) for k, x in v.items()}
        if isinstance(v, list):
            return [normal(x) for x in v]
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v

    return json.dumps(normal(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()


def to_number(value) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond a double's range (math.copysign would convert it too)
        return math.inf if value > 0 else -math.inf


def value_columns(value) -> tuple[int, float | None, str | None, str | None]:
    """(kind, num, key, text) of one JSON value."""
    if value is None:
        return ValueKind.NULL, None, None, None
    if isinstance(value, bool):
        return ValueKind.BOOL, float(value), None, None
    if isinstance(value, (int, float)):
        return ValueKind.NUMBER, to_number(value), None, None
    if isinstance(value, str):
        return ValueKind.STRING, None, value[:KEY_LENGTH], value if len(value) > KEY_LENGTH else None
    if isinstance(value, dict):
        return ValueKind.OBJECT, None, digest(value), None
    if isinstance(value, list):
        return ValueKind.ARRAY, float(len(value)), digest(value), None
    return ValueKind.STRING, None, str(value)[:KEY_LENGTH], str(value) if len(str(value)) > KEY_LENGTH else None


def is_position(component: str) -> bool:
    """A path component that addresses an array element (a canonical non-negative integer)."""
    return component.isdigit() and component.isascii() and (component == "0" or component[0] != "0")


Row = tuple  # (path, node, subtree_end, parent, is_element, kind, num, key, text)


def document_rows(document: dict, names: Iterable[str]) -> list[Row]:
    """The index rows of the fields ``names`` of a search document."""
    rows: list[Row] = []
    counter = [0]
    for name in names:
        if name in document:
            _walk(document[name], [(name, 0)], [], 0, counter, rows)
    return rows


def _walk(value, spellings, element_spellings, parent, counter, rows) -> int:
    """Adds the rows of ``value`` and its descendants; returns the last node number used in its subtree.

    ``spellings`` are the paths (with how many positions each uses) that name ``value`` itself;
    ``element_spellings`` those that name the array ``value`` is an element of.
    """
    counter[0] += 1
    node = counter[0]
    kind, num, key, text = value_columns(value)
    start = len(rows)
    for path, _ in spellings:
        rows.append([path, node, 0, parent, False, kind, num, key, text])
    for path, _ in element_spellings:
        rows.append([path, node, 0, parent, True, kind, num, key, text])
    end = len(rows)
    if isinstance(value, dict):
        for name, child in value.items():
            if not isinstance(name, str) or "." in name:
                continue  # no dotted path can name it
            # In an array element, a numeric component is read as a position (MongoDB and mongomock).
            named = spellings + ([] if is_position(name) else element_spellings)
            child_spellings = [(f"{path}.{name}", used) for path, used in named
                               if len(path) + 1 + len(name) <= PATH_LENGTH]
            if child_spellings:
                _walk(child, child_spellings, [], node, counter, rows)
            else:
                counter[0] = _skip(child, counter[0])
    elif isinstance(value, list):
        for position, child in enumerate(value):
            suffix = str(position)
            child_spellings = [(f"{path}.{suffix}", used + 1) for path, used in spellings
                               if used < MAX_POSITIONS and len(path) + 1 + len(suffix) <= PATH_LENGTH]
            # Elements are matched at the array's own paths, one level deep only.
            _walk(child, child_spellings, spellings, node, counter, rows)
    last = counter[0]
    for row in rows[start:end]:
        row[2] = last
    return last


def _skip(value, counter: int) -> int:
    """Numbers the nodes of a subtree that no path reaches, keeping the numbering of its siblings stable."""
    counter += 1
    if isinstance(value, dict):
        for child in value.values():
            counter = _skip(child, counter)
    elif isinstance(value, list):
        for child in value:
            counter = _skip(child, counter)
    return counter


def record_entries(instance: models.Model, content_type_id: int | None = None) -> list[SearchEntry]:
    model = type(instance)
    if content_type_id is None:
        content_type_id = ContentType.objects.get_for_model(model).pk
    names = indexed_field_names(model)
    document = {name: render_value(instance, model._meta.get_field(name)) for name in names}
    return [
        SearchEntry(content_type_id=content_type_id, object_id=instance.pk, path=r[0], node=r[1], subtree_end=r[2],
                    parent=r[3], is_element=r[4], kind=r[5], num=r[6], key=r[7], text=r[8])
        for r in document_rows(document, names)
    ]


# --- maintenance ---------------------------------------------------------------------------------------------

def index_record(instance: models.Model, update_fields: Iterable[str] | None = None) -> None:
    """Replaces the rows of one record (called on every save; see ``records.signals``).

    A save limited to ``update_fields`` that touches no JSON field (a status change, a timestamp) updates
    the leaf rows of those fields in place: a lifecycle transition should not rewrite a record's index.
    """
    model = type(instance)
    using = instance._state.db or router.db_for_write(model)
    content_type_id = ContentType.objects.db_manager(using).get_for_model(model).pk
    if update_fields is not None:
        changed = [name for name in update_fields if name in set(indexed_field_names(model))]
        if all(not isinstance(model._meta.get_field(name), models.JSONField) for name in changed):
            for name in changed:
                kind, num, key, text = value_columns(render_value(instance, model._meta.get_field(name)))
                SearchEntry.objects.using(using).filter(
                    content_type_id=content_type_id, object_id=instance.pk, path=name
                ).update(kind=kind, num=num, key=key, text=text)
            return
    entries = record_entries(instance, content_type_id)
    with transaction.atomic(using=using):
        SearchEntry.objects.using(using).filter(content_type_id=content_type_id, object_id=instance.pk).delete()
        SearchEntry.objects.using(using).bulk_create(entries, batch_size=1000)


def unindex_record(model: type[models.Model], pk, using: str | None = None) -> None:
    using = using or router.db_for_write(model)
    content_type_id = ContentType.objects.db_manager(using).get_for_model(model).pk
    SearchEntry.objects.using(using).filter(content_type_id=content_type_id, object_id=pk).delete()


def searchable_models() -> list[type[models.Model]]:
    return [m for m in apps.get_models() if issubclass(m, RecordModel) and not m._meta.proxy]


COLUMNS = ("content_type_id", "object_id", "path", "node", "subtree_end", "parent", "is_element", "kind", "num",
           "key", "text")


def reindex(queryset_or_model, *, chunk_size: int = 2000) -> int:
    """Rebuilds the rows of the given records (a model means all of its records); returns the rows written.

    For records written without ``save()`` (``bulk_create``, ``QuerySet.update``, raw SQL), which send no
    signal. On PostgreSQL rows are streamed with COPY, elsewhere written with ``bulk_create``.
    """
    if isinstance(queryset_or_model, type):
        queryset = queryset_or_model._default_manager.all()
        whole_table = True
    else:
        queryset, whole_table = queryset_or_model, False
    model = queryset.model
    using = queryset.db
    content_type_id = ContentType.objects.db_manager(using).get_for_model(model).pk
    names = indexed_field_names(model)
    fields = [model._meta.get_field(name) for name in names]
    select = [f.attname for f in fields] + ["pk"]
    written = 0
    with transaction.atomic(using=using):
        entries = SearchEntry.objects.using(using).filter(content_type_id=content_type_id)
        if whole_table:
            entries.delete()
        for chunk in _chunks(queryset.order_by("pk").only(*select).iterator(chunk_size=chunk_size), chunk_size):
            if not whole_table:
                entries.filter(object_id__in=[instance.pk for instance in chunk]).delete()
            written += _write_rows(using, _chunk_rows(chunk, fields, names, content_type_id))
    return written


def _chunks(iterator: Iterator, size: int) -> Iterator[list]:
    chunk: list = []
    for item in iterator:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _chunk_rows(chunk, fields, names, content_type_id) -> list[tuple]:
    out = []
    for instance in chunk:
        document = {field.name: render_value(instance, field) for field in fields}
        for r in document_rows(document, names):
            out.append((content_type_id, instance.pk, *r))
    return out


def _write_rows(using: str, rows: list[tuple]) -> int:
    connection = connections[using]
    if connection.vendor == "postgresql":
        table = SearchEntry._meta.db_table
        with connection.cursor() as cursor:
            columns = ", ".join(connection.ops.quote_name(column) for column in COLUMNS)
            with cursor.cursor.copy(f"COPY {connection.ops.quote_name(table)} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    else:
        SearchEntry.objects.using(using).bulk_create(
            [SearchEntry(**dict(zip(COLUMNS, row, strict=True))) for row in rows], batch_size=1000
        )
    return len(rows)
