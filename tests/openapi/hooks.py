"""schemathesis hooks of tests/openapi/run_schemathesis.py."""
import hashlib
import os
from urllib.parse import urlencode

import requests
import schemathesis

OWN_TOKEN_ID = os.environ.get("POLICYGRID_FUZZ_OWN_TOKEN_ID", "")
ABSENT_TOKEN_ID = "999999999"
# Below the web server's request-line limit (gunicorn's 4094 bytes): the limit's own answer (414) is the web
# server's business and tested with it; these runs are about the application behind it.
MAX_QUERY_BYTES = 3000


# Keys of records that exist when the run starts (the demo data and the runner's own), by path parameter: a
# generated key rarely names a record, and only a real one reaches the answers a record gives.
POOLS = {"policy_rule_uri": "/policy", "executor_id": "/executor", "asset_uri": "/asset", "graph_uri": "/graphs",
         "function_id": "/function", "job_id": "/jobs"}


def existing_keys() -> dict[str, list[str]]:
    base, token = os.environ.get("POLICYGRID_FUZZ_BASE"), os.environ.get("POLICYGRID_FUZZ_TOKEN")
    if not base:
        return {}
    keys = {}
    for name, path in POOLS.items():
        answer = requests.get(f"{base}{path}", headers={"Authorization": f"Token {token}"}, timeout=10).json()
        keys[name] = [record[name] for record in answer.get("data", []) if name in record]
    return keys


KEYS = existing_keys()


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    # Half the generated keys become an existing one, chosen from the generated value (deterministic, so that
    # hypothesis can replay and shrink).
    for name, value in list((path_parameters or {}).items()):
        pool = KEYS.get(name)
        if pool:
            digest = int(hashlib.sha256(repr(value).encode()).hexdigest(), 16)
            if digest % 2 == 0:
                path_parameters[name] = pool[digest // 2 % len(pool)]
    return path_parameters


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    # The run may revoke any token but the one it authenticates with: that would make every later call a 401.
    if case.operation.path == "/tokens/{id}" and str((case.path_parameters or {}).get("id")) == OWN_TOKEN_ID:
        case.path_parameters["id"] = ABSENT_TOKEN_ID
    # Generated query strings can run to many kilobytes (a parameter repeated with long values): keep the first
    # value of each, cut short, so that the request reaches the application.
    if case.query and len(urlencode(case.query, doseq=True)) > MAX_QUERY_BYTES:
        for name, value in list(case.query.items()):
            value = value[0] if isinstance(value, list) and value else value
            case.query[name] = value[:200] if isinstance(value, str) else value
