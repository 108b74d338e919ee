"""Health, metrics, OpenAPI, roles, settings from the environment, and the JSON envelope at the edges."""
import subprocess
import sys

import pytest
from django.contrib.auth.models import Group

pytestmark = pytest.mark.django_db


def test_health_reports_the_database_without_auth(anon):
    response = anon.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["status"] == "ok"
    assert body["broker"]["transport"]


def test_metrics_are_prometheus_text(anon, api, policy_payload):
    api.post("/policy", policy_payload(), format="json")
    text = anon.get("/metrics").content.decode()
    assert 'policygrid_records{model="policies.policyrule"} 1' in text


def test_the_five_roles_exist_with_distinct_permissions():
    roles = {g.name: set(g.permissions.values_list("codename", flat=True)) for g in Group.objects.all()}
    assert set(roles) >= {"viewer", "author", "reviewer", "operator", "admin"}
    assert "view_policyrule" in roles["viewer"] and "add_policyrule" not in roles["viewer"]
    assert "add_policyrule" in roles["author"] and "add_policyexecutor" not in roles["author"]
    assert "add_policyexecutor" in roles["operator"] and "add_policyrule" not in roles["operator"]
    assert "review_policyrule" in roles["reviewer"] and "add_policyrule" not in roles["reviewer"]
    assert roles["admin"] >= roles["author"] | roles["operator"] | roles["reviewer"]


def test_openapi_schema_describes_every_api_route(api):
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for route in ("/policy", "/policy/{policy_rule_uri}", "/policy/query", "/executor", "/executor/{executor_id}",
                  "/executor/query", "/jobs", "/jobs/{job_id}", "/jobs/query", "/function", "/function/{function_id}",
                  "/function/query", "/graphs", "/graphs/{graph_uri}", "/graphs/query", "/asset", "/asset/{asset_uri}",
                  "/asset/query", "/upload_asset", "/asset-object/{asset_id}", "/tokens", "/health"):
        assert any(p.rstrip("/") == route for p in paths), f"{route} missing from the OpenAPI schema"
    create = paths["/policy"]["post"]
    assert "requestBody" in create


def test_api_docs_page_is_served_without_internet(api):
    page = api.get("/api/docs/")
    assert page.status_code == 200
    assert b"swagger-ui" in page.content
    assert b"cdn.jsdelivr" not in page.content


def test_every_model_has_an_admin_changelist_with_search(make_user, client):
    from django.contrib import admin

    user = make_user("boss", "admin", superuser=True)
    client.force_login(user)
    for model in admin.site._registry:
        meta = model._meta
        if meta.app_label in ("auth",):
            continue
        response = client.get(f"/admin/{meta.app_label}/{meta.model_name}/?q=x")
        assert response.status_code == 200, meta.label


def test_settings_fail_at_start_up_naming_a_bad_value(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='portal.settings'; django.setup()"],
        env={"POLICYGRID_ANONYMOUS_READ": "maybe", "PATH": "/usr/bin:/bin", "POLICYGRID_STATE_DIR": str(tmp_path)},
        capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert "POLICYGRID_ANONYMOUS_READ" in result.stderr


def test_database_url_selects_the_database(tmp_path):
    code = ("import django, os; os.environ['DJANGO_SETTINGS_MODULE']='portal.settings'; django.setup();"
            "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'], settings.DATABASES['default']['NAME'])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"DATABASE_URL": "postgres://u@127.0.0.1:5432/somedb", "PATH": "/usr/bin:/bin",
                                 "POLICYGRID_STATE_DIR": str(tmp_path)})
    assert result.stdout.split() == ["django.db.backends.postgresql", "somedb"], result.stderr


def test_a_wrong_method_on_a_function_view_answers_json(api):
    response = api.patch("/health", {}, format="json")
    assert response.status_code == 405
    assert response.json()["success"] is False


def test_a_server_error_answers_the_json_envelope(api, monkeypatch):
    from policies.api import views

    def explode(self, request, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(views.PolicyRuleViewSet, "retrieve", explode)
    response = api.get("/policy/x:1-y")
    assert response.status_code == 500
    assert response.json() == {"success": False, "message": "internal error: RuntimeError"}


def test_the_api_answers_json_and_406_for_what_it_cannot_render(api):
    assert api.get("/executor").status_code == 200
    assert api.get("/executor", HTTP_ACCEPT="application/json, */*").status_code == 200
    assert api.get("/executor", HTTP_ACCEPT="text/html").status_code == 406
