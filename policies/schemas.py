"""A policy schema (a descriptor map or a JSON Schema, docs/runtime.md §3) read field by field, through the
SDK's one translation (``policygrid.schema.to_json_schema``): what the schema tables and the playground's
generated form show."""
from dataclasses import dataclass
from typing import Any

from policygrid.errors import InputInvalid
from policygrid.schema import to_json_schema


@dataclass(frozen=True)
class SchemaField:
    name: str
    type: str
    required: bool
    description: str
    pattern: str
    rules: str


def schema_fields(schema: Any) -> list[SchemaField] | None:
    """The top-level fields of ``schema``, or None when it is not a valid schema."""
    try:
        translated = to_json_schema(schema or {})
    except InputInvalid:
        return None
    required = set(translated.get("required", []))
    # The translation keeps what validates; the descriptor's own description is read beside it.
    descriptors = schema if isinstance(schema, dict) and "properties" not in schema else {}
    found = []
    for name, prop in (translated.get("properties") or {}).items():
        prop = prop if isinstance(prop, dict) else {}
        original = descriptors.get(name) if isinstance(descriptors.get(name), dict) else {}
        kind = prop.get("type", original.get("type", "any"))
        rules = {k: v for k, v in prop.items() if k not in ("type", "description", "title")}
        found.append(SchemaField(
            name=name, type="/".join(kind) if isinstance(kind, list) else str(kind), required=name in required,
            description=prop.get("description") or original.get("description", ""),
            pattern=prop.get("pattern", ""), rules=", ".join(f"{k}: {v}" for k, v in rules.items())))
    return found
