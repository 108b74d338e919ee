"""Portal pages of policies and assets: the browse lists, and the policy panels of a version's page (schemas
as tables, stored settings and parameters, digests) shown by ``governance.views.version_detail``."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from governance.panels import register
from policies.models import Asset, PolicyRule
from policies.schemas import schema_fields
from records.pages import Action, Column, RecordListView, require_permission, view_permission

SCHEMAS = (("Input", "policy_input_schema"), ("Output", "policy_output_schema"),
           ("Settings", "policy_settings_schema"), ("Parameters", "policy_parameters_schema"))


def version_url(obj) -> str:
    return reverse("portal-version", args=["policy", obj.policy_rule_uri])


class PolicyListView(RecordListView):
    model = PolicyRule
    title = "Policies"
    intro = "Every registered policy version and where it stands in its lifecycle."
    nav = "policy"
    noun = "version"
    testid = "version-list"
    empty_hint = "Register a policy with POST /policy (see the API docs), or upload its package as an asset first."
    filter_fields = ("status", "release_tag", "type")
    columns = (
        Column("Version", "policy_rule_uri", "link", "policy_rule_uri"),
        Column("Status", "status", "badge", "status"),
        Column("Tags", "tags", "tags"),
        Column("Created by", "created_by"),
        Column("Updated", "updated_at", "time", "updated_at"),
    )
    # By key: the versions of a name side by side, read through the key's unique index.
    default_sort = "policy_rule_uri"
    detail_url = staticmethod(version_url)


class AssetListView(RecordListView):
    model = Asset
    title = "Assets"
    intro = "Stored files, usually policy packages, addressed as name:version-tag."
    nav = "asset"
    empty_hint = "Upload a package with POST /upload_asset (multipart), then register a policy whose code is its public_url."
    columns = (
        Column("Asset", "asset_uri", "link", "asset_uri"),
        Column("File", "file_name", "text", "file_name"),
        Column("Size (bytes)", "size", "text", "size"),
        Column("Digest", "digest", "mono"),
        Column("Created", "created_at", "time", "created_at"),
    )
    default_sort = "-created_at"
    detail_url = staticmethod(lambda obj: reverse("portal-asset", args=[obj.asset_uri]))
    actions = (Action("API: upload an asset", "api-docs", "policies.add_asset", primary=False),)


@register("policies.policyrule")
def schemas_panel(request, policy):
    return {
        "template": "portal/panels/policy_schemas.html",
        "schemas": [{"title": title, "field": field, "rows": schema_fields(getattr(policy, field))}
                    for title, field in SCHEMAS],
        "settings": policy.policy_settings, "parameters": policy.policy_parameters,
        "commands": policy.management_commands_schema,
        "digest": policy.code_digest, "code": policy.code, "network": policy.policy_network,
    }


@login_required
def asset_detail(request, key):
    require_permission(request.user, view_permission(Asset))
    asset = get_object_or_404(Asset, asset_uri=key)
    return render(request, "portal/asset_detail.html", {
        "nav": "asset", "asset": asset,
        "policies": list(asset.policies.only("policy_rule_uri", "status")[:100]),
    })
