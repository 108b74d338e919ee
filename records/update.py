"""The update language of docs/api.md §3: a plain document of fields to set, or ``$set``/``$unset`` with dotted paths."""
import copy
from typing import Any

from rest_framework.exceptions import ValidationError

OPERATORS = ("$set", "$unset")


def is_operator_document(body: Any) -> bool:
    return isinstance(body, dict) and bool(body) and all(key.startswith("$") for key in body)


def resolve_update(
    current: dict,
    body: Any,
    *,
    partial: bool,
    writable: set[str],
    json_fields: frozenset[str],
    identity_fields: tuple[str, ...],
) -> dict:
    """Return the writable part of the record after applying ``body`` to ``current`` (its GET form).

    Raises 400 for a malformed document, an unknown or read-only field, or an identity change.
    Nothing is saved here: the caller validates the result like a create and saves it.
    """
    if not isinstance(body, dict):
        raise ValidationError({"non_field_errors": [f"expected a JSON object, got {type(body).__name__}"]})
    if any(key.startswith("$") for key in body):
        if not is_operator_document(body):
            raise ValidationError(
                {"non_field_errors": ["an update document mixes $operators and plain fields: use one form"]}
            )
        return _apply_operators(current, body, writable, json_fields, identity_fields)
    if partial:
        raise ValidationError(
            {"non_field_errors": ["PATCH accepts only an update document ({\"$set\": …, \"$unset\": …})"]}
        )
    for name in identity_fields:
        if name in body and body[name] != current.get(name):
            raise ValidationError({name: ["is an identity field and cannot be changed"]})
    # A plain document sets the fields it names and keeps the others, as the earlier system's PUT did (its
    # clients' update_policy sends a few fields; a replacement wiped the rest). `$unset` resets a field.
    doc = {key: copy.deepcopy(current[key]) for key in writable if key in current}
    doc.update({key: value for key, value in body.items() if key in writable or key not in current})
    return doc


def _apply_operators(current, body, writable, json_fields, identity_fields) -> dict:
    unknown = [key for key in body if key not in OPERATORS]
    if unknown:
        raise ValidationError({unknown[0]: [f"unknown update operator; use one of {', '.join(OPERATORS)}"]})
    doc = {key: copy.deepcopy(current[key]) for key in writable if key in current}
    for operator in OPERATORS:
        if operator not in body:
            continue
        changes = body[operator]
        if not isinstance(changes, dict) or not changes:
            raise ValidationError({operator: ["must be a non-empty object of path: value"]})
        for path, value in changes.items():
            top, _, rest = path.partition(".")
            if not top or any(part == "" for part in path.split(".")):
                raise ValidationError({path: ["is not a valid dotted path"]})
            if top in identity_fields:
                raise ValidationError({top: ["is an identity field and cannot be changed"]})
            if top not in writable:
                reason = "is read-only" if top in current else "unknown field"
                raise ValidationError({top: [reason]})
            if rest and top not in json_fields:
                raise ValidationError({path: [f"'{top}' is not a JSON field: dotted paths reach only into JSON fields"]})
            if operator == "$set":
                _set_path(doc, top, rest, value, path)
            else:
                _unset_path(doc, top, rest, path)
    return doc


def _set_path(doc: dict, top: str, rest: str, value: Any, full: str) -> None:
    if not rest:
        doc[top] = value
        return
    node = doc.get(top)
    if node is None:
        node = doc[top] = {}
    parts = rest.split(".")
    for part in parts[:-1]:
        node = _step(node, part, full, create=True)
    last = parts[-1]
    if isinstance(node, list):
        index = _index(node, last, full, allow_append=True)
        if index == len(node):
            node.append(value)
        else:
            node[index] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ValidationError({full: [f"cannot set '{last}' inside a {type(node).__name__}"]})


def _unset_path(doc: dict, top: str, rest: str, full: str) -> None:
    if not rest:
        doc.pop(top, None)  # the serializer gives the field its default again
        return
    node = doc.get(top)
    parts = rest.split(".")
    for part in parts[:-1]:
        if node is None:
            return
        node = _step(node, part, full, create=False)
    last = parts[-1]
    if isinstance(node, dict):
        node.pop(last, None)
    elif isinstance(node, list):
        # MongoDB sets an unset array element to null rather than shifting the others.
        index = _index(node, last, full, allow_append=False)
        if index < len(node):
            node[index] = None


def _step(node, part, full, *, create):
    if isinstance(node, dict):
        if part not in node or node[part] is None:
            if not create:
                return None
            node[part] = {}
        return node[part]
    if isinstance(node, list):
        index = _index(node, part, full, allow_append=False)
        if index >= len(node):
            if not create:
                return None
            raise ValidationError({full: [f"index {index} is past the end of the array"]})
        return node[index]
    if not create:
        return None
    raise ValidationError({full: [f"cannot descend into a {type(node).__name__} at '{part}'"]})


def _index(node: list, part: str, full: str, *, allow_append: bool) -> int:
    if not part.isdigit():
        raise ValidationError({full: [f"'{part}' is not an array index"]})
    index = int(part)
    if index > len(node) or (index == len(node) and not allow_append):
        if allow_append:
            raise ValidationError({full: [f"index {index} is past the end of the array"]})
    return index
