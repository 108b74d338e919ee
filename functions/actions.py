"""What the portal's function pages do, through ``functions.services`` only (the API's own call path): the deploy
form read into a create request with its errors beside the fields, a call from the form the playground's generator
makes of the policy's input schema, and a management command from the form of its data schema."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from policygrid.errors import PolicyGridError
from rest_framework.exceptions import APIException

from executors import playground as play
from executors.models import PolicyExecutor
from functions import services
from functions.models import Function
from governance.choices import LifecycleStatus
from policies.models import PolicyRule

# A service's error key → the deploy form's field it belongs beside.
DEPLOY_FIELDS = {"name": "name", "function_id": "name", "policy_rule_uri": "policy", "executor_id": "executor",
                 "replicas": "replicas", "policy_rule_parameters": "parameters", "policy_rule_settings": "settings",
                 "parameters": "parameters", "settings": "settings"}
ALLOCATOR = ""  # the executor choice "let the allocator choose"


@dataclass
class DeployForm:
    values: dict[str, str] = field(default_factory=lambda: {"replicas": "1", "parameters": "{}", "settings": "{}"})
    errors: dict[str, str] = field(default_factory=dict)
    message: str = ""

    def error(self, name: str, reason: str) -> None:
        self.errors[name] = f"{self.errors[name]}; {reason}" if name in self.errors else reason


def deploy_choices() -> dict[str, list]:
    """The versions a function may run (approved, deprecated) and the executors with an address."""
    return {"policies": list(PolicyRule.objects.filter(status__in=LifecycleStatus.EXECUTABLE)
                             .order_by("policy_rule_uri").values_list("policy_rule_uri", "status")[:500]),
            "executors": list(PolicyExecutor.objects.exclude(executor_host_uri="").order_by("executor_id")
                              .values_list("executor_id", "executor_status")[:200])}


def deploy(user, post) -> tuple[DeployForm, Function | None]:
    """The posted deploy form as ``services.create_function``'s request: the function, or the form with its errors."""
    form = DeployForm(values={name: post.get(name, "").strip() for name in
                              ("name", "policy", "executor", "replicas", "parameters", "settings")})
    body: dict[str, Any] = {"name": form.values["name"], "policy_rule_uri": form.values["policy"]}
    if not form.values["name"]:
        form.error("name", "required")
    if not form.values["policy"]:
        form.error("policy", "choose a policy version")
    try:
        body["replicas"] = int(form.values["replicas"] or "1")
    except ValueError:
        form.error("replicas", "a whole number")
    for name, key in (("parameters", "policy_rule_parameters"), ("settings", "policy_rule_settings")):
        errors: dict[str, str] = {}
        value = play.read_object(form.values[name], name, errors)
        if errors:
            form.error(name, errors[name])
        elif value:
            body[key] = value
    if form.errors:
        return form, None
    try:
        return form, services.create_function(user, body, form.values["executor"] or None)
    except PolicyGridError as exc:  # the body, the overrides (400), no such policy or executor, the gate (409)
        errors = exc.errors or ({"policy_rule_uri": [exc.message]} if exc.error_type == "not_executable" else {})
        place(form, errors, exc.message)
    except ValidationError as exc:
        place(form, exc.message_dict if hasattr(exc, "error_dict") else {}, "; ".join(exc.messages))
    except APIException as exc:  # Conflict: the name is taken, the executor has no address; ApiError (501)
        message = str(exc.detail)
        if Function.objects.filter(function_id=body["name"]).exists():
            place(form, {"name": [message]}, message)
        else:
            place(form, {"executor_id": [message]} if message.startswith("executor ") else {}, message)
    except PermissionDenied as exc:
        form.message = str(exc) or "you may not deploy functions"
    return form, None


def place(form: DeployForm, errors: dict, message: str) -> None:
    """A service's errors beside their fields (``parameters.x`` beside Parameters); the rest above the form."""
    for key, reasons in errors.items():
        name = DEPLOY_FIELDS.get(str(key).split(".")[0])
        if name is None:
            form.message = f"{form.message} {key}: {'; '.join(map(str, reasons))}".strip()
        else:
            form.error(name, "; ".join(map(str, reasons)) if "." not in str(key) else f"{key}: {'; '.join(reasons)}")
    if not form.errors and not form.message:
        form.message = message


# --- call and management ----------------------------------------------------------------------------------


@dataclass
class Command:
    name: str
    description: str
    fields: list


def call_fields(function: Function) -> list:
    return play.schema_inputs(function.policy.policy_input_schema) if function.policy else []


def commands(function: Function) -> list[Command]:
    listed = (function.policy.management_commands_schema if function.policy else None) or []
    return [Command(name=str(c.get("name", "")), description=str(c.get("description", "")),
                    fields=play.schema_inputs(c.get("schema") or {})) for c in listed if isinstance(c, dict)]


def call(user, function: Function, fields: list, post) -> play.Outcome | None:
    """The call form's input → ``services.call_function``: its Outcome, or None when an input is not valid."""
    input_data = play.read_inputs(fields, post)
    if any(item.error for item in fields):
        return None
    outcome = play.timed(lambda: play.Outcome(True, data=services.call_function(user, function.function_id,
                                                                                 input_data)))
    play.show_errors(fields, outcome.field_errors, "input_data.")
    play.show_errors(fields, outcome.field_errors, "")
    return outcome


def manage(user, function: Function, listed: list[Command], post) -> tuple[str, play.Outcome | None]:
    """The chosen command's data form → ``services.manage_function``: (the action, its Outcome: data is one result
    per replica), or no Outcome when an input is not valid."""
    action = post.get("action", "")
    command = next((c for c in listed if c.name == action), None)
    data = play.read_inputs(command.fields, post, f"data.{action}.") if command else {}
    if command and any(item.error for item in command.fields):
        return action, None
    body = {"action": action, "data": data, "target": "one" if post.get("target") == "one" else "all"}
    outcome = play.timed(lambda: play.Outcome(True, data=services.manage_function(user, function.function_id, body)))
    if command:
        play.show_errors(command.fields, outcome.field_errors, "data.")
    return action, outcome
