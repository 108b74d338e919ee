"""The abstract base of every registry record: timestamps, the creating user, and API metadata."""
from typing import ClassVar

from django.conf import settings
from django.db import models


class RecordModel(models.Model):
    """A registry record served by the REST API and searchable with the query language (api.md §2).

    Subclasses declare:
      * ``lookup_field`` – the field that addresses the record in URLs (a URI, an id or a name);
      * ``identity_fields`` – fields that an update may not change (api.md §3);
      * ``json_fields`` is derived: every JSONField, into which dotted query/update paths may reach.
    Derived fields (URIs) are computed in ``save()`` so that every writer (API, admin, services,
    tasks) gets them, and checked in ``clean()`` so that every validator reports them.
    """

    lookup_field: ClassVar[str] = "pk"
    identity_fields: ClassVar[tuple[str, ...]] = ()
    # Query-language names of fields, as the earlier system's documented queries spell them.
    query_aliases: ClassVar[dict[str, str]] = {}

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        abstract = True

    @classmethod
    def by_key(cls, key: str, fields: tuple[str, ...] | None = None):
        """The record whose ``lookup_field`` is ``key``, or None: one SELECT whose SQL is compiled once.

        ``fields`` loads only those columns (the others are deferred: read on first access, one query each),
        for hot paths that need a few plain fields of a wide row.
        """
        lookups = cls.__dict__.get("_key_lookups")
        if lookups is None:
            lookups = cls._key_lookups = {}
        lookup = lookups.get(fields)
        if lookup is None:
            from portal.prepared import PreparedLookup

            def build(value):
                queryset = cls._default_manager.filter(**{cls.lookup_field: value})
                return queryset.only(*fields) if fields else queryset

            lookup = lookups[fields] = PreparedLookup(build)
        return lookup.first(key)

    @classmethod
    def json_field_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in cls._meta.concrete_fields if isinstance(f, models.JSONField))

    def search_document(self) -> dict:
        """The stored fields as GET renders them: the document the query language searches (api.md §2)."""
        from portal.search import search_document

        return search_document(self)

    def compute_derived_fields(self) -> None:
        """Fill the fields the server computes (URIs). Override in subclasses."""

    def delete_blockers(self) -> list[str]:
        """Describe the objects that still use this record; a non-empty list makes DELETE answer 409."""
        return []

    def save(self, *args, **kwargs):
        self.compute_derived_fields()
        super().save(*args, **kwargs)

    @property
    def key(self) -> str:
        return str(getattr(self, self.lookup_field))

    def __str__(self) -> str:
        return self.key
