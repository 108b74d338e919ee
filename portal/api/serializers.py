"""The base serializer: model validation through ``full_clean()``, unknown fields refused, identity frozen."""
import copy

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework import serializers
from rest_framework.validators import UniqueTogetherValidator, UniqueValidator


class RecordSerializer(serializers.ModelSerializer):
    """Serializer of a ``RecordModel``.

    * Validation happens once, in the model (``clean()`` / field validators), so that the API, the admin
      and the pages agree; this class only translates ``ValidationError`` into DRF's form.
    * Uniqueness is left to the database (api.md §1): DRF's read-then-write ``UniqueValidator`` would let
      two concurrent creates both pass; the viewset turns the database's ``IntegrityError`` into 409.
    * Unknown fields are refused with 400 naming them; read-only fields sent by a client (a URI on
      create, as the earlier system's clients do) are ignored.
    """

    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model: type[models.Model]
        fields = "__all__"
        validators: list = []

    def build_field(self, field_name, info, model_class, nested_depth):
        field_class, kwargs = super().build_field(field_name, info, model_class, nested_depth)
        if "validators" in kwargs:
            kwargs["validators"] = [v for v in kwargs["validators"] if not isinstance(v, UniqueValidator)]
        return field_class, kwargs

    def get_validators(self):
        return [v for v in super().get_validators() if not isinstance(v, UniqueTogetherValidator)]

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": [f"expected a JSON object, got {type(data).__name__}"]}
            )
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # Identity first and bookkeeping last, so that a record reads like the spec's examples.
        model = self.Meta.model
        first = [name for name in (model.lookup_field, *model.identity_fields) if name in data]
        last = [name for name in ("created_at", "updated_at", "created_by") if name in data]
        middle = [name for name in data if name not in first and name not in last]
        return {name: data[name] for name in dict.fromkeys([*first, *middle, *last])}

    def validate(self, attrs):
        model = self.Meta.model
        instance = copy.copy(self.instance) if self.instance is not None else model()
        if self.instance is not None:
            for name in model.identity_fields:
                if name in attrs and attrs[name] != getattr(self.instance, name):
                    raise serializers.ValidationError({name: ["cannot be changed: create a new record instead"]})
        for name, value in attrs.items():
            setattr(instance, name, value)
        if hasattr(instance, "compute_derived_fields"):
            instance.compute_derived_fields()
        try:
            instance.full_clean(validate_unique=False, validate_constraints=False)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(serializers.as_serializer_error(exc)) from None
        # Values the model's validation computes (a pinned digest) are saved with the record.
        for name in getattr(model, "derived_on_clean", ()):
            attrs[name] = getattr(instance, name)
        self._validated_instance = instance
        return attrs
