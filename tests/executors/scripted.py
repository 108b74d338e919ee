"""A scripted executor service on loopback, and the fixtures of the portal-route tests that call it."""
from __future__ import annotations

import json
import time

import pytest

from tests.fileserver import LoopbackServer, QuietHandler

ERROR_STATUS = {"input_invalid": 400, "policy_error": 500, "output_invalid": 500, "resource_limit": 500,
                "integrity": 500, "timeout": 504}


class ScriptedExecutor(LoopbackServer):
    """Answers by ``input_data["case"]``; records every request it received."""

    def __init__(self):
        self.received = []
        self.token = None  # the credential its registration issued
        self.packages = {}  # code_digest → the bytes uploaded with PUT /packages/<digest>
        outer = self

        class Handler(QuietHandler):
            def do_PUT(self):  # noqa: N802
                data = self.rfile.read(int(self.headers["Content-Length"]))
                digest = self.path.rsplit("/", 1)[-1]
                outer.received.append((self.headers.get("Authorization"), {"PUT": self.path,
                                       "content_type": self.headers.get("Content-Type")}))
                outer.packages[digest] = data
                return self.reply(201, {"success": True, "data": {"code_digest": digest, "created": True}})

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.received.append((self.headers.get("Authorization"), body))
                if self.headers.get("Authorization") != f"Bearer {outer.token}":
                    return self.reply(401, {"success": False, "message": "no"})
                case = body["input_data"].get("case", "ok") if isinstance(body["input_data"], dict) else "ok"
                if case == "ok":
                    return self.reply(200, {"success": True, "data": {"echo": body["input_data"]}})
                if case == "prints":
                    printed = {"stdout": "hello\n", "stderr": "", "truncated": False}
                    return self.reply(200, {"success": True, "data": {},
                                            **({"output": printed} if body.get("capture_output") else {})})
                if case == "needs-package":
                    digest = body["record"]["code_digest"]
                    if digest not in outer.packages:
                        return self.reply(409, {"success": False, "error_type": "package_required",
                                                "message": "upload it", "code_digest": digest})
                    return self.reply(200, {"success": True, "data": {"ran": digest}})
                if case in ERROR_STATUS:
                    return self.reply(ERROR_STATUS[case], {"success": False, "error_type": case,
                                                           "message": f"ValueError: {case} happened",
                                                           "exception_type": "ValueError"})
                if case == "slow":
                    time.sleep(1.5)
                    return self.reply(200, {"success": True, "data": {}})
                if case == "nonsense":
                    return self.reply(200, b"<html>proxy error</html>")
                return self.reply(404, {"success": False, "error_type": "not_found", "message": "no such policy"})

            def reply(self, status, body, content_type=None):
                if isinstance(body, bytes):
                    return super().reply(status, body, content_type)
                return super().reply(status, json.dumps(body).encode(), "application/json")

        super().__init__(Handler)


@pytest.fixture(scope="module")
def scripted():
    executor = ScriptedExecutor()
    yield executor
    executor.close()


@pytest.fixture
def setup(settings, db, api, policy_payload, scripted):
    from executors.models import PolicyExecutor
    from policies.models import PolicyRule

    settings.EXECUTOR_TOKEN = "the deployment's shared secret: never sent to an executor with its own credential"
    settings.EXECUTOR_TIMEOUT_MARGIN = 0.2
    assert api.post("/policy", policy_payload(), format="json").status_code == 201
    PolicyRule.objects.filter(policy_rule_uri="ip_allowlist:1.0-beta").update(status="approved")
    registered = api.post("/executor", {"executor_id": "scripted", "executor_host_uri": scripted.url}, format="json")
    assert registered.status_code == 201
    scripted.token = registered.json()["data"]["executor_token"]  # shown once, set on the service
    return PolicyExecutor.objects.get(executor_id="scripted")


def call(client, body, executor="scripted"):
    return client.post(f"/executor/{executor}/execute_policy", body, format="json")


def body_for(case="ok", **extra):
    return {"policy_rule_uri": "ip_allowlist:1.0-beta", "input_data": {"case": case}, **extra}
