"""The API's JSON parser: strict JSON, refusing what no field of ours can keep, with a 400 that names it.

* NUL (``\\u0000``, in a string or a key): PostgreSQL refuses it in text and in jsonb (a DataError, so a
  500), while SQLite would store it. A lone surrogate (``\\ud800``) is not a character: neither database can
  encode it (a UnicodeEncodeError, so a 500). Both are refused for every route and both databases alike,
  naming the path where they are.
* Nesting deeper than ``API_MAX_JSON_DEPTH``: a body nested 5,000 deep made the decoder raise RecursionError
  (a 500), and a few hundred levels would exhaust the stack of the code that walks records later.
* Numbers a double can't hold (``1e999`` decodes to infinity, which JSON can't write back) and the
  non-standard ``NaN``/``Infinity`` constants.
"""
import math
import re

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils import json

NUL = "\x00"
REASON = "text may not contain the NUL character (\\u0000)"
SURROGATE_REASON = "text may not contain a lone surrogate (\\ud800-\\udfff is not a character)"
SURROGATE = re.compile("[\ud800-\udfff]")
ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def bad_text(text: str) -> str | None:
    if NUL in text:
        return REASON
    if SURROGATE.search(text):
        return SURROGATE_REASON
    return None


def bad_text_path(data, path: str = "") -> tuple[str, str] | None:
    """``(dotted path, reason)`` of the first string or key in ``data`` that no field can keep, or None."""
    if isinstance(data, str):
        reason = bad_text(data)
        return (path or "body", reason) if reason else None
    if isinstance(data, dict):
        for key, value in data.items():
            inner = f"{path}.{key}" if path else str(key)
            reason = bad_text(key)
            if reason:
                return inner.replace(NUL, "\\u0000").encode("utf-8", "backslashreplace").decode(), reason
            found = bad_text_path(value, inner)
            if found is not None:
                return found
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found = bad_text_path(value, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None


def deeper_than(data, limit: int) -> bool:
    """Whether ``data`` has containers nested more than ``limit`` levels (iteratively: no recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (value.values() if isinstance(value, dict) else value))
    return False


def finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text} is out of range")
    return number


def refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class JsonParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read()
        encoding = get_encoding(parser_context or {})
        limit = settings.API_MAX_JSON_DEPTH
        too_deep = ParseError(f"the JSON body is nested more than {limit} levels deep")
        try:
            data = json.loads(raw.decode(encoding), parse_float=finite_float, parse_constant=refuse_constant)
        except RecursionError:
            raise too_deep from None
        except ValueError as exc:  # UnicodeDecodeError included
            raise ParseError(f"JSON parse error - {exc}") from None
        # Cheap tests first: most bodies have fewer brackets than the limit, and no \u escape that could be a
        # NUL or a surrogate (in UTF-8 JSON neither can be written raw).
        if raw.count(b"[") + raw.count(b"{") > limit and deeper_than(data, limit):
            raise too_deep
        utf8 = encoding.lower().replace("-", "").replace("_", "") == "utf8"
        if utf8 and b"\\u0000" not in raw and not ESCAPED_SURROGATE.search(raw):
            return data
        found = bad_text_path(data)
        if found is not None:
            raise ValidationError({found[0]: [found[1]]})
        return data
