"""Serializers of policies and assets."""
from rest_framework import serializers

from governance.api.serializers import GovernedSerializerMixin
from policies.models import Asset, PolicyRule
from records.api.serializers import RecordSerializer


class TagsField(serializers.CharField):
    """``tags`` is a comma-separated string; a JSON list is accepted and stored as the same string."""

    def to_internal_value(self, data):
        if isinstance(data, list):
            if not all(isinstance(tag, str) for tag in data):
                raise serializers.ValidationError("a list of tags must contain only strings")
            data = ",".join(tag.strip() for tag in data)
        return super().to_internal_value(data)


class PolicyRuleSerializer(GovernedSerializerMixin, RecordSerializer):
    tags = TagsField(required=False, allow_blank=True, max_length=1000)

    class Meta(RecordSerializer.Meta):
        model = PolicyRule
        exclude = ["id"]
        fields = None
        read_only_fields = ["policy_rule_uri", "status"]


class AssetSerializer(RecordSerializer):
    class Meta(RecordSerializer.Meta):
        model = Asset
        exclude = ["id"]
        fields = None
