"""Filters of the policy and asset lists."""
import django_filters

from policies.models import Asset, PolicyRule
from records.api.filtersets import RecordFilterSet


class PolicyRuleFilterSet(RecordFilterSet):
    search_fields = ("name", "description", "tags")
    tags = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = PolicyRule
        fields = ["name", "version", "release_tag", "type", "status", "tags", "code_digest"]


class AssetFilterSet(RecordFilterSet):
    search_fields = ("asset_name", "asset_uri")

    class Meta:
        model = Asset
        fields = ["asset_name", "asset_uri", "digest"]
