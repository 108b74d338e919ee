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


# --- the envelope and the error statuses, as served ---------------------------------------------------------------
# drf-spectacular documents what the serializers hold; the viewsets answer it inside the envelope of docs/api.md §1,
# with the error statuses of records.api.errors. This hook rewrites every operation to say so (schemathesis, run
# by tests/portal/test_openapi_conformance.py, checks the result against the live server with every check on).

ERROR_SCHEMA = {
    "type": "object",
    "description": "The error envelope (docs/api.md §1).",
    "required": ["success", "message"],
    "properties": {
        "success": {"const": False},
        "message": {"type": "string", "description": "one readable sentence"},
        "errors": {"type": "object", "description": "validation errors by field or dotted path",
                   "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        "error_type": {"type": "string", "description": "execution failures and time-outs (docs/api.md §1 table)"},
    },
}
ERROR_REASONS = {
    400: "Invalid request: the message (and `errors`) name the field or part.",
    401: "No credentials, or an invalid or revoked token.",
    403: "The user's role does not allow it.",
    404: "No such object, or a page past the end.",
    409: "Conflict: a duplicate key, the lifecycle state, or records that still use it.",
    411: "A chunked request body: send it with Content-Length.",
    413: "The body is over the limit (1 MiB; uploads 50 MiB).",
    414: "The request line (path and query) is too long.",
    415: "The body is not of the documented content type.",
    431: "The request's headers are too large.",
    500: "The policy failed (`error_type`: policy_error, output_invalid, resource_limit, integrity).",
    501: "Not built yet in this deployment (`error_type`: not_implemented), named in the message.",
    502: "The executor could not be reached or answered nonsense (`error_type`: unavailable).",
    504: "The time limit ran out (`error_type`: timeout).",
}
# Answers that are not in the envelope (a load balancer's probe reads /health as it is).
RAW_PATHS = ("/health",)
WRITE_METHODS = ("post", "put", "patch", "delete")
UPDATE_OPERATORS = {
    "type": "object",
    "description": "The update language (docs/api.md §3): operators on top-level fields or dotted paths.",
    "properties": {"$set": {"type": "object"}, "$unset": {"type": "object"}},
    "additionalProperties": False,
    "minProperties": 1,
}


def envelope_responses(result, generator, request, public):
    """Postprocessing hook: every answer in its envelope, every error status the route can answer."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas["UpdateOperators"] = UPDATE_OPERATORS
    for component in schemas.values():
        for name, prop in component.get("properties", {}).items():
            # A nullable JSON field comes out as oneOf [any, null]: null matches both, so no null would validate.
            if {} in prop.get("oneOf", []):
                component["properties"][name] = {k: v for k, v in prop.items() if k != "oneOf"}
    for path, operations in result["paths"].items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete") or path in RAW_PATHS:
                continue
            document_parameters(operation)
            document_success(path, method, operation, operations, schemas)
            document_errors(path, method, operation)
            document_request(method, operation, schemas)
    return result


NO_NUL = "^[^\\x00]*$"


def document_parameters(operation) -> None:
    """Query parameters as the server reads them: pages count from 1; a list filter given empty is no filter."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] != "query":
            continue
        schema = parameter.setdefault("schema", {})
        if parameter["name"] in ("page", "page_size"):
            schema["minimum"] = 1
        elif parameter["name"] in ("limit", "skip"):
            schema["minimum"] = 0
        elif "enum" in schema:
            schema["enum"] = [*schema["enum"], *([""] if "" not in schema["enum"] else [])]
        elif "format" in schema:
            parameter["schema"] = {"anyOf": [schema, {"const": ""}]}
        elif schema.get("type") == "boolean":
            # django-filter reads true/false (1/0); any other value is no filter at all.
            parameter["schema"] = {"anyOf": [schema, {"type": "string"}]}
        elif schema.get("type") == "string" and parameter["name"] != "ordering":  # an unknown ordering is ignored
            schema["pattern"] = NO_NUL  # a filter or search with a NUL is refused (400): no database takes one


def document_success(path, method, operation, operations, schemas) -> None:
    responses = operation["responses"]
    if path.endswith("/new-version") and "200" in responses:
        responses["201"] = responses.pop("200")  # the new draft is created (governance.api.views.new_version)
    if method == "delete" and "204" in responses:
        # A delete answers 200 with the record it removed (records.services.delete_record).
        del responses["204"]
        shown = operations.get("get", {}).get("responses", {}).get("200", {})
        record = shown.get("content", {}).get("application/json", {}).get("schema", {})
        responses["200"] = {"description": "Deleted: the record as it was.",
                            "content": {"application/json": {"schema": enveloped(record, schemas)}}}
        return
    for code, response in responses.items():
        if not code.startswith("2"):
            continue
        content = response.get("content", {}).get("application/json")
        if content is None:
            continue
        schema = content.get("schema", {})
        if path.endswith("/query") and method == "post":
            # Without ?limit= the matches are paged (with `pagination`); with it, a plain list.
            content["schema"] = enveloped({"type": "array", "items": schema}, schemas, pagination=True)
        else:
            content["schema"] = enveloped(schema, schemas)


def enveloped(schema: dict, schemas: dict, pagination: bool = False) -> dict:
    name = schema.get("$ref", "").rsplit("/", 1)[-1]
    if name.startswith("Paginated") or "success" in schemas.get(name, schema).get("properties", {}):
        return schema  # already the envelope (the pagination class's schema, or declared so)
    wrapped = {"type": "object", "required": ["success", "data"],
               "properties": {"success": {"const": True}, "data": schema}}
    if pagination:
        wrapped["properties"]["pagination"] = {
            "type": "object",
            "properties": {"count": {"type": "integer"}, "next": {"type": ["string", "null"]},
                           "previous": {"type": ["string", "null"]}},
        }
    return wrapped


def document_errors(path, method, operation) -> None:
    responses = operation["responses"]
    # Any request can meet the server's limits on the request line and the headers.
    statuses = {414, 431} | ({401, 403} if operation.get("security") != [{}] else set())
    parameters = operation.get("parameters", [])
    if any(p["in"] == "path" for p in parameters):
        statuses.add(404)
    if any(p["in"] == "query" for p in parameters) or "requestBody" in operation:
        statuses.add(400)
    if "requestBody" in operation or method in WRITE_METHODS:
        statuses |= {400, 411, 413, 415}
    if method in WRITE_METHODS:
        statuses.add(409)
    if any(p["name"] == "page" for p in parameters) or path.endswith("/query"):
        statuses |= {404, 504}  # a page past the end; the query time budget (records.budget)
    statuses |= {int(code) for code in responses if code[0] in "45"}
    for status_code in sorted(statuses):
        responses[str(status_code)] = {
            "description": ERROR_REASONS.get(status_code, "An error."),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }


def document_request(method, operation, schemas) -> None:
    """Request bodies as the serializers read them: unknown fields are refused (400), read-only ones ignored;
    PATCH takes only the update operators, PUT a record or the operators (docs/api.md §3)."""
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is None or "$ref" not in body.get("schema", {}):
        return
    name = body["schema"]["$ref"].rsplit("/", 1)[-1]
    if method == "patch":
        body["schema"] = {"$ref": "#/components/schemas/UpdateOperators"}
        return
    component = schemas.get(name, {})
    shown = schemas.get(name.removesuffix("Request"), {})
    if name.endswith("Request") and shown and component.get("type") == "object":
        for field in shown.get("properties", {}):
            component.setdefault("properties", {}).setdefault(field, {"description": "read-only: ignored when sent"})
        component["additionalProperties"] = False
    if method == "put":
        body["schema"] = {"anyOf": [{"$ref": f"#/components/schemas/{name}"},
                                    {"$ref": "#/components/schemas/UpdateOperators"}]}
