"""The record framework's models: the abstract base of every registry record, and the query language's search index."""
from typing import ClassVar

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models


class RecordModel(models.Model):
    """A registry record served by the REST API and searchable with the query language (docs/api.md §2).

    Subclasses declare:
      * ``lookup_field`` – the field that addresses the record in URLs (a URI, an id or a name);
      * ``identity_fields`` – fields that an update may not change (docs/api.md §3);
      * ``json_fields`` is derived: every JSONField, into which dotted query/update paths may reach.
    Derived fields (URIs) are computed in ``save()`` so that every writer (API, admin, services,
    tasks) gets them, and checked in ``clean()`` so that every validator reports them.
    """

    lookup_field: ClassVar[str] = "pk"
    identity_fields: ClassVar[tuple[str, ...]] = ()
    # Query-language names of fields, as the earlier system's documented queries spell them.
    query_aliases: ClassVar[dict[str, str]] = {}
    # Foreign keys the server keeps in step with a key the API shows (FK name → field holding the target's
    # lookup key): the API reads and writes the key string, the database enforces the reference.
    references: ClassVar[dict[str, str]] = {}
    # Fields that are not part of the API's representation (nor of the query language's search document).
    internal_fields: ClassVar[tuple[str, ...]] = ()

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        abstract = True

    @classmethod
    def json_field_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in cls._meta.concrete_fields if isinstance(f, models.JSONField))

    def compute_derived_fields(self) -> None:
        """Fill the fields the server computes (URIs). Override in subclasses."""

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        # The keys the stored references were resolved from: a save re-resolves only a key that changed.
        # (__dict__, not the attributes: reading a deferred field here would load it.)
        loaded = instance.__dict__
        instance._resolved_keys = {name: loaded.get(key) for name, key in cls.references.items()}
        return instance

    def resolve_references(self) -> None:
        """Point each foreign key of ``references`` at the record its key names (None when there is none:
        ``clean()`` reports that; writers that skip validation keep a dangling key, as before the FKs)."""
        resolved = self.__dict__.setdefault("_resolved_keys", {})
        for name, key_field in self.references.items():
            field = self._meta.get_field(name)
            key = getattr(self, key_field)
            if getattr(self, field.attname) is not None and resolved.get(name) == key:
                continue
            target = field.related_model
            setattr(self, field.attname,
                    target.objects.filter(**{target.lookup_field: key}).values_list("pk", flat=True).first())
            resolved[name] = key

    def reference_errors(self) -> dict[str, list[str]]:
        """Keys in ``references`` that name no record, by the API field that holds them (for ``clean()``).

        Only keys being set are checked: a stored record keeps validating when a key it was saved with
        dangles (rows written before the foreign keys existed, or by writers that skip validation)."""
        errors: dict[str, list[str]] = {}
        loaded = self.__dict__.get("_resolved_keys", {}) if not self._state.adding else {}
        for name, key_field in self.references.items():
            target = self._meta.get_field(name).related_model
            key = getattr(self, key_field)
            if name in loaded and loaded[name] == key:
                continue
            if not target.objects.filter(**{target.lookup_field: key}).exists():
                errors[key_field] = [f"no {target._meta.verbose_name} with {target.lookup_field} '{key}'"]
        return errors

    def delete_refusal(self, actor) -> str | None:
        """Why ``actor`` may not delete this record, or None (``records.services.delete_record`` asks)."""
        return None

    def delete_audit_data(self, actor) -> dict:
        """Facts about a delete by ``actor`` that its audit entry records."""
        return {}

    def audited_save(self, actor, data: dict) -> None:
        """Hook: called by ``records.services.save_record`` in the save's transaction, after its audit entry
        (``data``: what the entry records, with ``changed`` for an update)."""

    def save(self, *args, **kwargs):
        self.compute_derived_fields()
        update_fields = kwargs.get("update_fields")
        if update_fields is None or set(update_fields) & {*self.references, *self.references.values()}:
            self.resolve_references()
        super().save(*args, **kwargs)

    @property
    def key(self) -> str:
        return str(getattr(self, self.lookup_field))

    def __str__(self) -> str:
        return self.key


# --- the search index: one row per value a MongoDB-style path can reach in a record ---
class BinaryCollationMixin:
    """Compares strings by code point, as MongoDB (and mongomock) do: ``"B" < "a"``, ``"10.0" < "9.0"``.

    PostgreSQL sorts text by the database's collation (``en_US`` would put ``"a"`` before ``"B"``), so the
    column is declared ``COLLATE "C"`` there — and the btree indexes inherit it, so range comparisons stay
    index scans. SQLite's default BINARY collation already compares UTF-8 bytes, i.e. code points.
    """

    def db_parameters(self, connection):
        params = super().db_parameters(connection)
        if connection.vendor == "postgresql":
            params["collation"] = "C"
        return params


class BinaryCharField(BinaryCollationMixin, models.CharField):
    pass


class BinaryTextField(BinaryCollationMixin, models.TextField):
    pass


class ValueKind(models.IntegerChoices):
    """JSON types, each its own comparison bracket (a number never compares with a string or a bool)."""

    NULL = 1, "null"
    NUMBER = 2, "number"
    STRING = 3, "string"
    OBJECT = 4, "object"
    ARRAY = 5, "array"
    BOOL = 6, "bool"


#: Strings are compared through their first KEY_LENGTH characters in ``key`` (indexable, under PostgreSQL's
#: btree row limit) and, when longer, in full through ``text``.
KEY_LENGTH = 100
PATH_LENGTH = 255


class SearchEntry(models.Model):
    """One value reachable by a query path in one record (see ``records.search`` for what is indexed).

    * ``path`` is the path as a query spells it: ``metadata.items.b`` reaches ``b`` in every object of the
      array ``items``; ``metadata.items.0.b`` only in the first one.
    * ``is_element``: the value is an element of an array that the path reaches (MongoDB matches an array
      by its elements too), not a value the path names itself.
    * ``node``/``subtree_end``/``parent`` number the record's JSON values in document order, so that the
      values inside one array element (``$elemMatch``) and the keys an object lacks (``null`` matches a
      missing field) are range conditions.
    * ``num``: numbers, booleans as 0/1, the length of arrays (``$size``). ``key``: strings (their first
      ``KEY_LENGTH`` characters; ``text`` holds longer ones in full), the digest of objects and arrays.
    """

    # The composite indexes below all start with content_type: no index of its own.
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+", db_index=False)
    object_id = models.BigIntegerField()
    path = models.CharField(max_length=PATH_LENGTH)
    node = models.PositiveIntegerField()
    subtree_end = models.PositiveIntegerField()
    parent = models.PositiveIntegerField()
    is_element = models.BooleanField()
    kind = models.PositiveSmallIntegerField(choices=ValueKind.choices)
    num = models.FloatField(null=True)
    key = BinaryCharField(max_length=KEY_LENGTH, null=True)
    text = BinaryTextField(null=True)

    class Meta:
        verbose_name = "search index entry"
        verbose_name_plural = "search index entries"
        indexes = [
            # Comparisons on numbers/booleans/array sizes; object_id last makes the semi-join index-only.
            models.Index(fields=["content_type", "path", "kind", "num", "object_id"], name="records_search_num"),
            # Equality and ranges on strings, equality on objects/arrays (digest).
            models.Index(fields=["content_type", "path", "kind", "key", "object_id"], name="records_search_key"),
            # One record's entries: correlated lookups from a small outer set, and re-indexing.
            models.Index(fields=["content_type", "object_id", "path"], name="records_search_record"),
        ]

    def __str__(self) -> str:
        return f"{self.content_type_id}:{self.object_id} {self.path} ({self.get_kind_display()})"
