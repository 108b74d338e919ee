"""The schema ("template") format of docs/runtime.md §3: checking, translation to JSON Schema, cached validators."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator, SchemaError
from jsonschema import validators as jsonschema_validators

from .errors import InputInvalid, PolicyGridError

TYPES = {
    "string": "string",
    "number": "number",  # JSON Schema's number already excludes bool
    "integer": "integer",
    "boolean": "boolean",
    "array": "array",
    "object": "object",
    "any": None,
}
# Which descriptor keys make sense for which type; a key on the wrong type is a mistake worth reporting.
_KEYS_FOR_TYPE = {
    "string": {"pattern", "length", "choices"},
    "number": {"min", "max", "choices"},
    "integer": {"min", "max", "choices"},
    "boolean": {"choices"},
    "array": {"choices", "max_length", "items"},
    "object": {"properties", "choices"},
    "any": {"choices"},
}
_COMMON_KEYS = {"type", "description", "required"}
# Annotations some authors add; harmless, passed through unchecked.
_ANNOTATIONS = {"title", "default", "example", "examples"}
_ALL_KEYS = _COMMON_KEYS | _ANNOTATIONS | set().union(*_KEYS_FOR_TYPE.values())


# --- recognising and translating --------------------------------------------------------------------------


def is_json_schema(schema: Any) -> bool:
    """A JSON Schema document is used as-is: it has `$schema`, or `"type": "object"` at its top level."""
    return isinstance(schema, dict) and ("$schema" in schema or schema.get("type") == "object")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Faults:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, path: str, reason: str) -> None:
        self.errors.setdefault(path or "(root)", []).append(reason)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _translate_map(descriptors: Any, path: str, faults: _Faults) -> dict[str, Any]:
    if not isinstance(descriptors, dict):
        faults.add(path, f"must be a map of field name to descriptor, not {type(descriptors).__name__}")
        return {}
    if not descriptors:
        return {}
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, descriptor in descriptors.items():
        field_path = _join(path, str(name))
        properties[name] = _translate_descriptor(descriptor, field_path, faults)
        if isinstance(descriptor, dict) and descriptor.get("required", True) is not False:
            required.append(name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _translate_descriptor(descriptor: Any, path: str, faults: _Faults) -> dict[str, Any]:
    if not isinstance(descriptor, dict):
        faults.add(path, f"a descriptor must be an object, not {type(descriptor).__name__}")
        return {}
    type_name = descriptor.get("type", "object" if "properties" in descriptor else "any")
    if type_name not in TYPES:
        faults.add(_join(path, "type"), f"unknown type {type_name!r}; expected one of {', '.join(TYPES)}")
        return {}
    out: dict[str, Any] = {}
    if TYPES[type_name]:
        out["type"] = TYPES[type_name]
    allowed = _KEYS_FOR_TYPE[type_name]
    for key in descriptor:
        if key not in _ALL_KEYS:
            faults.add(_join(path, str(key)), f"unknown descriptor key {key!r}")
        elif key not in allowed and key not in _COMMON_KEYS and key not in _ANNOTATIONS:
            faults.add(_join(path, key), f"{key!r} does not apply to type {type_name!r}")
    if "description" in descriptor and not isinstance(descriptor["description"], str):
        faults.add(_join(path, "description"), "must be a string")
    if "required" in descriptor and not isinstance(descriptor["required"], bool):
        faults.add(_join(path, "required"), "must be true or false")

    if "pattern" in descriptor and "pattern" in allowed:
        pattern = descriptor["pattern"]
        if not isinstance(pattern, str):
            faults.add(_join(path, "pattern"), "must be a string")
        else:
            try:
                re.compile(pattern)
                out["pattern"] = pattern
            except re.error as exc:
                faults.add(_join(path, "pattern"), f"does not compile: {exc}")
    for key, target in (("length", "maxLength"), ("max_length", "maxItems")):
        if key in descriptor and key in allowed:
            value = descriptor[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                faults.add(_join(path, key), "must be a non-negative integer")
            else:
                out[target] = value
    bounds = {}
    for key, target in (("min", "minimum"), ("max", "maximum")):
        if key in descriptor and key in allowed:
            if not _is_number(descriptor[key]):
                faults.add(_join(path, key), "must be a number")
            else:
                bounds[key] = out[target] = descriptor[key]
    if len(bounds) == 2 and bounds["min"] > bounds["max"]:
        faults.add(_join(path, "min"), f"min ({bounds['min']}) is greater than max ({bounds['max']})")
    if "choices" in descriptor:
        choices = descriptor["choices"]
        if not isinstance(choices, list) or not choices:
            faults.add(_join(path, "choices"), "must be a non-empty list")
        elif type_name == "array":
            out.setdefault("items", {})["enum"] = choices
        else:
            out["enum"] = choices
    if "items" in descriptor and "items" in allowed:
        item_schema = _translate_descriptor(descriptor["items"], _join(path, "items"), faults)
        out["items"] = {**item_schema, **out.get("items", {})}
    if "properties" in descriptor and "properties" in allowed:
        nested = _translate_map(descriptor["properties"], _join(path, "properties"), faults)
        nested.pop("type", None)
        out.update(nested)
    return out


def _check_json_schema(schema: dict[str, Any], faults: _Faults, prefix: str) -> None:
    cls = jsonschema_validators.validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        location = ".".join(str(p) for p in exc.absolute_path)
        faults.add(_join(prefix, location), exc.message)
        return
    # check_schema does not compile regexes in every draft; a pattern that can't compile must fail now.
    stack = [(schema, prefix)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            pattern = node.get("pattern")
            if isinstance(pattern, str):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    faults.add(_join(where, "pattern"), f"does not compile: {exc}")
            stack.extend((v, _join(where, str(k))) for k, v in node.items() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, _join(where, str(i))) for i, v in enumerate(node))


def to_json_schema(schema: Any, *, prefix: str = "") -> dict[str, Any]:
    """Translate a descriptor map (or pass a JSON Schema through), raising InputInvalid at the first check."""
    faults = _Faults()
    translated = _translate(schema, faults, prefix)
    if faults.errors:
        raise _schema_error(faults, prefix)
    return translated


def _translate(schema: Any, faults: _Faults, prefix: str) -> dict[str, Any]:
    if schema is None:
        return {}
    if is_json_schema(schema):
        _check_json_schema(schema, faults, prefix)
        return schema
    return _translate_map(schema, prefix, faults)


def _schema_error(faults: _Faults, prefix: str) -> InputInvalid:
    first_path, reasons = next(iter(faults.errors.items()))
    what = f"the schema {prefix!r}" if prefix else "the schema"
    return InputInvalid(f"{what} is malformed at {first_path}: {reasons[0]}", errors=faults.errors)


def check_schema(schema: Any, *, prefix: str = "") -> None:
    """Raise InputInvalid if `schema` is malformed; `errors` is keyed by the path of each fault.

    `prefix` is prepended to the paths, e.g. "policy_input_schema" gives "policy_input_schema.ip.pattern".
    """
    to_json_schema(schema, prefix=prefix)


# --- validators -------------------------------------------------------------------------------------------

_validators: dict[str, Draft202012Validator] = {}
_validators_lock = threading.Lock()


def _canonical(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), default=str)


def validator_for(schema: Any):
    """The compiled jsonschema validator of `schema`, built once per distinct schema (keyed by canonical JSON)."""
    key = _canonical(schema)
    validator = _validators.get(key)
    if validator is None:
        translated = to_json_schema(schema)
        cls = jsonschema_validators.validator_for(translated, default=Draft202012Validator)
        validator = cls(translated)
        with _validators_lock:
            _validators[key] = validator
    return validator


def _dotted(what: str, parts) -> str:
    return ".".join([what, *(str(p) for p in parts)]) if what else ".".join(str(p) for p in parts)


def _collect(validator, value: Any, what: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for error in validator.iter_errors(value):
        parts = list(error.absolute_path)
        reason = error.message
        if error.validator == "required":
            # jsonschema reports a missing field at its parent; the envelope names the field itself.
            missing = re.match(r"^'(.*)' is a required property$", error.message)
            if missing:
                parts.append(missing.group(1))
                reason = "is required"
        errors.setdefault(_dotted(what, parts) or "(root)", []).append(reason)
    return errors


def compile_check(
    schema: Any, *, what: str, error_cls: type[PolicyGridError] = InputInvalid
) -> Callable[[Any], None] | None:
    """A function raising `error_cls` when a value fails `schema`, or None when the schema accepts anything.

    Callers on hot paths compile once and call the result per value.
    """
    translated_key_schema = schema if schema is not None else {}
    if not translated_key_schema:
        return None
    validator = validator_for(schema)
    iter_errors = validator.iter_errors

    def check(value: Any) -> None:
        # Taking the first error from iter_errors is the cheapest "is it valid" jsonschema offers.
        if next(iter_errors(value), None) is None:
            return
        errors = _collect(validator, value, what)
        first_path, reasons = next(iter(errors.items()))
        more = sum(len(r) for r in errors.values()) - 1
        suffix = f" (and {more} more)" if more > 0 else ""
        raise error_cls(f"{what} failed validation: {first_path}: {reasons[0]}{suffix}", errors=errors)

    return check


def validate(schema: Any, value: Any, *, what: str, error_cls: type[PolicyGridError] = InputInvalid) -> None:
    """Raise `error_cls` (errors keyed `what.dotted.path`) if `value` does not satisfy `schema`."""
    check = compile_check(schema, what=what, error_cls=error_cls)
    if check is not None:
        check(value)


# --- management commands ----------------------------------------------------------------------------------


def check_management_commands(commands: Any, *, prefix: str = "management_commands_schema") -> None:
    """Raise InputInvalid unless `commands` is a list of `{"name", "description"?, "schema"?}` with valid schemas."""
    faults = _Faults()
    if commands is None:
        return
    if not isinstance(commands, list):
        faults.add(prefix, "must be a list of {name, description, schema}")
        raise _schema_error(faults, prefix)
    seen: set[str] = set()
    for index, command in enumerate(commands):
        where = f"{prefix}.{index}"
        if not isinstance(command, dict):
            faults.add(where, "must be an object with name, description and schema")
            continue
        name = command.get("name")
        if not isinstance(name, str) or not name:
            faults.add(f"{where}.name", "must be a non-empty string")
        elif name in seen:
            faults.add(f"{where}.name", f"duplicate command name {name!r}")
        else:
            seen.add(name)
        if "description" in command and not isinstance(command["description"], str | type(None)):
            faults.add(f"{where}.description", "must be a string")
        _translate(command.get("schema") or {}, faults, f"{where}.schema")
    if faults.errors:
        raise _schema_error(faults, prefix)


def find_management_command(commands: list[dict[str, Any]] | None, action: str) -> dict[str, Any] | None:
    """The command named `action`; InputInvalid if a non-empty command list does not name it."""
    if not commands:
        return None
    for command in commands:
        if isinstance(command, dict) and command.get("name") == action:
            return command
    known = ", ".join(str(c.get("name")) for c in commands if isinstance(c, dict))
    raise InputInvalid(
        f"unknown management action {action!r}; this policy accepts: {known}",
        errors={"action": [f"unknown action {action!r}; expected one of: {known}"]},
    )


def validate_management(commands: list[dict[str, Any]] | None, action: str, data: Any) -> None:
    """Refuse an action a non-empty command list does not name, and data that fails the command's schema."""
    if not isinstance(action, str) or not action:
        raise InputInvalid("a management action name is required", errors={"action": ["required"]})
    command = find_management_command(commands, action)
    if command is not None:
        validate(command.get("schema") or {}, data if data is not None else {}, what="data")


# --- a policy record as a whole ---------------------------------------------------------------------------

SCHEMA_FIELDS = ("policy_input_schema", "policy_output_schema", "policy_settings_schema", "policy_parameters_schema")


def check_policy_record(record: dict[str, Any]) -> None:
    """The registration checks of a record's schemas and stored values (docs/api.md §4.1), all faults at once."""
    errors: dict[str, list[str]] = {}
    for name in SCHEMA_FIELDS:
        try:
            check_schema(record.get(name) or {}, prefix=name)
        except InputInvalid as exc:
            errors.update(exc.errors)
    try:
        check_management_commands(record.get("management_commands_schema") or [])
    except InputInvalid as exc:
        errors.update(exc.errors)
    for values, schema in (("policy_settings", "policy_settings_schema"), ("policy_parameters", "policy_parameters_schema")):
        if any(key == schema or key.startswith(schema + ".") for key in errors):
            continue  # values can't be checked against a schema that is itself broken
        try:
            validate(record.get(schema) or {}, record.get(values) or {}, what=values)
        except InputInvalid as exc:
            errors.update(exc.errors)
    if errors:
        first, reasons = next(iter(errors.items()))
        raise InputInvalid(f"the record is invalid: {first}: {reasons[0]}", errors=errors)
