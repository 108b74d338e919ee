"""The execution gate (docs/governance.md §2): only approved and deprecated versions run; dry runs of drafts for
their authors and reviewers; retired never; a development setting relaxes it."""
import pytest
from policygrid.errors import NotExecutable

from governance.gate import assert_executable

pytestmark = pytest.mark.django_db

STATES = ("draft", "in_review", "approved", "deprecated", "retired")


@pytest.mark.parametrize("state", STATES)
def test_only_approved_and_deprecated_versions_run(state, policy_in, users):
    policy = policy_in(state)
    if state in ("approved", "deprecated"):
        assert assert_executable(policy, users["operator"]) is None
    else:
        with pytest.raises(NotExecutable) as caught:
            assert_executable(policy, users["operator"])
        assert state in caught.value.message
        assert caught.value.status == 409


@pytest.mark.parametrize("state", ["draft", "in_review"])
@pytest.mark.parametrize("role,allowed", [("author", True), ("reviewer", True), ("operator", False),
                                          ("viewer", False)])
def test_dry_runs_of_unapproved_versions_are_for_authors_and_reviewers(state, role, allowed, policy_in, users):
    policy = policy_in(state)
    if allowed:
        assert assert_executable(policy, users[role], dry_run=True) is None
    else:
        with pytest.raises(NotExecutable):
            assert_executable(policy, users[role], dry_run=True)


def test_retired_versions_never_run_not_even_dry(policy_in, users, settings):
    policy = policy_in("retired")
    settings.RELAX_EXECUTION_GATE = True
    with pytest.raises(NotExecutable):
        assert_executable(policy, users["admin"], dry_run=True)


def test_the_development_setting_relaxes_the_gate(policy_in, users, settings):
    policy = policy_in("draft")
    settings.RELAX_EXECUTION_GATE = True
    assert assert_executable(policy, users["operator"]) is None


def test_the_type2_route_is_there():
    """The route test below would be meaningless without the route: a missing one fails here, not skips."""
    from django.urls import resolve

    assert resolve("/executor/gate-test/execute_policy").url_name


@pytest.mark.parametrize("state", STATES)
def test_the_type2_route_applies_the_gate(state, policy_in, clients):
    from executors.models import PolicyExecutor
    from tests.executors.conftest import free_port

    # Nothing listens on the executor's port: a call past the gate fails with 502, one stopped by it with 409.
    PolicyExecutor.objects.create(executor_id="gate-test", executor_host_uri=f"http://127.0.0.1:{free_port()}")
    policy = policy_in(state)
    response = clients["operator"].post(
        "/executor/gate-test/execute_policy",
        {"policy_rule_uri": policy.policy_rule_uri, "input_data": {"ip": "10.0.0.1"}},
        format="json",
    )
    body = response.json()
    if state in ("approved", "deprecated"):
        assert (response.status_code, body["success"], body["error_type"]) == (502, False, "unavailable"), body
        assert "gate-test" in body["message"]
    else:
        assert (response.status_code, body["success"], body["error_type"]) == (409, False, "not_executable"), body
        assert policy.policy_rule_uri in body["message"] and f"is {state}" in body["message"]
