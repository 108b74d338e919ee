"""The API's JSON parser: DRF's, refusing text that holds the NUL character.

JSON may carry ``\\u0000`` in a string or a key, but no field of ours can keep it: PostgreSQL refuses NUL in
text and in jsonb (a DataError, so a 500), while SQLite would store it. Refused here, for every route and both
databases alike, with a 400 that names where it is.
"""
import io

from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser, get_encoding

NUL = "\x00"
REASON = "text may not contain the NUL character (\\u0000)"


def nul_path(data, path: str = "") -> str | None:
    """The dotted path of the first string or key in ``data`` that holds NUL, or None."""
    if isinstance(data, str):
        return path or "body" if NUL in data else None
    if isinstance(data, dict):
        for key, value in data.items():
            inner = f"{path}.{key}" if path else str(key)
            if NUL in key:
                return inner.replace(NUL, "\\u0000")
            found = nul_path(value, inner)
            if found is not None:
                return found
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found = nul_path(value, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None


class JsonParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read()
        data = super().parse(io.BytesIO(raw), media_type, parser_context)
        # In UTF-8 JSON a NUL can only be the escape \u0000 (a raw control character does not parse): no
        # need to walk a body without one.
        utf8 = get_encoding(parser_context or {}).lower().replace("-", "").replace("_", "") == "utf8"
        if utf8 and b"\\u0000" not in raw:
            return data
        path = nul_path(data)
        if path is not None:
            raise ValidationError({path: [REASON]})
        return data
