"""The admin changes records through records.services like the API: audited, same delete rules, same cleanup."""
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from audit.models import AuditEntry
from policies.models import Asset, PolicyRule

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_site(users):
    """A browser session of the admin-role user (staff, not a superuser) on the Django admin."""
    client = Client()
    client.force_login(users["admin"])
    return client


@pytest.fixture
def local_storage(settings, tmp_path):
    from django.core.files.storage import storages

    settings.STORAGES = {**settings.STORAGES, "assets": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "assets")}}}
    storages._storages, storages._backends = {}, None
    yield tmp_path / "assets"
    storages._storages, storages._backends = {}, None


def _used_policy(clients, policy_payload):
    from executors.models import PolicyExecutor
    from functions.models import Function

    response = clients["author"].post("/policy", policy_payload(), format="json")
    assert response.status_code == 201, response.content
    policy = PolicyRule.objects.get(policy_rule_uri=response.json()["data"]["policy_rule_uri"])
    PolicyExecutor.objects.create(executor_id="exec-a", executor_host_uri="http://127.0.0.1:9")
    Function.objects.create(function_id="uses-it", function_executor_id="exec-a",
                            function_policy_rule_uri=policy.policy_rule_uri)
    return policy


def test_admin_delete_of_a_used_policy_is_refused_like_the_apis(admin_site, clients, policy_payload):
    policy = _used_policy(clients, policy_payload)
    api = clients["admin"].delete(f"/policy/{policy.policy_rule_uri}")
    assert api.status_code == 409
    assert api.json()["message"] == (f"policy {policy.policy_rule_uri} is used by function uses-it; "
                                     "delete or change those first")

    page = admin_site.post(f"/admin/policies/policyrule/{policy.pk}/delete/", {"post": "yes"})
    assert page.status_code == 200
    assert b"uses-it" in page.content and b"protected" in page.content
    bulk = admin_site.post("/admin/policies/policyrule/", {"action": "delete_selected", "_selected_action": [policy.pk],
                                                          "post": "yes"})
    assert bulk.status_code == 200
    assert PolicyRule.objects.filter(pk=policy.pk).exists()
    assert not AuditEntry.objects.filter(action="delete", target_key=policy.policy_rule_uri).exists()


def test_the_admin_service_path_refuses_what_the_view_lets_through(rf, users, clients, policy_payload):
    """Should a delete reach RecordAdmin (a race with a new dependent), it is refused, not half done."""
    from django.contrib import admin
    from django.core.exceptions import PermissionDenied

    policy = _used_policy(clients, policy_payload)
    request = rf.post("/")
    request.user = users["admin"]
    with pytest.raises(PermissionDenied, match="is used by function uses-it"):
        admin.site._registry[PolicyRule].delete_model(request, policy)
    assert PolicyRule.objects.filter(pk=policy.pk).exists()


def test_admin_delete_of_an_asset_removes_its_stored_file(admin_site, clients, local_storage,
                                                          django_capture_on_commit_callbacks):
    response = clients["author"].post("/upload_asset", {
        "asset": SimpleUploadedFile("p.zip", b"bytes"),
        "asset_metadata": json.dumps({"asset_name": "a", "asset_version": {"version": "1.0", "tag": "beta"}}),
    }, format="multipart")
    assert response.status_code == 201, response.content
    asset = Asset.objects.get(asset_uri=response.json()["asset_uri"])
    assert [p for p in local_storage.rglob("*") if p.is_file()]
    with django_capture_on_commit_callbacks(execute=True):
        page = admin_site.post(f"/admin/policies/asset/{asset.pk}/delete/", {"post": "yes"})
    assert page.status_code == 302
    assert not Asset.objects.exists()
    assert not [p for p in local_storage.rglob("*") if p.is_file()]
    entry = AuditEntry.objects.get(action="delete", target_key=asset.asset_uri)
    assert entry.actor_username == "admin-user" and entry.data["via"] == "admin"


def test_admin_edits_write_audit_entries_with_the_admin_as_actor(admin_site):
    from executors.models import PolicyExecutor

    executor = PolicyExecutor.objects.create(executor_id="exec-b", executor_host_uri="http://127.0.0.1:9")
    url = f"/admin/executors/policyexecutor/{executor.pk}/change/"
    form = admin_site.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {name: "" if value is None else value for name, value in data.items()}
    data["executor_host_uri"] = "http://127.0.0.1:10"
    response = admin_site.post(url, data)
    assert response.status_code == 302, response.content
    entry = AuditEntry.objects.get(action="update", target_key="exec-b")
    assert entry.actor_username == "admin-user"
    assert entry.data["changed"] == ["executor_host_uri"]
    assert entry.data["before"] == {"executor_host_uri": "http://127.0.0.1:9"}
    assert entry.data["after"] == {"executor_host_uri": "http://127.0.0.1:10"}
    assert entry.data["via"] == "admin"


def test_only_admins_delete_a_version_past_draft_in_the_admin_too(admin_site, make_user, clients, policy_in):
    approved = policy_in("approved")
    author = make_user("staff-author", "author")
    author.is_staff = True
    author.save()
    author_site = Client()
    author_site.force_login(author)
    url = f"/admin/policies/policyrule/{approved.pk}/delete/"
    assert author_site.post(url, {"post": "yes"}).status_code == 403
    assert admin_site.post(url, {"post": "yes"}).status_code == 302
    entry = AuditEntry.objects.get(action="delete", target_key=approved.policy_rule_uri)
    assert entry.data["forced"] is True and entry.data["status"] == "approved"
