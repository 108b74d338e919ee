"""OpenAPI tweaks: the spec's paths without trailing slashes, and the token scheme described."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension


def spec_paths(endpoints, **kwargs):
    """The router tolerates a trailing slash (``/?``); document each path once, as the spec writes it."""
    seen = set()
    result = []
    for path, path_regex, method, callback in endpoints:
        path = path.rstrip("/") or "/"
        if (path, method) in seen:
            continue
        seen.add((path, method))
        result.append((path, path_regex, method, callback))
    return result


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Token <key>` or `Bearer <key>`; create keys with `manage.py create_api_token` or POST /tokens"}
