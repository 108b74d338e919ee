"""The README's "Migrating from the earlier system" (issue 14 item 12): what it tells an earlier client to change
is what the portal does — creation is 201, failures carry their status, drafts don't run."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def guide() -> str:
    text = README.read_text()
    found = re.search(r"^## Migrating from the earlier system\n(.*?)^## ", text, re.M | re.S)
    assert found, "the README has no 'Migrating from the earlier system' section"
    return found.group(1)


def test_the_guide_names_each_change_an_earlier_client_must_make():
    text = guide()
    for needle in ("Authorization: Token", "201 Created", "response.ok", "409", "not_executable", "/submit",
                   "/approve", "dry_run", "POLICYGRID_ALLOW_PRIVATE_NETWORKS"):
        assert needle in text, needle


@pytest.mark.django_db
def test_creation_answers_201_with_the_record_as_the_guide_says(api, anon, policy_payload):
    created = api.post("/policy", policy_payload(), format="json")
    assert created.status_code == 201 and created.json()["success"] is True
    created = api.post("/executor", {"executor_id": "e-1", "executor_host_uri": "http://127.0.0.1:9"}, format="json")
    assert created.status_code == 201 and created.json()["success"] is True
    assert api.post("/tokens", {"name": "ci"}, format="json").status_code == 201
    refused = anon.get("/policy")
    assert refused.status_code == 401 and refused.json()["success"] is False


@pytest.mark.django_db
def test_a_draft_does_not_run_until_approved_as_the_guide_says(api, policy_payload):
    api.post("/policy", policy_payload(), format="json")
    api.post("/executor", {"executor_id": "e-1", "executor_host_uri": "http://127.0.0.1:9"}, format="json")
    refused = api.post("/executor/e-1/execute_policy", {"policy_rule_uri": "ip_allowlist:1.0-beta",
                                                       "input_data": {"ip": "1.1.1.1"}}, format="json")
    assert refused.status_code == 409 and refused.json()["error_type"] == "not_executable"
