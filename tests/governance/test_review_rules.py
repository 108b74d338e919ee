"""Review can't be bypassed: whoever created, changed or submitted a version doesn't approve it, and an author
edits only their own versions (docs/governance.md §2)."""
import pytest

from governance.models import BehaviourChange

pytestmark = pytest.mark.django_db


def url(policy, action=""):
    return f"/policy/{policy.policy_rule_uri}" + (f"/{action}" if action else "")


@pytest.fixture
def dual(make_user, client_for):
    """A user who is both author and reviewer, and their client."""
    user = make_user("dual-role", "author", "reviewer")
    return user, client_for(user)


@pytest.fixture
def other_code(file_server, sample_package):
    """Another valid ``code``: the same package at another URL (a swapped package would be served likewise)."""
    return file_server.serve("swapped-ip_allowlist.zip", sample_package[2])


@pytest.fixture
def second_author(make_user, client_for):
    user = make_user("author-two", "author")
    return user, client_for(user)


def draft_by(client, policy_payload, version="1.0"):
    from policies.models import PolicyRule

    response = client.post("/policy", policy_payload(version=version), format="json")
    assert response.status_code == 201, response.content
    return PolicyRule.objects.get(policy_rule_uri=response.json()["data"]["policy_rule_uri"])


def test_the_creator_cant_approve_what_another_author_submitted(dual, second_author, policy_payload, clients):
    _user, dual_client = dual
    policy = draft_by(dual_client, policy_payload)
    assert second_author[1].post(url(policy, "submit"), {}, format="json").status_code == 200
    response = dual_client.post(url(policy, "approve"), {}, format="json")
    assert response.status_code == 403, response.content
    assert "dual-role created" in response.json()["message"]
    policy.refresh_from_db()
    assert policy.status == "in_review"
    assert clients["reviewer"].post(url(policy, "approve"), {}, format="json").status_code == 200


def test_another_author_cant_patch_a_drafts_code(second_author, new_policy, other_code):
    policy = new_policy()
    response = second_author[1].patch(url(policy), {"$set": {"code": other_code}},
                                      format="json")
    assert response.status_code == 403, response.content
    assert "belongs to author-user" in response.json()["message"]
    assert not BehaviourChange.objects.exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_another_author_cant_edit_or_delete_a_draft(second_author, new_policy, policy_payload, method):
    policy = new_policy()
    body = {"put": policy_payload(description="mine now"), "patch": {"$set": {"description": "mine now"}},
            "delete": None}[method]
    response = getattr(second_author[1], method)(url(policy), body, format="json")
    assert response.status_code == 403, response.content
    assert "author-user" in response.json()["message"]
    policy.refresh_from_db()
    assert policy.description != "mine now"


def test_the_owner_and_an_admin_may_edit(new_policy, clients):
    policy = new_policy()
    assert clients["author"].patch(url(policy), {"$set": {"description": "own"}}, format="json").status_code == 200
    assert clients["admin"].patch(url(policy), {"$set": {"description": "admin"}}, format="json").status_code == 200
    assert clients["admin"].delete(url(policy)).status_code == 200


def test_an_admin_who_changed_the_code_cant_approve(new_policy, clients, users, other_code):
    policy = new_policy()
    response = clients["admin"].patch(url(policy), {"$set": {"code": other_code}},
                                      format="json")
    assert response.status_code == 200, response.content
    change = BehaviourChange.objects.get()
    assert change.changed_by == users["admin"] and "code" in change.fields
    assert clients["author"].post(url(policy, "submit"), {}, format="json").status_code == 200
    response = clients["admin"].post(url(policy, "approve"), {}, format="json")
    assert response.status_code == 403, response.content
    assert "admin-user changed the behaviour fields" in response.json()["message"]
    assert "code" in response.json()["message"]


def test_a_descriptive_change_doesnt_make_a_contributor(new_policy, clients):
    policy = new_policy()
    assert clients["admin"].patch(url(policy), {"$set": {"description": "typo"}}, format="json").status_code == 200
    assert not BehaviourChange.objects.exists()
    assert clients["author"].post(url(policy, "submit"), {}, format="json").status_code == 200
    assert clients["admin"].post(url(policy, "approve"), {}, format="json").status_code == 200


def test_the_submitter_cant_approve(new_policy, clients):
    policy = new_policy()
    assert clients["admin"].post(url(policy, "submit"), {}, format="json").status_code == 200
    response = clients["admin"].post(url(policy, "approve"), {}, format="json")
    assert response.status_code == 403
    assert "admin-user submitted" in response.json()["message"]


def test_the_diff_names_every_contributor(new_policy, clients, users, policy_in, other_code):
    approved = policy_in("approved", version="1.0")
    draft = new_policy(version="2.0")
    assert clients["admin"].patch(url(draft), {"$set": {"code": other_code}},
                                  format="json").status_code == 200
    assert clients["author"].post(url(draft, "submit"), {}, format="json").status_code == 200
    response = clients["reviewer"].get(url(draft, "diff"), {"against": approved.policy_rule_uri})
    assert response.status_code == 200, response.content
    people = {p["username"]: p for p in response.json()["data"]["contributors"]}
    assert people["author-user"]["roles"] == ["created", "submitted"]
    assert people["admin-user"]["roles"] == ["changed"] and "code" in people["admin-user"]["fields"]
    assert set(people) == {"author-user", "admin-user"}


def test_the_review_page_names_contributors_and_hides_approve_from_them(dual, second_author, policy_payload,
                                                                       client, clients):
    user, dual_client = dual
    policy = draft_by(dual_client, policy_payload)
    assert second_author[1].post(url(policy, "submit"), {}, format="json").status_code == 200
    client.force_login(user)
    page = client.get(f"/portal/policy/{policy.policy_rule_uri}/").content.decode()
    assert 'data-testid="contributors"' in page and "author-two" in page and "dual-role" in page
    assert 'data-testid="approve"' not in page
    assert "You created this version" in page
