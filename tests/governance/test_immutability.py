"""Versions that left draft are immutable in every behaviour-relevant field (409 naming it); descriptive
fields stay editable (docs/governance.md §2)."""
import pytest

from audit.models import AuditEntry
from policies.models import PolicyRule

pytestmark = pytest.mark.django_db

# A new value for each frozen field that is valid on its own (so only the lifecycle can refuse it).
NEW_VALUES = {
    "code": "http://127.0.0.1:9/elsewhere.zip",
    "code_digest": "sha256:" + "0" * 64,
    "code_type": "zip",
    "type": "python_class_v2",
    "policy_input_schema": {"ip": {"type": "string"}},
    "policy_output_schema": {"allowed": {"type": "boolean"}},
    "policy_settings_schema": {},
    "policy_parameters_schema": {},
    "policy_settings": {},
    "policy_parameters": {},
    "management_commands_schema": [{"action": "reset"}],
    "policy_network": {"outbound_ports": [443]},
}


def test_every_frozen_field_of_the_model_is_covered():
    assert set(NEW_VALUES) == set(PolicyRule.frozen_fields)


@pytest.mark.parametrize("state", ["in_review", "approved", "deprecated"])
@pytest.mark.parametrize("field", sorted(NEW_VALUES))
def test_frozen_field_answers_409_naming_it(field, state, clients, policy_in):
    policy = policy_in(state)
    before = clients["admin"].get(f"/policy/{policy.policy_rule_uri}").json()["data"]
    response = clients["admin"].patch(
        f"/policy/{policy.policy_rule_uri}", {"$set": {field: NEW_VALUES[field]}}, format="json"
    )
    assert response.status_code == 409, response.content
    assert field in response.json()["message"] and state in response.json()["message"]
    after = clients["admin"].get(f"/policy/{policy.policy_rule_uri}").json()["data"]
    assert after[field] == before[field]
    assert AuditEntry.objects.filter(action="update.refused", target_key=policy.policy_rule_uri).count() == 1


def test_a_full_replacement_that_changes_a_frozen_field_is_refused(clients, policy_in):
    policy = policy_in("approved")
    record = clients["admin"].get(f"/policy/{policy.policy_rule_uri}").json()["data"]
    record["policy_settings"] = {}
    response = clients["admin"].put(f"/policy/{policy.policy_rule_uri}", record, format="json")
    assert response.status_code == 409
    assert "policy_settings" in response.json()["message"]


@pytest.mark.parametrize("field,value", [("description", "clearer words"), ("metadata", {"owner": "sec"}),
                                         ("tags", "net,allowlist")])
def test_descriptive_fields_stay_editable_after_approval(field, value, clients, policy_in):
    policy = policy_in("approved")
    response = clients["author"].patch(f"/policy/{policy.policy_rule_uri}", {"$set": {field: value}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["data"][field] == value
    assert response.json()["data"]["status"] == "approved"
    entry = AuditEntry.objects.filter(action="update", target_key=policy.policy_rule_uri).get()
    assert entry.data["changed"] == [field]
    assert entry.data["after"][field] == value


def test_a_full_replacement_that_keeps_frozen_fields_is_allowed(clients, policy_in):
    policy = policy_in("approved")
    record = clients["admin"].get(f"/policy/{policy.policy_rule_uri}").json()["data"]
    record["description"] = "edited"
    response = clients["admin"].put(f"/policy/{policy.policy_rule_uri}", record, format="json")
    assert response.status_code == 200, response.content


def test_drafts_are_fully_editable(clients, policy_in):
    policy = policy_in("draft")
    response = clients["author"].patch(
        f"/policy/{policy.policy_rule_uri}", {"$set": {"policy_parameters.local_allowlist": ["10.0.0.1"]}},
        format="json",
    )
    assert response.status_code == 200, response.content


def test_the_signature_still_verifies_after_a_descriptive_edit(clients, policy_in, signing_key):
    from governance.signing import verify_object

    policy = policy_in("approved")
    response = clients["author"].patch(f"/policy/{policy.policy_rule_uri}", {"$set": {"description": "x"}},
                                       format="json")
    assert response.status_code == 200, response.content
    policy.refresh_from_db()
    assert policy.description == "x"
    assert verify_object(policy) == signing_key.key_id


def test_create_update_delete_each_write_one_entry_with_before_and_after(clients, policy_payload):
    created = clients["author"].post("/policy", policy_payload(version="9.0"), format="json")
    uri = created.json()["data"]["policy_rule_uri"]
    clients["author"].patch(f"/policy/{uri}", {"$set": {"description": "changed"}}, format="json")
    clients["author"].delete(f"/policy/{uri}")
    entries = list(AuditEntry.objects.filter(target_key=uri).order_by("seq"))
    assert [e.action for e in entries] == ["create", "update", "delete"]
    assert entries[0].data["after"]["policy_rule_uri"] == uri
    assert entries[1].data["before"]["description"] != "changed"
    assert entries[1].data["after"]["description"] == "changed"
    assert entries[2].data["before"]["description"] == "changed"
    assert all(e.actor_username == "author-user" for e in entries)
