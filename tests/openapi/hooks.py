"""schemathesis hooks of tests/openapi/run_schemathesis.py."""
import os
from urllib.parse import urlencode

import schemathesis

OWN_TOKEN_ID = os.environ.get("POLICYGRID_FUZZ_OWN_TOKEN_ID", "")
ABSENT_TOKEN_ID = "999999999"
# Below the web server's request-line limit (gunicorn's 4094 bytes): the limit's own answer (414) is the web
# server's business and tested with it; these runs are about the application behind it.
MAX_QUERY_BYTES = 3000


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
