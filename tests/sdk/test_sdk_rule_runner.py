"""PolicyRunner: the override rule, checks around eval, output conversion, management commands."""

from __future__ import annotations

import pytest
from policygrid.context import MemoryContext
from policygrid.errors import InputInvalid, OutputInvalid, PolicyError
from policygrid.loader import load_rule_class
from policygrid.rule_runner import PolicyRunner, merge_overrides, to_json_value


class Recorder:
    """A policy class that keeps what it was given."""

    def __init__(self, rule_id, settings, parameters):
        self.rule_id, self.settings, self.parameters = rule_id, settings, parameters

    def eval(self, parameters, input_data, context):
        return {"rule_id": self.rule_id, "settings": self.settings, "parameters": parameters, "input": input_data}


def record(**fields):
    base = {"policy_rule_uri": "demo:1.0-beta"}
    base.update(fields)
    return base


# --- the override rule, identically for settings and parameters ------------------------------------------

FIELDS = [("settings", "policy_settings", "policy_settings_schema"), ("parameters", "policy_parameters", "policy_parameters_schema")]


@pytest.mark.parametrize("argument, stored_field, schema_field", FIELDS)
def test_callers_keys_win_and_stored_keys_fill_the_rest(argument, stored_field, schema_field):
    stored = {"a": 1, "b": {"deep": [1, 2]}, "c": "kept"}
    runner = PolicyRunner(record(**{stored_field: stored}), Recorder, **{argument: {"a": 2, "b": {"other": True}}})
    effective = getattr(runner, argument)
    assert effective == {"a": 2, "b": {"other": True}, "c": "kept"}  # key by key: "b" replaced, not merged
    assert getattr(runner.instance, argument) is effective


@pytest.mark.parametrize("argument, stored_field, schema_field", FIELDS)
def test_neither_the_record_nor_the_callers_dict_is_mutated(argument, stored_field, schema_field):
    stored = {"list": [1]}
    caller = {"other": [2]}
    rec = record(**{stored_field: stored})
    runner = PolicyRunner(rec, Recorder, **{argument: caller})
    getattr(runner, argument)["list"].append(99)
    getattr(runner, argument)["other"].append(99)
    assert rec[stored_field] == {"list": [1]}
    assert caller == {"other": [2]}


@pytest.mark.parametrize("argument, stored_field, schema_field", FIELDS)
def test_effective_values_are_validated_naming_the_field(argument, stored_field, schema_field):
    schema = {"limit": {"type": "integer", "max": 10}}
    rec = record(**{stored_field: {"limit": 5}, schema_field: schema})
    PolicyRunner(rec, Recorder)
    with pytest.raises(InputInvalid) as caught:
        PolicyRunner(rec, Recorder, **{argument: {"limit": 11}})
    assert set(caught.value.errors) == {f"{argument}.limit"}


def test_merge_overrides_with_nothing_to_merge():
    assert merge_overrides(None, None) == {}
    assert merge_overrides({"a": 1}, None) == {"a": 1}
    assert merge_overrides(None, {"a": 1}) == {"a": 1}
    with pytest.raises(InputInvalid):
        merge_overrides({}, ["not", "a", "dict"])


# --- eval -------------------------------------------------------------------------------------------------


def test_instance_is_built_once_with_the_uri_as_rule_id():
    runner = PolicyRunner(record(), Recorder)
    first = runner.eval({"n": 1})
    assert first["rule_id"] == "demo:1.0-beta"
    assert runner.eval({"n": 2})["input"] == {"n": 2}


def test_uri_is_derived_from_name_version_and_tag_when_absent():
    runner = PolicyRunner({"name": "n", "version": "1", "release_tag": "t"}, Recorder)
    assert runner.instance.rule_id == "n:1-t"


def test_input_is_validated_before_eval(ip_allowlist_record, ip_allowlist_dir):
    runner = PolicyRunner(ip_allowlist_record, load_rule_class(ip_allowlist_dir))
    with pytest.raises(InputInvalid) as caught:
        runner.eval({"ip": "not-an-ip"})
    assert list(caught.value.errors) == ["input_data.ip"]
    with pytest.raises(InputInvalid) as caught:
        runner.eval({})
    assert caught.value.errors == {"input_data.ip": ["is required"]}


def test_the_sample_policy_allows_and_denies(ip_allowlist_record, ip_allowlist_dir):
    runner = PolicyRunner(ip_allowlist_record, load_rule_class(ip_allowlist_dir))
    assert runner.eval({"ip": "192.168.0.1"}) == {"allowed": True, "input_data": {"ip": "192.168.0.1"}, "reason": "allowed"}
    assert runner.eval({"ip": "192.168.0.109"})["allowed"] is False


def test_output_is_validated_against_its_schema():
    class Bad(Recorder):
        def eval(self, parameters, input_data, context):
            return {"allowed": "yes"}

    runner = PolicyRunner(record(policy_output_schema={"allowed": {"type": "boolean"}}), Bad)
    with pytest.raises(OutputInvalid) as caught:
        runner.eval({})
    assert caught.value.error_type == "output_invalid"
    assert list(caught.value.errors) == ["output.allowed"]


def test_tuples_become_lists_and_non_json_output_is_refused():
    class Tuples(Recorder):
        def eval(self, parameters, input_data, context):
            return input_data

    runner = PolicyRunner(record(), Tuples)
    assert runner.eval({"pair": (1, (2, 3))}) == {"pair": [1, [2, 3]]}
    for bad, reason in (({"s": {1, 2}}, "set"), ({"x": object()}, "object"), ({"f": float("nan")}, "nan"), ({1: "a"}, "key")):
        with pytest.raises(OutputInvalid, match=reason):
            runner.eval(bad)


def test_json_output_is_returned_without_copying():
    value = {"a": [1, {"b": "c"}], "d": None, "e": 1.5}
    assert to_json_value(value) is value


def test_a_raising_policy_is_a_policy_error_with_its_exception_type_and_message():
    class Raises(Recorder):
        def eval(self, parameters, input_data, context):
            raise ValueError("bad input shape")

    with pytest.raises(PolicyError, match="ValueError: bad input shape") as caught:
        PolicyRunner(record(), Raises).eval({})
    assert caught.value.exception_type == "ValueError"
    assert caught.value.to_dict() == {"success": False, "message": "ValueError: bad input shape", "error_type": "policy_error"}


def test_a_constructor_that_raises_is_a_policy_error():
    class Broken(Recorder):
        def __init__(self, *args):
            raise KeyError("allowlist_api")

    with pytest.raises(PolicyError, match="constructing the policy failed: KeyError"):
        PolicyRunner(record(), Broken)


def test_validation_off_skips_every_check():
    class Loose(Recorder):
        def eval(self, parameters, input_data, context):
            return {"raw": (1, 2)}

    rec = record(policy_input_schema={"ip": {"type": "string"}}, policy_output_schema={"ok": {"type": "boolean"}})
    assert PolicyRunner(rec, Loose, validate=False).eval({"no": "ip"}) == {"raw": (1, 2)}


def test_context_is_passed_to_eval_and_persists_between_calls():
    class Counter(Recorder):
        def eval(self, parameters, input_data, context):
            context["n"] = context.get("n", 0) + 1
            return {"n": context["n"]}

    context = MemoryContext()
    runner = PolicyRunner(record(), Counter, context=context)
    runner.eval({})
    assert runner.eval({}) == {"n": 2}
    assert context.get("n") == 2


# --- management -------------------------------------------------------------------------------------------


def test_management_commands_run_against_the_same_instance(ip_allowlist_record, ip_allowlist_dir):
    runner = PolicyRunner(ip_allowlist_record, load_rule_class(ip_allowlist_dir))
    assert runner.eval({"ip": "10.9.9.9"})["allowed"] is False
    assert runner.management("update_local_allowlist", {"ips": ["10.9.9.9"]}) == {
        "status": "success",
        "updated_allowlist": ["10.9.9.9"],
    }
    assert runner.eval({"ip": "10.9.9.9"})["allowed"] is True
    assert runner.management("get_state", {})["local_allowlist"] == ["10.9.9.9"]


def test_invalid_management_data_is_refused(ip_allowlist_record, ip_allowlist_dir):
    runner = PolicyRunner(ip_allowlist_record, load_rule_class(ip_allowlist_dir))
    with pytest.raises(InputInvalid) as caught:
        runner.management("update_local_allowlist", {"ips": ["not-an-ip"]})
    assert list(caught.value.errors) == ["data.ips.0"]


def test_unknown_management_action_is_refused(ip_allowlist_record, ip_allowlist_dir):
    runner = PolicyRunner(ip_allowlist_record, load_rule_class(ip_allowlist_dir))
    with pytest.raises(InputInvalid, match="unknown management action 'reboot'"):
        runner.management("reboot", {})


def test_class_without_management_gives_a_clear_error():
    runner = PolicyRunner(record(), Recorder)
    with pytest.raises(PolicyError, match=r"has no management\(\) method"):
        runner.management("get_state", {})


# --- a record compiled once, run by many fresh runners (the executor's workers) ---------------------------

SCHEMA = {"limit": {"type": "integer", "required": True}}


@pytest.mark.parametrize("argument, stored_field, schema_field", FIELDS)
def test_a_compiled_record_still_checks_what_each_call_brings(argument, stored_field, schema_field):
    from policygrid.rule_runner import CompiledRecord

    good = record(**{stored_field: {"limit": 3}, schema_field: SCHEMA,
                     "policy_input_schema": {"ip": {"type": "string", "required": True}}})
    compiled = CompiledRecord(good)
    runner = PolicyRunner(good, Recorder, compiled=compiled)
    assert runner.eval({"ip": "1.2.3.4"})[argument if argument == "parameters" else "settings"] == {"limit": 3}
    with pytest.raises(InputInvalid, match=argument):  # a caller's override is checked on every call
        PolicyRunner(good, Recorder, compiled=compiled, **{argument: {"limit": "many"}})
    with pytest.raises(InputInvalid, match="input_data"):
        PolicyRunner(good, Recorder, compiled=compiled).eval({"ip": 5})
    # Stored values that fail their schema fail every runner, as without a compiled record.
    bad = record(**{stored_field: {"limit": "x"}, schema_field: SCHEMA})
    compiled_bad = CompiledRecord(bad)
    for _ in range(2):
        with pytest.raises(InputInvalid, match=argument):
            PolicyRunner(bad, Recorder, compiled=compiled_bad)
    # A fresh instance each time: a policy changing its settings can't reach the next runner.
    first = PolicyRunner(good, Recorder, compiled=compiled)
    getattr(first, argument)["limit"] = 99
    assert getattr(PolicyRunner(good, Recorder, compiled=compiled), argument) == {"limit": 3}


def test_a_compiled_record_checks_the_output():
    from policygrid.rule_runner import CompiledRecord

    rec = record(policy_output_schema={"allowed": {"type": "boolean", "required": True}})
    with pytest.raises(OutputInvalid):
        PolicyRunner(rec, Recorder, compiled=CompiledRecord(rec)).eval({})
