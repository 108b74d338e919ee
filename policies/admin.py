"""Admin of policies and assets."""
from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from governance.admin import GovernedAdminMixin
from policies.models import Asset, PolicyRule
from policies.registration import register_package
from records.admin import RecordAdmin


class PolicyRuleForm(forms.ModelForm):
    """Checks the package as the API's registration does, once the model's own checks pass."""

    def _post_clean(self):
        super()._post_clean()
        if self._errors:
            return
        try:
            register_package(self.instance)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                if field in self.fields:
                    self.add_error(field, messages)
                else:  # code_digest is read-only here
                    self.add_error(None, [f"{field}: {message}" for message in messages])


@admin.register(PolicyRule)
class PolicyRuleAdmin(GovernedAdminMixin, RecordAdmin):
    form = PolicyRuleForm
    list_display = ("policy_rule_uri", "status", "type", "tags", "code_digest", "updated_at")
    list_filter = ("status", "type", "release_tag")
    search_fields = ("policy_rule_uri", "name", "description", "tags")
    machine_fields = ("policy_rule_uri", "status", "code_digest")


@admin.register(Asset)
class AssetAdmin(RecordAdmin):
    list_display = ("asset_uri", "file_name", "size", "digest", "created_at")
    search_fields = ("asset_uri", "asset_name", "digest")
    machine_fields = ("asset_id", "asset_uri", "storage_key", "size", "digest", "public_url")
