"""The portal pages a newcomer met (issue 14 item 5): the plural name, a rejection's required comment, the
"previous approved" version of a diff and its usernames, the styled 404 page and free-text search on the
lists. The 390 px layout is checked in a browser (test_browser_layout.py)."""
import pytest
from django.test import Client

from governance import diff as version_diff
from governance import lifecycle

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-1"


def page_client(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_policies_are_called_policies_in_the_portal_and_the_admin(users):
    client = page_client(users["admin"])
    for url in ("/portal/policies/", "/admin/", "/admin/policies/policyrule/"):
        text = client.get(url).content.decode()
        assert "Policys" not in text and "policys" not in text, url
    assert "Policies" in client.get("/admin/").content.decode()


def test_a_rejection_without_a_comment_is_refused_everywhere(policy_in, users, clients):
    policy = policy_in("in_review")
    response = clients["reviewer"].post(f"/policy/{policy.policy_rule_uri}/reject", {"comment": "  "}, format="json")
    assert response.status_code == 400 and "comment" in response.json()["message"]
    page = page_client(users["reviewer"]).post(f"/portal/policy/{policy.policy_rule_uri}/reject/", {"comment": ""},
                                               follow=True)
    assert "a rejection needs a comment" in page.content.decode()
    policy.refresh_from_db()
    assert policy.status == "in_review"
    lifecycle.reject(policy, users["reviewer"], "the edge case has no test")
    policy.refresh_from_db()
    assert policy.status == "draft"


def test_previous_approved_is_the_highest_earlier_version_still_in_force(policy_in, users):
    older = policy_in("approved", version="1.0")
    policy_in("retired", version="1.5")      # retired: never the base of a diff
    policy_in("approved", version="2.0")     # newer: not what 1.7 follows
    current = policy_in("in_review", version="1.7")
    assert version_diff.previous_approved(current) == older
    assert version_diff.previous_approved(older) is None


def test_the_diff_names_people_by_username(new_policy, users):
    first = new_policy(version="1.0")
    second = new_policy(version="1.1")
    type(second).objects.filter(pk=second.pk).update(created_by=users["admin"])
    second.refresh_from_db()
    changes = version_diff.diff(second, first, with_files=False)["fields"]
    assert changes["created_by"] == {"from": "author-user", "to": "admin-user"}


def test_an_unknown_page_is_the_portals_own_404(users):
    response = page_client(users["viewer"]).get("/portal/no-such-page/")
    assert response.status_code == 404
    text = response.content.decode()
    assert "portal/portal.css" in text and 'data-testid="not-found"' in text and "/portal/no-such-page/" in text
    assert Client().get("/no-such-route").json()["success"] is False  # the API's 404 stays JSON


def test_the_list_searches_free_text_like_the_api(new_policy, users):
    new_policy(version="1.0", description="Blocks unknown addresses.")
    new_policy(version="2.0", description="Lets everything through.")
    client = page_client(users["viewer"])
    text = client.get("/portal/policies/?q=unknown+addresses").content.decode()
    assert "ip_allowlist:1.0-beta" in text and "ip_allowlist:2.0-beta" not in text
    assert 'value="unknown addresses"' in text
    text = client.get("/portal/policies/?q=nothing-like-this").content.decode()
    assert "No version matches" in text
    text = client.get("/portal/policies/?status=draft&q=everything").content.decode()
    assert "ip_allowlist:2.0-beta" in text and "ip_allowlist:1.0-beta" not in text
