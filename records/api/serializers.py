"""The base serializer: model validation through ``full_clean()``, unknown fields refused, identity frozen."""
import copy
from functools import cached_property

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework import serializers
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.validators import UniqueTogetherValidator, UniqueValidator

# DRF fields whose to_representation() gives back a value of this type unchanged (True: any value). A page of
# records holds many field values, and DRF's per-field calls for these were most of the cost of serialising it.
_PASS_THROUGH: dict[type, type | bool] = {
    serializers.CharField: str,
    serializers.IntegerField: int,
    serializers.FloatField: float,
    serializers.BooleanField: bool,
    serializers.JSONField: True,
}


# The JSON type each kind of DRF field takes, as the OpenAPI document states it. DRF would coerce (5 into
# "5", "5" into 5, "true" into True); the API refuses instead, naming the field, so that what the schema calls
# invalid is invalid (tests/openapi checks it with schemathesis).
_JSON_TYPES: list[tuple[type, tuple[type, ...], str]] = [
    (serializers.BooleanField, (bool,), "true or false"),
    (serializers.ChoiceField, (str,), "a string"),
    (serializers.CharField, (str,), "a string"),
    (serializers.DateTimeField, (str,), "a string"),
    (serializers.IntegerField, (int,), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
    (serializers.ListField, (list,), "an array"),
    (serializers.DictField, (dict,), "an object"),
]


def refuse_coercion(fields, data: dict) -> None:
    """A 400 naming each field of ``data`` whose JSON type is not the one its serializer field takes."""
    errors = {}
    for name, value in data.items():
        field = fields.get(name)
        if field is None or field.read_only or (value is None and field.allow_null):
            continue
        if not type(field).__module__.startswith("rest_framework."):
            continue  # a field of ours reads its own forms (tags as a list or a string)
        for kind, types, wording in _JSON_TYPES:
            if isinstance(field, kind):
                wrong_bool = isinstance(value, bool) and bool not in types
                if wrong_bool or not isinstance(value, types):
                    errors[name] = [f"must be {wording}"]
                break
    if errors:
        raise serializers.ValidationError(errors)


class RecordSerializer(serializers.ModelSerializer):
    """Serializer of a ``RecordModel``.

    * Validation happens once, in the model (``clean()`` / field validators), so that the API, the admin
      and the pages agree; this class only translates ``ValidationError`` into DRF's form.
    * Uniqueness is left to the database (docs/api.md §1): DRF's read-then-write ``UniqueValidator`` would let
      two concurrent creates both pass; the viewset turns the database's ``IntegrityError`` into 409.
    * Unknown fields are refused with 400 naming them; read-only fields sent by a client (a URI on
      create, as the earlier system's clients do) are ignored.
    """

    # Null for records made by the system (a migration, a command) rather than a user.
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model: type[models.Model]
        fields = "__all__"
        validators: list = []

    def get_field_names(self, declared_fields, info):
        # The relations the server keeps (``internal_fields``) mirror a key the API already shows.
        internal = set(getattr(self.Meta.model, "internal_fields", ()))
        return [name for name in super().get_field_names(declared_fields, info) if name not in internal]

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
        refuse_coercion(self.fields, data)
        return super().to_internal_value(data)

    @cached_property
    def _representation_plan(self) -> list[tuple[str, serializers.Field, type | bool | None]]:
        """The readable fields in output order (identity first, bookkeeping last, so that a record reads like
        the spec's examples), each with the value type it passes through unchanged, if any."""
        model = self.Meta.model
        fields = {field.field_name: field for field in self._readable_fields}
        first = [name for name in (model.lookup_field, *model.identity_fields) if name in fields]
        last = [name for name in ("created_at", "updated_at", "created_by") if name in fields]
        order = dict.fromkeys([*first, *(name for name in fields if name not in last), *last])
        plan = []
        for name in order:
            field = fields[name]
            direct = field.source_attrs == [name] and not getattr(field, "binary", False)
            plan.append((name, field, _PASS_THROUGH.get(type(field)) if direct else None))
        return plan

    def to_representation(self, instance):
        """What DRF's ``to_representation`` gives, with plain values read straight from the instance."""
        data = {}
        for name, field, passes in self._representation_plan:
            if passes is not None:
                value = getattr(instance, name)
                if value is None or passes is True or type(value) is passes:
                    data[name] = value
                    continue
            try:
                attribute = field.get_attribute(instance)
            except SkipField:
                continue
            check_for_none = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
            data[name] = None if check_for_none is None else field.to_representation(attribute)
        return data

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
        self._validated_instance = instance
        return attrs
