"""The function pages: the deploy form, a function's call, management and Remove, per role (200 / 403 / login),
a bounded number of queries, the errors beside their fields, and no action shown to a role that can't take it.
(The browser test deploys, calls, manages and removes one for real: test_browser_functions.py.)"""
import pytest
from django.test import Client

from functions.models import Function

pytestmark = pytest.mark.django_db

ROLES = ("viewer", "author", "reviewer", "operator", "admin")
DEPLOY = "/portal/functions/-/deploy/"
MAX_QUERIES = 30
BUTTONS = ('data-testid="remove"', 'data-testid="call"', 'data-testid="send"', 'data-testid="call-form"',
           'data-testid="manage-form"')


def test_the_deploy_form_answers_each_role(world, page_client):
    for role in ROLES:
        expected = 200 if role in ("operator", "admin") else 403
        assert page_client(role).get(DEPLOY).status_code == expected, role
        assert page_client(role).post(DEPLOY, {}).status_code == (400 if expected == 200 else 403), role
    assert page_client("norole").get(DEPLOY).status_code == 403
    for method in (Client().get, Client().post):
        response = method(DEPLOY)
        assert response.status_code == 302 and response["Location"].startswith("/portal/login/")


def test_the_function_actions_answer_each_role(world, page_client):
    allowed = {"call": {"operator", "admin"}, "manage": {"operator", "admin"}, "remove": {"operator", "admin"}}
    for role in (*ROLES, "norole"):
        client = page_client(role)
        assert client.get("/portal/functions/decide/").status_code == (403 if role == "norole" else 200), role
        for action, roles in allowed.items():
            response = client.post(f"/portal/functions/decide/{action}/", {})
            if role in roles:
                assert response.status_code in (200, 302, 400), (role, action, response.status_code)
            else:
                assert response.status_code == 403, (role, action, response.status_code)
        assert client.get("/portal/functions/decide/call/").status_code in (403, 405)
    for action in ("call", "manage", "remove"):
        response = Client().post(f"/portal/functions/decide/{action}/")
        assert response.status_code == 302 and response["Location"].startswith("/portal/login/")
    assert page_client("admin").post("/portal/functions/nope/call/").status_code == 404


def test_buttons_follow_the_role(world, page_client):
    text = page_client("viewer").get("/portal/functions/decide/").content.decode()
    for needle in BUTTONS:
        assert needle not in text, needle
    assert 'data-testid="action"' not in page_client("viewer").get("/portal/functions/").content.decode()
    text = page_client("operator").get("/portal/functions/decide/").content.decode()
    for needle in BUTTONS:
        assert needle in text, needle
    listed = page_client("operator").get("/portal/functions/").content.decode()
    assert 'data-testid="action"' in listed and DEPLOY in listed
    # Every POST form carries its CSRF token; no inline script.
    assert text.count('name="csrfmiddlewaretoken"') >= text.count('method="post"') >= 3
    assert "<script>" not in text and "onclick" not in text and "portal/dist/function.js" in text


def test_the_pages_make_a_bounded_number_of_queries(world, page_client, django_assert_max_num_queries):
    client = page_client("admin")
    client.get("/portal/functions/decide/")  # caches filled (content types, permissions)
    for method, url, data in (("get", "/portal/functions/decide/", None), ("get", DEPLOY, None),
                              ("post", DEPLOY, {"name": "", "policy": ""}),
                              ("post", DEPLOY, {"name": "decide", "policy": world["approved"].key,
                                                "executor": "edge-1", "replicas": "1"}),
                              ("post", "/portal/functions/decide/call/", {}),
                              ("post", "/portal/functions/decide/manage/", {"action": "get_state"}),
                              ("post", DEPLOY, {"name": "fresh", "policy": world["approved"].key,
                                                "executor": "edge-1", "replicas": "1"}),
                              ("post", "/portal/functions/decide/remove/", {})):
        with django_assert_max_num_queries(MAX_QUERIES):
            getattr(client, method)(url, data or {})


def field_error(text: str, name: str) -> str:
    marker = f'data-testid="error-{name}">'
    assert marker in text, (name, text[:3000])
    return text.split(marker, 1)[1].split("</p>", 1)[0]


def test_deploy_form_errors_are_shown_beside_their_fields(world, page_client):
    client = page_client("operator")
    text = client.post(DEPLOY, {"name": "", "policy": "", "replicas": "many", "parameters": "{not json",
                                "settings": "[1]"}).content.decode()
    assert "required" in field_error(text, "name")
    assert "choose" in field_error(text, "policy")
    assert "whole number" in field_error(text, "replicas")
    assert "not JSON" in field_error(text, "parameters")
    assert "JSON object" in field_error(text, "settings")
    # What the service refuses comes back beside the field it concerns, the values kept.
    approved = world["approved"].key
    response = client.post(DEPLOY, {"name": "Not_A_Label", "policy": approved, "executor": "edge-1",
                                    "replicas": "1"})
    assert response.status_code == 400
    text = response.content.decode()
    assert field_error(text, "name") and 'value="Not_A_Label"' in text
    text = client.post(DEPLOY, {"name": "fresh", "policy": approved, "executor": "edge-1",
                                "replicas": "99"}).content.decode()
    assert "16" in field_error(text, "replicas")
    text = client.post(DEPLOY, {"name": "decide", "policy": approved, "executor": "edge-1"}).content.decode()
    assert "already exists" in field_error(text, "name")
    text = client.post(DEPLOY, {"name": "fresh", "policy": approved, "executor": "nope"}).content.decode()
    assert "no such executor" in field_error(text, "executor")
    text = client.post(DEPLOY, {"name": "fresh", "policy": world["draft"].key, "executor": "edge-1"}).content.decode()
    assert field_error(text, "policy")
    assert not Function.objects.filter(function_id="fresh").exists()


def test_a_deployment_from_the_form_opens_the_function_page_deploying(world, page_client):
    client = page_client("operator")
    response = client.post(DEPLOY, {"name": "fresh", "policy": world["approved"].key, "executor": "edge-1",
                                    "replicas": "2", "parameters": "{}", "settings": "{}"})
    assert response.status_code == 302 and response["Location"] == "/portal/functions/fresh/"
    function = Function.objects.get(function_id="fresh")
    assert function.function_status == "deploying" and function.replicas == 2
    text = client.get(response["Location"]).content.decode()
    assert 'id="function-status">deploying<' in text and "updating live" in text


def test_inputs_are_checked_beside_their_fields_and_remove_names_the_graphs(world, page_client):
    client = page_client("operator")
    page = client.get("/portal/functions/decide/").content.decode()
    # The forms are generated from the policy's schemas: its input, and each management command's data.
    assert 'name="input.ip"' in page and 'name="data.update_local_allowlist.ips"' in page
    assert '<option value="get_state"' in page
    response = client.post("/portal/functions/decide/manage/", {"action": "update_local_allowlist",
                                                                "data.update_local_allowlist.ips": "[not json"})
    text = response.content.decode()
    assert response.status_code == 400
    error = text.split('name="data.update_local_allowlist.ips"', 1)[1].split("</div>", 1)[0]
    assert 'data-testid="field-error">not a valid json value' in error
    # A call reaching an executor that does not answer: its error type and message, not a crash.
    response = client.post("/portal/functions/decide/call/", {"input.ip": "10.0.0.1"})
    text = response.content.decode()
    assert response.status_code == 200 and 'data-testid="call-result"' in text and 'data-testid="call-error"' in text
    assert 'value="10.0.0.1"' in text
    response = client.post("/portal/functions/decide/remove/", follow=True)
    text = response.content.decode()
    assert response.redirect_chain[-1][0] == "/portal/functions/decide/"
    assert "used by graph" in text and world["graph"].key in text
    assert Function.objects.filter(function_id="decide").exists()
    # One not in a graph goes.
    Function.objects.create(function_id="lonely", function_executor_id="edge-1",
                            function_policy_rule_uri=world["approved"].key, function_status="failed")
    assert client.post("/portal/functions/lonely/remove/").status_code == 302
