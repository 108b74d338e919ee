"""Fixtures of the governance tests: a private key store, versions brought to each lifecycle state, and
Debian's chromium driven by Playwright for the page tests."""
import functools
import os
from pathlib import Path

import pytest

from audit.models import AuditEntry
from governance import lifecycle


@pytest.fixture(autouse=True)
def _governance_settings(settings, tmp_path):
    settings.SIGNING_KEY_DIR = tmp_path / "keys"
    settings.AUDIT_CHECKPOINT_FILE = tmp_path / "audit-checkpoints.jsonl"
    settings.SIGNING_ENABLED = True
    settings.APPROVALS_REQUIRED = 1
    settings.RELAX_EXECUTION_GATE = False


@pytest.fixture(autouse=True)
def signing_key(db, _governance_settings):
    """An active key made before the test, so the first approval doesn't add a key-creation entry."""
    from governance.signing import create_signing_key

    return create_signing_key()


@pytest.fixture
def second_reviewer(make_user):
    return make_user("reviewer-two", "reviewer")


@pytest.fixture
def new_policy(clients, policy_payload):
    """``new_policy(version="1.0", **fields)`` registers a draft as the author and returns it (the model)."""
    from policies.models import PolicyRule

    def make(version="1.0", **fields):
        response = clients["author"].post("/policy", policy_payload(version=version, **fields), format="json")
        assert response.status_code == 201, response.content
        return PolicyRule.objects.get(policy_rule_uri=response.json()["data"]["policy_rule_uri"])

    return make


@pytest.fixture
def policy_in(new_policy, users):
    """``policy_in(state)``: a policy brought to ``state`` through the service functions."""

    def make(state: str, version="1.0"):
        policy = new_policy(version=version)
        if state == "draft":
            return policy
        policy = lifecycle.submit(policy, users["author"], "ready")
        if state == "in_review":
            return policy
        policy = lifecycle.approve(policy, users["reviewer"], "looks right")
        if state == "approved":
            return policy
        if state == "deprecated":
            return lifecycle.deprecate(policy, users["reviewer"], "old")
        if state == "retired":
            return lifecycle.retire(policy, users["reviewer"], "gone")[0]
        raise AssertionError(state)

    return make


class AuditWatch:
    """Entries written after a mark, to check 'one entry per action'."""

    def __init__(self):
        self.mark()

    def mark(self):
        last = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first()
        self.since = last or 0

    def new(self):
        return list(AuditEntry.objects.filter(seq__gt=self.since).order_by("seq"))

    def actions(self):
        return [entry.action for entry in self.new()]


@pytest.fixture
def audit(db):
    return AuditWatch()


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"BROWSER TEST SKIPPED: {CHROMIUM} is missing; install Debian's chromium (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are synchronous.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()


def closes_its_connections(test):
    """The test body's ORM calls, made while Playwright's loop runs, get a database connection of their own
    (Django keeps connections per context, and a fixture's teardown runs in another one): closed at the end of
    the body, or PostgreSQL refuses to drop the test database at the end of the run."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        try:
            return test(*args, **kwargs)
        finally:
            from django.db import connections

            connections.close_all()

    return run
