"""The policy playground: a form generated from a policy's input schema (and its stored parameters and
settings, which the caller may override), run through ``services.execute_policy`` — the API route's own call
path — with the answer, its ``error_type``, the latency, and the curl and SDK lines that do the same."""
from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied
from policygrid.errors import PolicyGridError
from rest_framework.exceptions import APIException

from executors import services
from executors.models import PolicyExecutor
from governance.choices import LifecycleStatus
from policies.schemas import schema_fields

SCALARS = {"string": "text", "integer": "number", "number": "number", "boolean": "checkbox"}


@dataclass
class InputField:
    """One input of the form: ``widget`` is text, number, checkbox or json (arrays, objects, any)."""

    name: str
    widget: str
    required: bool
    description: str = ""
    pattern: str = ""
    raw: str = ""
    error: str = ""


@dataclass
class Outcome:
    success: bool
    data: Any = None
    error_type: str = ""
    message: str = ""
    latency_ms: float = 0.0
    printed: dict | None = None
    field_errors: dict = field(default_factory=dict)


@dataclass
class Playground:
    fields: list[InputField]
    parameters: str
    settings: str
    errors: dict[str, str] = field(default_factory=dict)
    outcome: Outcome | None = None
    body: dict | None = None


def schema_inputs(schema) -> list[InputField]:
    """The form's inputs generated from a schema (a policy's input schema, a management command's data
    schema): the one form generator of the portal."""
    return [InputField(name=f.name, widget=SCALARS.get(f.type, "json"), required=f.required,
                       description=f.description, pattern=f.pattern)
            for f in schema_fields(schema) or []]


def input_fields(policy) -> list[InputField]:
    return schema_inputs(policy.policy_input_schema)


def read_inputs(fields: list[InputField], post, prefix: str = "input.") -> dict[str, Any]:
    """The typed values of the posted inputs named ``<prefix><field>``; a bad one gets its ``error`` set."""
    values: dict[str, Any] = {}
    for item in fields:
        item.raw = post.get(f"{prefix}{item.name}", "")
        try:
            value = read_value(item, post.get(f"{prefix}{item.name}"))
        except ValueError as exc:
            item.error = "required" if str(exc) == "required" else f"not a valid {item.widget} value: {exc}"
            continue
        if value is not None:
            values[item.name] = value
    return values


def show_errors(fields: list[InputField], errors: dict, prefix: str) -> None:
    """A service's field errors (``<prefix><field>``) put beside their inputs."""
    for item in fields:
        item.error = "; ".join(errors.get(f"{prefix}{item.name}", [])) or item.error


def empty_playground(policy) -> Playground:
    return Playground(fields=input_fields(policy), parameters=json.dumps(policy.policy_parameters, indent=2),
                      settings=json.dumps(policy.policy_settings, indent=2))


def read_value(item: InputField, raw: str | None):
    """The typed value of one input, or raises ValueError saying what is wrong; None: left out."""
    if item.widget == "checkbox":
        return raw == "on"
    if raw is None or raw.strip() == "":
        if item.required:
            raise ValueError("required")
        return None
    if item.widget == "number":
        number = float(raw)
        return int(number) if number.is_integer() and "." not in raw else number
    if item.widget == "json":
        return json.loads(raw)
    return raw


def read_object(raw: str, name: str, errors: dict) -> dict | None:
    try:
        value = json.loads(raw or "{}")
    except ValueError as exc:
        errors[name] = f"not JSON: {exc}"
        return None
    if not isinstance(value, dict):
        errors[name] = "must be a JSON object"
        return None
    return value


def run(user, policy, post) -> tuple[Playground, PolicyExecutor | None]:
    """Build the call from the posted form and make it; field errors stay beside their fields."""
    playground = empty_playground(policy)
    playground.parameters, playground.settings = post.get("parameters", ""), post.get("settings", "")
    input_data = read_inputs(playground.fields, post)
    parameters = read_object(playground.parameters, "parameters", playground.errors)
    settings = read_object(playground.settings, "settings", playground.errors)
    executor = PolicyExecutor.objects.filter(executor_id=post.get("executor_id", "")).first()
    if executor is None:
        playground.errors["executor_id"] = "choose an executor"
    if playground.errors or any(item.error for item in playground.fields):
        return playground, executor
    body: dict[str, Any] = {"policy_rule_uri": policy.policy_rule_uri, "input_data": input_data,
                            "capture_output": True}
    if parameters != policy.policy_parameters:
        body["parameters"] = parameters
    if settings != policy.policy_settings:
        body["settings"] = settings
    if post.get("dry_run") == "on" or policy.status not in LifecycleStatus.EXECUTABLE:
        body["dry_run"] = True
    playground.body = body
    playground.outcome = call(user, executor, body)
    show_errors(playground.fields, playground.outcome.field_errors, "input_data.")
    return playground, executor


def call(user, executor: PolicyExecutor, body: dict) -> Outcome:
    def execute():
        execution = services.execute_policy(user, executor, body)
        return Outcome(True, data=execution.data, printed=execution.printed)

    return timed(execute)


def timed(make) -> Outcome:
    """``make()``'s Outcome with its latency; a refusal (an error of the services) as a failed Outcome."""
    started = time.monotonic()
    outcome: Outcome
    field_errors: dict = {}
    try:
        outcome = make()
    except PolicyGridError as exc:
        outcome = Outcome(False, error_type=exc.error_type, message=exc.message)
        field_errors = exc.errors or {}
    except PermissionDenied as exc:
        outcome = Outcome(False, error_type="forbidden", message=str(exc))
    except APIException as exc:  # the executor has no address, the function is not ready (409), ...
        error_type = getattr(exc, "extra", {}).get("error_type") or exc.default_code
        outcome = Outcome(False, error_type=str(error_type), message=str(exc.detail))
    outcome.latency_ms = round((time.monotonic() - started) * 1000, 1)
    outcome.field_errors = field_errors
    return outcome


def snippets(base_url: str, executor_id: str, body: dict) -> dict[str, str]:
    """The curl command and the SDK lines that make the same call."""
    data = json.dumps({k: v for k, v in body.items() if k != "capture_output"})
    curl = (f"curl -s -X POST {base_url}/executor/{executor_id}/execute_policy \\\n"
            f"     -H \"Authorization: Token $TOKEN\" -H \"Content-Type: application/json\" \\\n"
            f"     -d {shlex.quote(data)}")
    sdk = ("from policygrid.evaluator import LocalPolicyEvaluator\n\n"
           f"evaluator = LocalPolicyEvaluator(policy_rule_uri={body['policy_rule_uri']!r}, mode=\"remote\",\n"
           f"                                 executor_id={executor_id!r},\n"
           f"                                 parameters={body.get('parameters', {})!r}, settings={body.get('settings', {})!r})\n"
           f"print(evaluator.execute_policy_rule({body['input_data']!r}))")
    return {"curl": curl, "sdk": sdk}
