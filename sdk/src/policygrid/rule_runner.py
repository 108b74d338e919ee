"""Running a loaded policy class: the override rule, schema checks around `eval`, management commands (PolicyRunner)."""

from __future__ import annotations

import copy
import math
from typing import Any

from .context import BaseContext, MemoryContext
from .errors import InputInvalid, OutputInvalid, PolicyError, PolicyGridError, ResourceLimit
from .schema import check_management_commands, compile_check, find_management_command, validate_management


def merge_overrides(stored: dict[str, Any] | None, caller: dict[str, Any] | None) -> dict[str, Any]:
    """docs/runtime.md §2: a deep copy of the stored values, updated key by key with the caller's. The caller wins.

    The same rule for settings and for parameters, in every execution type. Copies on both sides, so a policy
    mutating its settings can change neither the record nor the caller's dict.
    """
    if stored is not None and not isinstance(stored, dict):
        raise InputInvalid("stored values must be an object", errors={"(stored)": ["must be an object"]})
    if caller is not None and not isinstance(caller, dict):
        raise InputInvalid("overrides must be an object", errors={"(overrides)": ["must be an object"]})
    effective = copy.deepcopy(stored) if stored else {}
    if caller:
        effective.update(copy.deepcopy(caller))
    return effective


def policy_uri(record: dict[str, Any]) -> str:
    uri = record.get("policy_rule_uri")
    if uri:
        return uri
    if record.get("name") and record.get("version") and record.get("release_tag"):
        return f"{record['name']}:{record['version']}-{record['release_tag']}"
    return ""


_SCALARS = (str, int, bool, type(None))


def to_json_value(value: Any, path: str = "output") -> Any:
    """docs/runtime.md §4: the value as JSON data — tuples become lists, anything else non-JSON is output_invalid.

    Returns the very same object when nothing needs converting (the common case), so a well-behaved policy
    pays one walk and no copy.
    """
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is float:
        if math.isfinite(value):
            return value
        raise OutputInvalid(f"{path} is {value!r}, which JSON can't represent", errors={path: ["not finite"]})
    if kind is dict:
        changed = None
        for key, item in value.items():
            if type(key) is not str:
                raise OutputInvalid(
                    f"{path} has a key {key!r} that is not a string", errors={path: [f"non-string key {key!r}"]}
                )
            converted = to_json_value(item, f"{path}.{key}")
            if converted is not item:
                if changed is None:
                    changed = dict(value)
                changed[key] = converted
        return value if changed is None else changed
    if kind is list or kind is tuple:
        items = [to_json_value(item, f"{path}.{index}") for index, item in enumerate(value)]
        if kind is list and all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items
    # Subclasses of the JSON types (e.g. an IntEnum, an OrderedDict) are accepted as their base type.
    for base, convert in ((bool, bool), (int, int), (float, float), (str, str), (dict, dict), (list, list)):
        if isinstance(value, base):
            return to_json_value(convert(value), path)
    raise OutputInvalid(
        f"{path} is a {kind.__name__}, which is not JSON-serialisable",
        errors={path: [f"{kind.__name__} is not JSON-serialisable"]},
    )


def _policy_error(exc: Exception, doing: str) -> PolicyGridError:
    if isinstance(exc, MemoryError):
        return ResourceLimit(f"the policy ran out of memory while {doing}")
    return PolicyError(f"{type(exc).__name__}: {exc}", exception_type=type(exc).__name__)


class CompiledRecord:
    """What a ``PolicyRunner`` derives from its record alone: the schema checks, and whether the stored
    settings and parameters pass them.

    A caller that runs one record many times with fresh instances (the executor's workers: Type 2 is
    stateless) builds it once per record and hands it to every runner, which then checks only what a call
    brings: the caller's overrides, the input and the output. The record must not change afterwards.
    """

    def __init__(self, record: dict[str, Any]) -> None:
        self.commands = record.get("management_commands_schema") or []
        check_management_commands(self.commands)
        self.settings_check = compile_check(record.get("policy_settings_schema"), what="settings")
        self.parameters_check = compile_check(record.get("policy_parameters_schema"), what="parameters")
        self.check_input = compile_check(record.get("policy_input_schema"), what="input_data")
        self.check_output = compile_check(record.get("policy_output_schema"), what="output", error_cls=OutputInvalid)
        self.stored_settings_pass = self._passes(self.settings_check, record.get("policy_settings"))
        self.stored_parameters_pass = self._passes(self.parameters_check, record.get("policy_parameters"))

    @staticmethod
    def _passes(check, stored: Any) -> bool:
        if check is None:
            return True
        try:
            check(merge_overrides(stored, None))
        except PolicyGridError:
            return False  # every runner checks again, and raises the error itself
        return True


class PolicyRunner:
    """One instance of a policy class with its effective settings and parameters (stateful across calls).

    Construction does everything that can be done once — schema compilation, the override merge, validation of
    the effective settings/parameters, creating the instance — so that `eval` adds only the input and output
    checks. The same dict of effective parameters is handed to the constructor and to every `eval`, so a
    management command that updates `self.parameters` (as the description's sample does) is seen by `eval`.
    """

    def __init__(
        self,
        record: dict[str, Any],
        rule_class: type,
        settings: dict[str, Any] | None = None,
        parameters: dict[str, Any] | None = None,
        context: BaseContext | None = None,
        validate: bool = True,
        compiled: CompiledRecord | None = None,
    ) -> None:
        self.record = record
        self.uri = policy_uri(record)
        self.validate = validate
        self.settings = merge_overrides(record.get("policy_settings"), settings)
        self.parameters = merge_overrides(record.get("policy_parameters"), parameters)
        self.context = context if context is not None else MemoryContext()
        self.commands = record.get("management_commands_schema") or []
        self._check_input = self._check_output = None
        if validate:
            if compiled is None:
                compiled = CompiledRecord(record)
            # The effective values are checked unless they are the stored ones and those already passed.
            if compiled.settings_check and (settings or not compiled.stored_settings_pass):
                compiled.settings_check(self.settings)
            if compiled.parameters_check and (parameters or not compiled.stored_parameters_pass):
                compiled.parameters_check(self.parameters)
            self._check_input = compiled.check_input
            self._check_output = compiled.check_output
        try:
            # Positional, as the earlier system called it: some policies name these arguments differently.
            self.instance = rule_class(self.uri, self.settings, self.parameters)
        except Exception as exc:
            error = _policy_error(exc, "being constructed")
            error.message = f"constructing the policy failed: {error.message}"
            raise error from exc
        self._eval = self.instance.eval
        if not validate:
            # Bound once here rather than branching per call: this path's budget is a fraction of a µs.
            self.eval = self._eval_trusted  # type: ignore[method-assign]

    def eval(self, input_data: Any) -> Any:
        """Validate the input, run the policy's `eval`, convert and validate its output."""
        if self._check_input is not None:
            self._check_input(input_data)
        try:
            output = self._eval(self.parameters, input_data, self.context)
        except PolicyGridError:
            raise
        except Exception as exc:
            raise _policy_error(exc, "evaluating") from exc
        output = to_json_value(output)
        if self._check_output is not None:
            self._check_output(output)
        return output

    def _eval_trusted(self, input_data: Any) -> Any:
        """validate=False, the trusted hot path: no checks, the policy's result returned as it is."""
        try:
            return self._eval(self.parameters, input_data, self.context)
        except PolicyGridError:
            raise
        except Exception as exc:
            raise _policy_error(exc, "evaluating") from exc

    def management(self, action: str, data: dict[str, Any] | None = None) -> Any:
        if self.validate:
            validate_management(self.commands, action, data)
        else:
            find_management_command(self.commands, action)
        method = getattr(self.instance, "management", None)
        if not callable(method):
            raise PolicyError(
                f"policy {self.uri or '(unnamed)'} has no management() method, so it takes no management "
                f"commands (asked for {action!r})",
                exception_type="NotImplementedError",
            )
        try:
            result = method(action, data if data is not None else {})
        except PolicyGridError:
            raise
        except Exception as exc:
            raise _policy_error(exc, f"running management action {action!r}") from exc
        return to_json_value(result, "management_output") if self.validate else result
