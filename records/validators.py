"""Identity-field validators of docs/api.md §1, so that every URI parses one way only."""
from django.core.validators import RegexValidator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+]{0,49}$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"

validate_name = RegexValidator(
    NAME_PATTERN,
    "must start with a letter or digit and contain only letters, digits, '_', '.' and '-' (at most 100)",
)
validate_release_tag = validate_name
validate_version = RegexValidator(
    VERSION_PATTERN,
    "must start with a letter or digit and contain only letters, digits, '_', '.' and '+' (at most 50; no '-' or ':')",
)
validate_dns_label = RegexValidator(
    DNS_LABEL_PATTERN,
    "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63",
)


def versioned_uri(name: str, version: str, release_tag: str) -> str:
    return f"{name}:{version}-{release_tag}"


def check_body(validator, schema: dict, body):
    """A request body checked against its JSON Schema (``validator`` compiled from ``schema``): the body, or
    ``InputInvalid`` (400) naming every bad field — unknown ones, missing ones and wrong values."""
    from policygrid.errors import InputInvalid

    errors: dict[str, list[str]] = {}
    for error in validator.iter_errors(body):
        if error.validator == "additionalProperties" and not error.absolute_path:
            for name in sorted(set(body) - set(schema["properties"])):
                errors.setdefault(name, ["unknown field"])
        elif error.validator == "required":
            path = ".".join(str(part) for part in error.absolute_path)
            errors.setdefault((path + "." if path else "") + error.message.split("'")[1], ["required"])
        else:
            path = ".".join(str(part) for part in error.absolute_path) or "(body)"
            errors.setdefault(path, [error.message[:200]])
    if errors:
        raise InputInvalid("invalid request: " + " | ".join(f"{k}: {'; '.join(v)}" for k, v in errors.items()),
                           errors=errors)
    return body
