"""The lifecycle of docs/governance.md §2 through the API: every transition for every role, with its audit entry."""
import pytest

from audit.models import AuditEntry
from governance import lifecycle

pytestmark = pytest.mark.django_db

ROLES = ("viewer", "author", "reviewer", "operator", "admin", "norole")

# transition → (state it starts from, roles allowed, state it ends in, request body)
TRANSITIONS = {
    "submit": ("draft", {"author", "admin"}, "in_review", {"comment": "please review"}),
    "approve": ("in_review", {"reviewer", "admin"}, "approved", {"comment": "checked the code"}),
    "reject": ("in_review", {"reviewer", "admin"}, "draft", {"comment": "needs tests"}),
    "deprecate": ("approved", {"reviewer", "admin"}, "deprecated", {"comment": "superseded"}),
    "retire": ("approved", {"reviewer", "admin"}, "retired", {"comment": "unsafe"}),
    "new-version": ("approved", {"author", "admin"}, None, {"version": "2.0", "release_tag": "beta"}),
}
AUDIT_ACTION = {"new-version": "new_version"}

CASES = [(name, role) for name in TRANSITIONS for role in ROLES]


def url(policy, action):
    return f"/policy/{policy.policy_rule_uri}/{action}"


@pytest.mark.parametrize(("transition", "role"), CASES, ids=[f"{t}-{r}" for t, r in CASES])
def test_every_transition_for_every_role(transition, role, clients, policy_in, audit):
    start, allowed, end, body = TRANSITIONS[transition]
    policy = policy_in(start)
    audit.mark()
    response = clients[role].post(url(policy, transition), body, format="json")
    policy.refresh_from_db()
    action = AUDIT_ACTION.get(transition, transition)
    if role in allowed:
        assert response.status_code == (201 if transition == "new-version" else 200), response.content
        assert response.json()["success"] is True
        entries = audit.new()
        assert [e.action for e in entries] == [action]
        assert entries[0].actor_username == f"{role}-user"
        if transition == "new-version":
            assert response.json()["data"]["status"] == "draft"
            assert response.json()["data"]["policy_rule_uri"] == "ip_allowlist:2.0-beta"
            assert policy.status == start
        else:
            assert response.json()["data"]["status"] == end
            assert policy.status == end
            assert entries[0].data["comment"] == body["comment"]
    else:
        assert response.status_code == 403, response.content
        assert response.json()["success"] is False
        assert policy.status == start
        assert audit.actions() == [f"{action}.refused"]


WRONG_STATES = [
    ("submit", "in_review"), ("submit", "approved"), ("submit", "retired"),
    ("approve", "draft"), ("approve", "approved"), ("approve", "deprecated"),
    ("reject", "draft"), ("reject", "approved"),
    ("deprecate", "draft"), ("deprecate", "in_review"), ("deprecate", "deprecated"), ("deprecate", "retired"),
    ("retire", "draft"), ("retire", "in_review"), ("retire", "retired"),
]


@pytest.mark.parametrize(("transition", "state"), WRONG_STATES, ids=[f"{t}-from-{s}" for t, s in WRONG_STATES])
def test_a_wrong_transition_answers_409_naming_the_current_state(transition, state, clients, policy_in, audit):
    policy = policy_in(state)
    audit.mark()
    response = clients["admin"].post(url(policy, transition), {"comment": "x"}, format="json")
    assert response.status_code == 409, response.content
    assert state in response.json()["message"]
    policy.refresh_from_db()
    assert policy.status == state
    assert audit.actions() == [f"{transition}.refused"]


def test_no_one_approves_their_own_submission_not_even_an_admin(clients, new_policy, users, audit):
    policy = new_policy()
    assert clients["admin"].post(url(policy, "submit"), {}, format="json").status_code == 200
    audit.mark()
    response = clients["admin"].post(url(policy, "approve"), {"comment": "mine"}, format="json")
    assert response.status_code == 403
    assert "own submission" in response.json()["message"]
    policy.refresh_from_db()
    assert policy.status == "in_review"
    assert audit.actions() == ["approve.refused"]
    # Another reviewer can.
    assert clients["reviewer"].post(url(policy, "approve"), {}, format="json").json()["data"]["status"] == "approved"


def test_a_reviewer_who_submitted_cannot_approve(clients, new_policy, make_user, client_for):
    both = make_user("author-reviewer", "author", "reviewer")
    client = client_for(both)
    policy = new_policy()
    client.post(url(policy, "submit"), {}, format="json")
    assert client.post(url(policy, "approve"), {}, format="json").status_code == 403


def test_two_reviewers_are_needed_when_configured(settings, clients, second_reviewer, client_for, policy_in, audit):
    settings.APPROVALS_REQUIRED = 2
    policy = policy_in("in_review")
    first = clients["reviewer"].post(url(policy, "approve"), {"comment": "one"}, format="json")
    assert first.status_code == 200
    assert first.json()["data"]["status"] == "in_review"
    assert [a["reviewer"] for a in first.json()["data"]["approvals"]] == ["reviewer-user"]
    assert first.json()["data"]["signature"] is None
    # The same reviewer can't count twice.
    again = clients["reviewer"].post(url(policy, "approve"), {"comment": "one again"}, format="json")
    assert again.status_code == 409
    assert "already approved" in again.json()["message"]
    second = client_for(second_reviewer).post(url(policy, "approve"), {"comment": "two"}, format="json")
    assert second.status_code == 200
    data = second.json()["data"]
    assert data["status"] == "approved"
    assert sorted(a["reviewer"] for a in data["approvals"]) == ["reviewer-two", "reviewer-user"]
    assert data["signature"]["key_id"]


def test_reject_returns_to_draft_with_the_comment_and_clears_approvals(settings, clients, policy_in):
    settings.APPROVALS_REQUIRED = 2
    policy = policy_in("in_review")
    clients["reviewer"].post(url(policy, "approve"), {"comment": "fine"}, format="json")
    response = clients["admin"].post(url(policy, "reject"), {"comment": "missing the edge case"}, format="json")
    assert response.json()["data"]["status"] == "draft"
    assert response.json()["data"]["approvals"] == []
    entry = AuditEntry.objects.filter(action="reject").get()
    assert entry.data["comment"] == "missing the edge case"
    # A new round starts from zero approvals.
    clients["author"].post(url(policy, "submit"), {}, format="json")
    assert clients["reviewer"].post(url(policy, "approve"), {}, format="json").json()["data"]["status"] == "in_review"


def test_deprecated_versions_are_flagged_in_headers_and_listings(clients, policy_in):
    old = policy_in("approved", version="1.0")
    new = policy_in("approved", version="2.0")
    response = clients["reviewer"].post(
        url(old, "deprecate"), {"comment": "use 2.0", "replacement_uri": new.policy_rule_uri}, format="json"
    )
    assert response.status_code == 200
    got = clients["viewer"].get(f"/policy/{old.policy_rule_uri}")
    assert got["Deprecation"] == "true"
    assert got.json()["data"]["deprecated"] is True
    assert got.json()["data"]["replacement_uri"] == new.policy_rule_uri
    listing = clients["viewer"].get("/policy")
    assert old.policy_rule_uri in listing["X-PolicyGrid-Deprecated"]
    flags = {item["policy_rule_uri"]: item["deprecated"] for item in listing.json()["data"]}
    assert flags == {old.policy_rule_uri: True, new.policy_rule_uri: False}


def test_deprecate_refuses_an_unknown_replacement(clients, policy_in):
    policy = policy_in("approved")
    response = clients["reviewer"].post(url(policy, "deprecate"), {"replacement_uri": "nope:1-x"}, format="json")
    assert response.status_code == 400
    assert "replacement_uri" in response.json()["errors"]


def test_retire_lists_the_functions_and_graphs_that_use_the_version(clients, policy_in, audit):
    from functions.models import Function
    from graphs.models import Graph

    policy = policy_in("approved")
    Function.objects.create(function_id="uses-it", function_executor_id="local",
                            function_policy_rule_uri=policy.policy_rule_uri)
    Graph.objects.create(graph_name="g", graph_version="1", graph_release_tag="x",
                         graph_function_ids=["uses-it"], graph_connection_data={})
    audit.mark()
    response = clients["reviewer"].post(url(policy, "retire"), {"comment": "broken"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert "function uses-it" in body["affected"] and "graph g:1-x" in body["affected"]
    assert body["data"]["status"] == "retired"
    assert audit.new()[0].data["affected"] == body["affected"]
    # ... and flagged: they keep running, visibly on a retired version.
    assert clients["viewer"].get("/function/uses-it").json()["data"]["policy_retired"] is True
    assert clients["viewer"].get("/graphs/g:1-x").json()["data"]["uses_retired_policy"] is True
    found = clients["viewer"].post("/function/query", {"policy_retired": True}, format="json").json()["data"]
    assert [f["function_id"] for f in found] == ["uses-it"]


def test_new_version_copies_every_field_into_a_draft(clients, policy_in):
    policy = policy_in("approved")
    response = clients["author"].post(url(policy, "new-version"), {"version": "1.1"}, format="json")
    assert response.status_code == 201
    copy = response.json()["data"]
    original = clients["author"].get(f"/policy/{policy.policy_rule_uri}").json()["data"]
    assert copy["policy_rule_uri"] == "ip_allowlist:1.1-beta"
    assert copy["status"] == "draft" and copy["signature"] is None and copy["approvals"] == []
    for field in ("code", "code_digest", "policy_settings", "policy_parameters", "policy_input_schema",
                  "description", "metadata", "tags", "type"):
        assert copy[field] == original[field], field
    # The copy is an ordinary draft: editable.
    patch = clients["author"].patch(f"/policy/{copy['policy_rule_uri']}",
                                    {"$set": {"policy_settings.enable_external_allowlist": False}}, format="json")
    assert patch.status_code == 200, patch.content
    duplicate = clients["author"].post(url(policy, "new-version"), {"version": "1.1"}, format="json")
    assert duplicate.status_code == 409


def test_history_lists_the_entries_of_the_version(clients, policy_in):
    policy = policy_in("approved")
    response = clients["viewer"].get(url(policy, "history"))
    assert response.status_code == 200
    actions = [entry["action"] for entry in response.json()["data"]]
    assert actions == ["create", "submit", "approve"]
    assert response.json()["data"][2]["data"]["comment"] == "looks right"
    assert response.json()["data"][2]["actor"] == "reviewer-user"


def test_diff_compares_fields_and_package_files(clients, policy_in, file_server, sample_package):
    import io
    import zipfile

    policy = policy_in("approved", version="1.0")
    # A second package: one changed file, one added.
    source = zipfile.ZipFile(io.BytesIO(sample_package[2]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith("function.py"):
                data = data + b"\n# reviewed change\n"
            target.writestr(item, data)
        target.writestr("code/NOTES.md", "new file\n")
    url2 = file_server.serve("changed.zip", out.getvalue())
    body = clients["author"].post(f"/policy/{policy.policy_rule_uri}/new-version", {"version": "2.0"}, format="json")
    uri2 = body.json()["data"]["policy_rule_uri"]
    clients["author"].patch(f"/policy/{uri2}", {"$set": {"code": url2, "code_digest": "", "description": "v2"}},
                            format="json")
    response = clients["viewer"].get(f"/policy/{uri2}/diff")  # default: the previous approved version
    assert response.status_code == 200, response.content
    diff = response.json()["data"]
    assert diff["from"] == policy.policy_rule_uri and diff["to"] == uri2
    assert set(diff["fields"]) >= {"version", "code", "code_digest", "description", "policy_rule_uri"}
    assert diff["fields"]["description"]["to"] == "v2"
    assert "policy_settings" in diff["unchanged_fields"]
    assert diff["files"]["added"] == ["code/NOTES.md"]
    changed = {item["path"]: item for item in diff["files"]["changed"]}
    assert "+# reviewed change" in changed["code/function.py"]["diff"]
    explicit = clients["viewer"].get(f"/policy/{uri2}/diff?against={policy.policy_rule_uri}")
    assert explicit.json()["data"]["fields"] == diff["fields"]
    assert clients["viewer"].get(f"/policy/{uri2}/diff?against=nope:1-x").status_code == 404


def test_submit_reruns_the_registration_checks(clients, new_policy, file_server, audit):
    policy = new_policy()
    # The package disappears from its URL: submitting must fail and change nothing.
    from policies.models import PolicyRule

    PolicyRule.objects.filter(pk=policy.pk).update(code=file_server.base + "/missing.zip")
    audit.mark()
    response = clients["author"].post(url(policy, "submit"), {}, format="json")
    assert response.status_code == 400, response.content
    policy.refresh_from_db()
    assert policy.status == "draft"
    assert audit.actions() == ["submit.refused"]


def test_only_drafts_can_be_deleted_except_by_an_admin(clients, policy_in):
    approved = policy_in("approved")
    assert clients["author"].delete(f"/policy/{approved.policy_rule_uri}").status_code == 403
    assert clients["admin"].delete(f"/policy/{approved.policy_rule_uri}").status_code == 200
    draft = policy_in("draft", version="3.0")
    assert clients["author"].delete(f"/policy/{draft.policy_rule_uri}").status_code == 200
    assert AuditEntry.objects.filter(action="delete", target_key=draft.policy_rule_uri).count() == 1


def test_unauthenticated_transitions_answer_401(anon, policy_in):
    policy = policy_in("in_review")
    assert anon.post(url(policy, "approve"), {}, format="json").status_code == 401


def test_services_take_an_explicit_actor_outside_requests(policy_in, users):
    policy = policy_in("in_review")
    policy = lifecycle.approve(policy, users["admin"], "from a task")
    entry = AuditEntry.objects.filter(action="approve").get()
    assert entry.actor_username == "admin-user" and entry.request_id == ""
