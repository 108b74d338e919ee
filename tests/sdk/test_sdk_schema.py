"""The schema format of docs/runtime.md §3: every descriptor key accepted and refused, and malformed schemas."""

from __future__ import annotations

import pytest
from policygrid.errors import InputInvalid, OutputInvalid
from policygrid.schema import (
    check_management_commands,
    check_schema,
    is_json_schema,
    to_json_schema,
    validate,
    validate_management,
    validator_for,
)


def accepts(schema, value) -> bool:
    try:
        validate(schema, value, what="input_data")
    except InputInvalid:
        return False
    return True


@pytest.mark.parametrize(
    "descriptor, good, bad",
    [
        ({"type": "string"}, ["", "x"], [1, None, True, [], {}]),
        ({"type": "number"}, [0, 1.5, -3], [True, False, "1", None]),
        ({"type": "integer"}, [0, -7, 10**20], [1.5, True, "1"]),
        ({"type": "boolean"}, [True, False], [0, 1, "true", None]),
        ({"type": "array"}, [[], [1, "a"]], [{}, "abc", (1,)[0]]),
        ({"type": "object"}, [{}, {"a": 1}], [[], "x", 1]),
        ({"type": "any"}, [None, 1, "x", [], {}, True], []),
        ({"description": "no type means any"}, [None, 1, "x"], []),
        ({"type": "string", "pattern": r"\d{3}"}, ["abc123", "999"], ["12", "abc"]),
        ({"type": "string", "pattern": r"^\d{3}$"}, ["123"], ["1234", "a123"]),
        ({"type": "string", "length": 3}, ["", "abc"], ["abcd"]),
        ({"type": "number", "min": 1, "max": 2.5}, [1, 2.5, 2], [0.99, 2.51]),
        ({"type": "integer", "min": -1}, [-1, 100], [-2]),
        ({"type": "string", "choices": ["allow", "block"]}, ["allow", "block"], ["review", ""]),
        ({"type": "number", "choices": [1, 2]}, [1, 2], [3, True]),
        ({"type": "array", "choices": ["a", "b"]}, [[], ["a", "b", "a"]], [["c"], ["a", "z"]]),
        ({"type": "array", "max_length": 2}, [[], [1, 2]], [[1, 2, 3]]),
        ({"type": "array", "items": {"type": "integer", "min": 0}}, [[0, 5]], [[-1], ["a"], [0, 1.5]]),
        (
            {"type": "object", "properties": {"host": {"type": "string"}, "port": {"type": "integer", "required": False}}},
            [{"host": "a"}, {"host": "a", "port": 1}, {"host": "a", "extra": True}],
            [{}, {"host": 1}, {"host": "a", "port": "80"}],
        ),
    ],
)
def test_descriptor_keys_accept_and_refuse(descriptor, good, bad):
    schema = {"field": descriptor}
    check_schema(schema)
    for value in good:
        assert accepts(schema, {"field": value}), (descriptor, value)
    for value in bad:
        assert not accepts(schema, {"field": value}), (descriptor, value)


def test_declared_fields_are_required_by_default_and_optional_with_required_false():
    assert not accepts({"ip": {"type": "string"}}, {})
    assert accepts({"ip": {"type": "string", "required": False}}, {})


def test_undeclared_fields_are_allowed():
    assert accepts({"ip": {"type": "string"}}, {"ip": "1.2.3.4", "other": [1]})


def test_an_empty_map_accepts_anything():
    for value in ({}, {"a": 1}, [], "x", None, 3):
        assert accepts({}, value)


def test_a_non_empty_map_needs_an_object():
    assert not accepts({"ip": {"type": "string"}}, ["ip"])


def test_errors_are_keyed_by_dotted_path():
    schema = {
        "local_allowlist": {"type": "array", "items": {"type": "string", "pattern": r"^\d+\.\d+\.\d+\.\d+$"}},
        "server": {"type": "object", "properties": {"port": {"type": "integer"}}},
    }
    with pytest.raises(InputInvalid) as caught:
        validate(schema, {"local_allowlist": ["1.2.3.4", "bad"], "server": {}}, what="parameters")
    assert set(caught.value.errors) == {"parameters.local_allowlist.1", "parameters.server.port"}
    assert caught.value.errors["parameters.server.port"] == ["is required"]
    assert caught.value.message.startswith("parameters failed validation: ")


def test_error_class_is_chosen_by_the_caller():
    with pytest.raises(OutputInvalid):
        validate({"allowed": {"type": "boolean"}}, {"allowed": "yes"}, what="output", error_cls=OutputInvalid)


@pytest.mark.parametrize(
    "schema, path, reason",
    [
        ({"ip": {"type": "ipv4"}}, "ip.type", "unknown type 'ipv4'"),
        ({"ip": {"type": "string", "pattern": "([a-z"}}, "ip.pattern", "does not compile"),
        ({"n": {"type": "number", "min": 5, "max": 1}}, "n.min", "greater than max"),
        ({"n": {"type": "number", "min": "5"}}, "n.min", "must be a number"),
        ({"n": "string"}, "n", "a descriptor must be an object"),
        ({"s": {"type": "string", "length": -1}}, "s.length", "non-negative integer"),
        ({"a": {"type": "array", "max_length": 1.5}}, "a.max_length", "non-negative integer"),
        ({"s": {"type": "string", "choices": []}}, "s.choices", "non-empty list"),
        ({"s": {"type": "string", "required": "no"}}, "s.required", "true or false"),
        ({"s": {"type": "string", "min": 1}}, "s.min", "does not apply to type 'string'"),
        ({"s": {"type": "string", "patern": "x"}}, "s.patern", "unknown descriptor key"),
        ({"a": {"type": "array", "items": {"type": "nope"}}}, "a.items.type", "unknown type"),
        ({"o": {"type": "object", "properties": {"x": {"type": "string", "pattern": "("}}}}, "o.properties.x.pattern", "does not compile"),
        ({"o": {"type": "object", "properties": ["x"]}}, "o.properties", "must be a map"),
        (["ip"], "(root)", "must be a map"),
        ({"type": "object", "properties": {"x": {"type": "strin"}}}, "properties.x.type", "is not valid"),
        ({"$schema": "https://json-schema.org/draft/2020-12/schema", "pattern": "(("}, "pattern", "(("),
    ],
)
def test_malformed_schemas_are_refused_with_the_path_of_the_fault(schema, path, reason):
    with pytest.raises(InputInvalid) as caught:
        check_schema(schema)
    assert path in caught.value.errors, caught.value.errors
    assert any(reason in message for message in caught.value.errors[path]), caught.value.errors
    assert caught.value.error_type == "input_invalid"


def test_every_fault_is_reported_and_prefixed():
    with pytest.raises(InputInvalid) as caught:
        check_schema({"a": {"type": "x"}, "b": {"type": "number", "min": 3, "max": 1}}, prefix="policy_input_schema")
    assert set(caught.value.errors) == {"policy_input_schema.a.type", "policy_input_schema.b.min"}


def test_json_schema_documents_are_used_as_they_are():
    document = {"type": "object", "properties": {"n": {"type": "integer", "exclusiveMinimum": 0}}, "required": ["n"]}
    assert is_json_schema(document)
    assert to_json_schema(document) is document
    assert accepts(document, {"n": 1})
    assert not accepts(document, {"n": 0})
    assert is_json_schema({"$schema": "https://json-schema.org/draft/2020-12/schema"})
    assert not is_json_schema({"type": {"type": "string"}})  # a descriptor map with a field named "type"


def test_translation_of_the_description_input_schema():
    translated = to_json_schema({"ip": {"type": "string", "description": "d", "pattern": r"^\d{1,3}(\.\d{1,3}){3}$"}})
    assert translated == {
        "type": "object",
        "properties": {"ip": {"type": "string", "pattern": r"^\d{1,3}(\.\d{1,3}){3}$"}},
        "required": ["ip"],
    }


def test_validators_are_compiled_once_per_schema():
    assert validator_for({"x": {"type": "string"}}) is validator_for({"x": {"type": "string"}})
    assert validator_for({"x": {"type": "string"}}) is not validator_for({"x": {"type": "integer"}})


# --- management commands ----------------------------------------------------------------------------------

COMMANDS = [
    {"name": "update_local_allowlist", "description": "d", "schema": {"ips": {"type": "array", "items": {"type": "string"}}}},
    {"name": "get_state", "description": "d", "schema": {}},
]


def test_management_commands_schema_is_checked():
    check_management_commands(COMMANDS)
    check_management_commands([])
    with pytest.raises(InputInvalid) as caught:
        check_management_commands([{"name": "a", "schema": {"x": {"type": "bad"}}}, {"name": "a"}, {"schema": {}}, "x"])
    assert set(caught.value.errors) == {
        "management_commands_schema.0.schema.x.type",
        "management_commands_schema.1.name",
        "management_commands_schema.2.name",
        "management_commands_schema.3",
    }
    with pytest.raises(InputInvalid):
        check_management_commands({"name": "a"})


def test_valid_management_data_passes():
    validate_management(COMMANDS, "update_local_allowlist", {"ips": ["1.2.3.4"]})
    validate_management(COMMANDS, "get_state", {})
    validate_management(COMMANDS, "get_state", None)


def test_invalid_management_data_is_refused_naming_the_field():
    with pytest.raises(InputInvalid) as caught:
        validate_management(COMMANDS, "update_local_allowlist", {"ips": "1.2.3.4"})
    assert set(caught.value.errors) == {"data.ips"}


def test_unknown_management_action_is_refused_when_commands_are_declared():
    with pytest.raises(InputInvalid, match="unknown management action 'reboot'") as caught:
        validate_management(COMMANDS, "reboot", {})
    assert "action" in caught.value.errors


def test_any_action_is_accepted_when_no_commands_are_declared():
    validate_management([], "anything", {"x": 1})
    validate_management(None, "anything", None)


# --- a whole policy record --------------------------------------------------------------------------------


def test_the_sample_record_passes_the_registration_checks(ip_allowlist_record):
    from policygrid.schema import check_policy_record

    check_policy_record(ip_allowlist_record)


def test_stored_values_must_satisfy_their_schemas(ip_allowlist_record):
    from policygrid.schema import check_policy_record

    ip_allowlist_record["policy_parameters"]["local_allowlist"] = ["not-an-ip"]
    ip_allowlist_record["policy_output_schema"]["allowed"]["type"] = "bool"
    with pytest.raises(InputInvalid) as caught:
        check_policy_record(ip_allowlist_record)
    assert set(caught.value.errors) == {"policy_parameters.local_allowlist.0", "policy_output_schema.allowed.type"}
