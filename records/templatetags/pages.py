"""Template filters of the portal pages."""
import json

from django import template

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    """A JSON value as the API shows it, indented (the template escapes it)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@register.filter
def tag_list(value) -> list[str]:
    """Tags stored as a list or as comma-separated text, as a list."""
    items = value if isinstance(value, list) else str(value or "").split(",")
    return [str(item).strip() for item in items if str(item).strip()]
