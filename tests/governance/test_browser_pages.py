"""The portal's pages in a real browser at a phone's width (issue 14 item 5): the policy list fits 390 px,
searches free text, and a rejection without a comment is refused with the reason shown."""
from pathlib import Path

import pytest

from governance import lifecycle
from tests.governance.conftest import closes_its_connections

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "pw-for-tests-1"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def login(page, base, username):
    page.goto(f"{base}/portal/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/portal/review/")


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@closes_its_connections
def test_the_policy_list_fits_a_phone_and_searches(browser, live_server, users, new_policy):
    ARTIFACTS.mkdir(exist_ok=True)
    new_policy(version="1.0", description="Blocks unknown addresses.")
    new_policy(name="a-policy-with-a-rather-long-name-for-a-phone", version="10.20.30",
               release_tag="release-candidate", description="Lets everything through.")
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    login(page, live_server.url, "reviewer-user")
    for path in ("/portal/review/", "/portal/policies/"):
        page.goto(live_server.url + path)
        assert page_width(page) <= 390, path
    page.screenshot(path=str(ARTIFACTS / "policy-list-390px.png"), full_page=True)
    page.fill("[data-testid=search]", "unknown addresses")
    page.press("[data-testid=search]", "Enter")
    page.wait_for_url("**/portal/policies/?q=unknown+addresses")
    listed = page.inner_text("[data-testid=version-list]")
    assert "ip_allowlist:1.0-beta" in listed and "rather-long-name" not in listed
    assert "Policys" not in page.content()
    context.close()


@closes_its_connections
def test_a_rejection_without_a_comment_is_refused_with_the_reason(browser, live_server, users, new_policy):
    policy = lifecycle.submit(new_policy(version="1.0"), users["author"], "ready")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    login(page, live_server.url, "reviewer-user")
    page.goto(f"{live_server.url}/portal/policy/{policy.policy_rule_uri}/")
    page.click("[data-testid=reject]")
    page.wait_for_selector("text=a rejection needs a comment")
    assert page.inner_text("[data-testid=status]") == "In review"
    page.fill("#comment", "The allowlist misses the IPv6 loopback.")
    page.click("[data-testid=reject]")
    page.wait_for_selector("text=rejected.")
    assert page.inner_text("[data-testid=status]") == "Draft"
    context.close()
