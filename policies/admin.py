"""Admin of policies and assets."""
from django.contrib import admin

from governance.admin import GovernedAdminMixin
from policies.models import Asset, PolicyRule
from records.admin import RecordAdmin


@admin.register(PolicyRule)
class PolicyRuleAdmin(GovernedAdminMixin, RecordAdmin):
    list_display = ("policy_rule_uri", "status", "type", "tags", "code_digest", "updated_at")
    list_filter = ("status", "type", "release_tag")
    search_fields = ("policy_rule_uri", "name", "description", "tags")
    machine_fields = ("policy_rule_uri", "status", "code_digest")


@admin.register(Asset)
class AssetAdmin(RecordAdmin):
    list_display = ("asset_uri", "file_name", "size", "digest", "created_at")
    search_fields = ("asset_uri", "asset_name", "digest")
    machine_fields = ("asset_id", "asset_uri", "storage_key", "size", "digest", "public_url")
