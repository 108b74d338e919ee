"""A record's search document: its stored fields as the API's GET renders them, and how each is queried.

Kept apart from ``records.search`` (the index) so that ``records.models`` can render a record without
importing the index, which itself imports the models.
"""
import uuid
from datetime import date, datetime, time
from decimal import Decimal

from django.apps import apps
from django.conf import settings
from django.db import models

STRING, NUMBER, BOOL, USER, INDEXED = "string", "number", "bool", "user", "indexed"


def how_queried(field: models.Field) -> str:
    if isinstance(field, models.ForeignKey):
        # The API renders the creator as a username; other relations are indexed as rendered.
        return USER if field.related_model is apps.get_model(settings.AUTH_USER_MODEL) else INDEXED
    if isinstance(field, models.BooleanField):
        return BOOL
    if isinstance(field, (models.IntegerField, models.FloatField)):
        return NUMBER
    if isinstance(field, (models.CharField, models.TextField)):
        return STRING
    return INDEXED


def document_fields(model: type[models.Model]) -> list[models.Field]:
    """The concrete fields of the GET representation: all of them but an ``id`` that isn't the lookup key
    and the relations the server keeps for itself (``internal_fields``: they mirror a key the API shows)."""
    lookup = getattr(model, "lookup_field", "pk")
    internal = set(getattr(model, "internal_fields", ()))
    pk = model._meta.pk
    return [
        field for field in model._meta.concrete_fields
        if (field is not pk or lookup in ("pk", pk.name, pk.attname)) and field.name not in internal
    ]


def search_document(instance: models.Model) -> dict:
    """``instance`` as the API's GET renders its stored fields (datetimes in ISO 8601 with ``Z``…)."""
    return {field.name: render_value(instance, field) for field in document_fields(type(instance))}


def render_value(instance: models.Model, field: models.Field):
    from rest_framework import serializers

    if isinstance(field, models.ForeignKey):
        if how_queried(field) == USER:
            if getattr(instance, field.attname) is None:
                return None
            user = getattr(instance, field.name, None)
            return user.get_username() if user is not None else None
        return getattr(instance, field.attname)
    value = getattr(instance, field.attname)
    if value is None or isinstance(field, models.JSONField):
        return value
    if isinstance(value, datetime):
        return serializers.DateTimeField().to_representation(value)
    if isinstance(value, date):
        return serializers.DateField().to_representation(value)
    if isinstance(value, time):
        return serializers.TimeField().to_representation(value)
    if isinstance(value, Decimal):
        return serializers.DecimalField(
            max_digits=field.max_digits, decimal_places=field.decimal_places
        ).to_representation(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
