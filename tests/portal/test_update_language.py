"""The update language of docs/api.md §3 through PUT/PATCH: dotted $set/$unset, plain documents, validation first."""
import pytest

from policies.models import PolicyRule

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy(api, policy_payload):
    body = policy_payload()
    assert api.post("/policy", body, format="json").status_code == 201
    return "/policy/ip_allowlist:1.0-beta"


def test_the_description_example_sets_a_dotted_path_and_a_field(api, policy):
    response = api.put(policy, {"$set": {"policy_parameters.local_allowlist": ["10.0.0.1", "8.8.8.8"],
                                         "description": "Updated policy"}}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["policy_parameters"]["local_allowlist"] == ["10.0.0.1", "8.8.8.8"]
    assert data["description"] == "Updated policy"
    assert data["metadata"]["author_name"] == "Prasanna"  # untouched fields stay


def test_set_creates_intermediate_objects_and_indexes_arrays(api, policy):
    api.patch(policy, {"$set": {"metadata.deep.er.value": 3, "metadata.audience.0": "everyone"}}, format="json")
    metadata = api.get(policy).json()["data"]["metadata"]
    assert metadata["deep"] == {"er": {"value": 3}}
    assert metadata["audience"][0] == "everyone"


def test_unset_removes_a_dotted_path_and_resets_a_field(api, policy):
    api.patch(policy, {"$unset": {"metadata.license": "", "description": ""}}, format="json")
    data = api.get(policy).json()["data"]
    assert "license" not in data["metadata"]
    assert data["description"] == ""


def test_identity_fields_cannot_change_in_either_form(api, policy):
    for body in ({"$set": {"name": "other"}}, {"$set": {"policy_rule_uri": "x:1-y"}}, {"$unset": {"version": ""}}):
        response = api.patch(policy, body, format="json")
        assert response.status_code == 400, body
    full = api.get(policy).json()["data"]
    full["release_tag"] = "stable"
    assert api.put(policy, full, format="json").status_code == 400
    assert PolicyRule.objects.filter(policy_rule_uri="ip_allowlist:1.0-beta").exists()


def test_an_invalid_result_is_refused_and_nothing_is_saved(api, policy):
    before = api.get(policy).json()["data"]
    # The stored parameters must satisfy their schema: a non-IP in the allowlist is refused.
    response = api.patch(policy, {"$set": {"policy_parameters.local_allowlist": ["not-an-ip"],
                                           "description": "must not be saved"}}, format="json")
    assert response.status_code == 400
    assert any(key.startswith("policy_parameters") for key in response.json()["errors"])
    assert api.get(policy).json()["data"] == before


def test_a_malformed_schema_in_an_update_is_refused_with_its_path(api, policy):
    response = api.patch(policy, {"$set": {"policy_input_schema.ip.type": "ipaddress"}}, format="json")
    assert response.status_code == 400
    assert any("policy_input_schema" in key for key in response.json()["errors"]), response.json()


def test_a_plain_put_sets_the_fields_it_names_and_keeps_the_others(api, policy):
    """Issue 14 item 9: an earlier client's update_policy sent a few fields, and the replacement reset the rest
    (management_commands_schema among them)."""
    before = api.get(policy).json()["data"]
    assert before["management_commands_schema"] and before["metadata"]
    response = api.put(policy, {"description": "only this"}, format="json")
    assert response.status_code == 200, response.content
    after = response.json()["data"]
    assert after["description"] == "only this"
    for name in ("management_commands_schema", "metadata", "policy_parameters", "policy_settings", "tags"):
        assert after[name] == before[name], name


def test_a_plain_put_is_validated_like_a_create(api, policy):
    before = api.get(policy).json()["data"]
    response = api.put(policy, {"policy_parameters": {"local_allowlist": ["not-an-ip"]}, "description": "no"},
                       format="json")
    assert response.status_code == 400, response.content
    assert any(key.startswith("policy_parameters") for key in response.json()["errors"])
    assert api.get(policy).json()["data"] == before


def test_a_whole_record_put_back_changes_only_what_differs(api, policy):
    full = api.get(policy).json()["data"]
    full["description"] = "edited"
    response = api.put(policy, full, format="json")
    assert response.status_code == 200, response.content
    assert {k: v for k, v in response.json()["data"].items() if k not in ("updated_at", "description")} == {
        k: v for k, v in full.items() if k not in ("updated_at", "description")}


def test_patch_accepts_only_the_operator_form(api, policy):
    response = api.patch(policy, {"description": "plain"}, format="json")
    assert response.status_code == 400
    assert "PATCH" in response.json()["message"]


@pytest.mark.parametrize("body,needle", [
    ({"$inc": {"x": 1}}, "$inc"),
    ({"$set": {"description": "a"}, "description": "b"}, "mixes"),
    ({"$set": []}, "$set"),
    ({"$set": {"nope": 1}}, "nope"),
    ({"$set": {"description.deep": 1}}, "not a JSON field"),
    ({"$set": {"metadata..x": 1}}, "dotted path"),
    ({"$set": {"status": "approved"}}, "read-only"),
    ({"$set": {"metadata.audience.9": "x"}}, "past the end"),
])
def test_malformed_update_documents_are_400_naming_the_problem(api, policy, body, needle):
    response = api.patch(policy, body, format="json")
    assert response.status_code == 400, response.content
    assert needle in response.content.decode()


def test_dotted_set_on_executor_metadata(api):
    api.post("/executor", {"executor_id": "executor-001", "executor_host_uri": "http://127.0.0.1:9"}, format="json")
    response = api.put("/executor/executor-001", {"$set": {"executor_metadata.tags": ["amd_64", "ai-worker"]}},
                       format="json")
    assert response.status_code == 200
    assert response.json()["data"]["executor_metadata"] == {"tags": ["amd_64", "ai-worker"]}
