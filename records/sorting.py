"""``?sort=`` of ``POST /<resource>/query``: top-level fields, and dotted paths into JSON fields (docs/api.md §2).

A dotted path sorts as MongoDB does, by the search index (``records.search``) rather than by each database's
JSON operators, so SQLite and PostgreSQL agree: type brackets first (missing and null, numbers, strings,
objects, arrays, booleans: ``ValueKind``'s order), numbers by value, strings by code point; an array sorts by
its smallest element ascending and its largest descending; a record lacking the path sorts as null.
"""
from django.contrib.contenttypes.models import ContentType
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce

from records.api.errors import ApiError
from records.documents import INDEXED
from records.models import PATH_LENGTH, SearchEntry, ValueKind
from records.search import field_specs

# The index columns that order one value within its bracket (``key``: a string's first characters; ``text``:
# the rest of a long one).
VALUE_COLUMNS = ("kind", "num", "key", "text")


def sort_order(model, sort: str | None) -> list:
    """``order_by`` arguments for ``sort`` (``field,-other.path``), the primary key last for a stable order."""
    if not sort:
        return list(model._meta.ordering or ["pk"])
    columns = {f.name for f in model._meta.concrete_fields} - set(model.internal_fields)
    order = []
    for item in sort.split(","):
        item = item.strip()
        descending, path = item.startswith("-"), item.lstrip("-")
        if "." in path:
            order.extend(path_order(model, path, descending))
        elif path in columns:
            order.append(item)
        else:
            raise refusal(path, "not a field of this resource")
    return [*order, "pk"]


def path_order(model, path: str, descending: bool) -> list:
    top, *rest = path.split(".")
    spec = field_specs(model).get(top)
    if spec is None:
        raise refusal(path, f"'{top}' is not a field of this resource")
    if not spec.is_json or spec.how != INDEXED:
        raise refusal(path, f"'{top}' is not a JSON field: a dotted path can't reach into it")
    if any(part == "" or part.startswith("$") for part in rest) or len(path) > PATH_LENGTH:
        raise refusal(path, "not a valid dotted path")
    # The values the path names, and the elements of an array it names, but not the array itself.
    rows = SearchEntry.objects.filter(
        content_type_id=ContentType.objects.get_for_model(model).pk, object_id=OuterRef("pk"), path=path,
    ).exclude(kind=ValueKind.ARRAY, is_element=False)
    first = rows.order_by(*(f"-{c}" if descending else c for c in VALUE_COLUMNS))
    expressions = [Subquery(first.values(column)[:1]) for column in VALUE_COLUMNS]
    expressions[0] = Coalesce(expressions[0], ValueKind.NULL)  # a missing value sorts as null does
    if descending:
        return [expression.desc(nulls_last=True) for expression in expressions]
    return [expression.asc(nulls_first=True) for expression in expressions]


def refusal(path: str, reason: str) -> ApiError:
    return ApiError(f"cannot sort by '{path}': {reason}", 400, errors={"sort": [f"'{path}': {reason}"]})
