"""Template filters of the portal pages."""
import json

from django import template

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    """A JSON value as the API shows it, indented (the template escapes it)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
