"""The executor service's contract: statelessness, the override rule, auth, validation, record caching."""
from __future__ import annotations

import base64
import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import requests
from policygrid.signing import canonical_json, grant_statement, policy_statement
from policygrid.wire import execute_with_upload

from tests.executors.conftest import free_port, policy_zip, start_service, stop_service

STATEFUL = """
    class AIOSv1PolicyRule:
        def __init__(self, rule_id, settings, parameters):
            self.count = 0
            self.rule_id = rule_id
        def eval(self, parameters, input_data, context):
            self.count += 1
            context.set("seen", self.count)
            return {"count": self.count, "rule_id": self.rule_id}
"""

ECHO = """
    class AIOSv1PolicyRule:
        def __init__(self, rule_id, settings, parameters):
            self.settings = settings
        def eval(self, parameters, input_data, context):
            return {"settings": self.settings, "parameters": parameters, "input": input_data}
"""


def test_each_call_gets_a_fresh_instance(executor_service, fake_portal):
    uri = fake_portal.publish("stateful", STATEFUL)
    first = executor_service.execute(uri, {})
    second = executor_service.execute(uri, {})
    assert first == second == (200, {"success": True, "data": {"count": 1, "rule_id": uri}})


def test_callers_parameters_and_settings_win(executor_service, fake_portal):
    uri = fake_portal.publish("echo", ECHO, policy_settings={"a": 1, "b": 2}, policy_parameters={"x": 1, "y": 2},
                              policy_settings_schema={"b": {"type": "integer"}})
    code, body = executor_service.execute(uri, {"k": 1}, settings={"b": 3}, parameters={"y": 5, "z": 6})
    assert code == 200
    assert body["data"] == {"settings": {"a": 1, "b": 3}, "parameters": {"x": 1, "y": 5, "z": 6}, "input": {"k": 1}}
    # An override that fails the settings schema is refused before the policy runs.
    code, body = executor_service.execute(uri, {}, settings={"b": "three"})
    assert code == 400 and body["error_type"] == "input_invalid" and "settings.b" in body["errors"]


def test_requests_without_the_secret_are_refused(executor_service, fake_portal):
    uri = fake_portal.publish("echo", ECHO)
    body = {"policy_rule_uri": uri, "input_data": {}}
    assert requests.post(f"{executor_service.url}/execute_policy", json=body, timeout=5).status_code == 401
    wrong = requests.post(f"{executor_service.url}/execute_policy", json=body, timeout=5,
                          headers={"Authorization": "Bearer " + executor_service.token + "x"})
    assert wrong.status_code == 401 and wrong.json()["success"] is False


def test_malformed_bodies_name_the_field(executor_service):
    post = executor_service.session.post
    url = f"{executor_service.url}/execute_policy"
    assert post(url, data=b"{not json", timeout=5).status_code == 400
    for body, field in (({"input_data": {}}, "policy_rule_uri"), ({"policy_rule_uri": "a:1-b"}, "input_data"),
                        ({"policy_rule_uri": "a:1-b", "input_data": {}, "parameters": []}, "parameters"),
                        ({"policy_rule_uri": "a:1-b", "input_data": {}, "timeout_seconds": -1}, "timeout_seconds")):
        response = post(url, json=body, timeout=5)
        assert response.status_code == 400 and field in response.json()["errors"], body


def test_unknown_policy_and_digest_mismatch(executor_service, fake_portal):
    code, body = executor_service.execute("nope:1.0-none", {})
    assert code == 404 and body["error_type"] == "not_found"
    uri = fake_portal.publish("tampered", ECHO + "\n# never cached before\n")
    record = fake_portal.file_server  # serve other bytes at the pinned URL: the digest check must catch it
    import json

    envelope = json.loads(requests.get(f"{fake_portal.base}/policy/{uri}", timeout=5).content)
    record.serve(envelope["data"]["code"].split("/", 3)[3], b"PK\x05\x06" + b"\x00" * 18)
    code, body = executor_service.execute(uri, {})
    assert code == 500 and body["error_type"] == "integrity"


def test_record_is_refetched_only_when_its_stamp_changes(executor_service, fake_portal):
    uri = fake_portal.publish("stamped", ECHO, policy_parameters={"v": 1})
    fetches = executor_service.health()["cache"]["portal_fetches"]
    for _ in range(3):
        assert executor_service.execute(uri, {})[1]["data"]["parameters"] == {"v": 1}
    assert executor_service.health()["cache"]["portal_fetches"] == fetches + 1
    from policygrid.executor.store import record_stamp

    fake_portal.publish("stamped", ECHO, policy_parameters={"v": 2}, updated_at="2025-02-01T00:00:00+00:00")
    old = {"code_digest": None, "updated_at": "2025-01-01T00:00:00+00:00"}
    new_stamp = record_stamp({**old, "updated_at": "2025-02-01T00:00:00+00:00"})
    _, body = executor_service.execute(uri, {}, policy_stamp=new_stamp)
    assert body["data"]["parameters"] == {"v": 2}


# --- records sent with the call: no call back into the portal --------------------------------------------


class Signer:
    """An Ed25519 signing key as the portal holds one: its /keys entry, and release signatures of records."""

    def __init__(self, key_id: str) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.key_id = key_id
        self.key = Ed25519PrivateKey.generate()

    def entry(self) -> dict:
        from cryptography.hazmat.primitives import serialization

        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"key_id": self.key_id, "public_key": base64.b64encode(raw).decode(), "algorithm": "ed25519",
                "status": "active"}

    def release(self, record: dict) -> dict:
        return self.sign(policy_statement(record))

    def grant(self, record: dict, *, dry_run: bool = False, expires_in: int = 60, **changes) -> dict:
        statement = grant_statement(uri=record["policy_rule_uri"], code_digest=record["code_digest"],
                                    dry_run=dry_run, expires_at=int(time.time()) + expires_in)
        statement.update(changes)
        return {"statement": statement, **self.sign(statement)}

    def sign(self, statement: dict) -> dict:
        signature = self.key.sign(canonical_json(statement))
        return {"key_id": self.key_id, "signature": base64.b64encode(signature).decode()}


def echo_zip(tag: str) -> bytes:
    """The ECHO policy with a comment of its own: a package (and digest) no other test uses."""
    return policy_zip(ECHO + f"    # {tag}\n")


def make_record(name: str, data: bytes, **fields) -> dict:
    record = {"policy_rule_uri": f"{name}:1.0-test", "code": "/asset-object/never-read",
              "code_digest": "sha256:" + hashlib.sha256(data).hexdigest(), "code_type": "python", "type": "policy",
              "policy_input_schema": None, "policy_output_schema": None, "policy_settings_schema": None,
              "policy_parameters_schema": None, "policy_settings": {}, "policy_parameters": {},
              "management_commands_schema": []}
    record.update(fields)
    return record


def call(service, record, release=None, input_data=None, granter=None, **extra):
    """``granter`` stands for the portal: it signs the call's execution grant (none without it)."""
    body = {"policy_rule_uri": record["policy_rule_uri"], "input_data": input_data or {}, "record": record,
            "release": release, **extra}
    if granter is not None and "grant" not in extra:
        body["grant"] = granter.grant(record, dry_run=extra.get("dry_run", False))
    response = service.session.post(f"{service.url}/execute_policy", json=body, timeout=30)
    return response.status_code, response.json()


def put(service, digest, data, session=None):
    response = (session or service.session).put(f"{service.url}/packages/{digest}", data=data, timeout=30,
                                                headers={"Content-Type": "application/octet-stream"})
    return response.status_code, response.json()


def send_to(service):
    """``send`` for ``policygrid.wire.execute_with_upload``: one authenticated request to the service."""

    def send(method, path, data):
        kind = "application/json" if method == "POST" else "application/octet-stream"
        response = service.session.request(method, service.url + path, data=data, timeout=30,
                                           headers={"Content-Type": kind})
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    return send


def cache_stats(service) -> dict:
    return service.health()["cache"]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """A service that verifies signatures with keys from a file, and whose portal address answers nothing."""
    tmp = tmp_path_factory.mktemp("keyed")
    signer = Signer("k-1")
    keys_file = tmp / "keys.json"
    keys_file.write_text(json.dumps({"success": True, "data": [signer.entry()]}))
    service = start_service(tmp, f"http://127.0.0.1:{free_port()}", workers=2, extra_env={
        "POLICYGRID_VERIFY_SIGNATURES": "true", "POLICYGRID_SIGNING_KEYS_FILE": str(keys_file),
        "POLICYGRID_KEYS_REFRESH_SECONDS": "3600", "POLICYGRID_EXECUTOR_MAX_PACKAGE_BYTES": str(64 * 1024)})
    yield SimpleNamespace(service=service, signer=signer, keys_file=keys_file)
    stop_service(service)


def test_a_signed_record_runs_with_no_portal_once_its_package_is_uploaded(keyed):
    service = keyed.service
    data = echo_zip("signed")
    record = make_record("signed", data, policy_parameters={"v": 1})
    release = keyed.signer.release(record)
    code, body = call(service, record, release, granter=keyed.signer)
    assert code == 409 and body["error_type"] == "package_required" and body["code_digest"] == record["code_digest"]
    assert put(service, record["code_digest"], data) == (201, {"success": True, "data": {
        "code_digest": record["code_digest"], "created": True}})
    code, body = call(service, record, release, {"k": 1}, granter=keyed.signer)
    assert code == 200 and body["data"] == {"settings": {}, "parameters": {"v": 1}, "input": {"k": 1}}
    assert cache_stats(service)["portal_fetches"] == 0
    # The portal is really unreachable: a call that names only the URI can't be resolved.
    code, body = service.execute(record["policy_rule_uri"], {})
    assert code == 502 and body["error_type"] == "unavailable"


def test_a_record_is_prepared_once_per_content(keyed):
    service = keyed.service
    data = echo_zip("prepared once")
    record = make_record("prepared", data, policy_parameters={"v": 1})
    assert put(service, record["code_digest"], data)[0] == 201
    before = cache_stats(service)
    for _ in range(3):
        assert call(service, record, keyed.signer.release(record), granter=keyed.signer)[1]["data"]["parameters"] == {"v": 1}
    after = cache_stats(service)
    assert (after["records_prepared"], after["record_hits"]) == (before["records_prepared"] + 1,
                                                                 before["record_hits"] + 2)
    changed = {**record, "policy_parameters": {"v": 2}}
    assert call(service, changed, keyed.signer.release(changed), granter=keyed.signer)[1]["data"]["parameters"] == {"v": 2}
    assert cache_stats(service)["records_prepared"] == before["records_prepared"] + 2


def test_a_tampered_record_is_an_integrity_failure(keyed):
    data = echo_zip("tampered")
    record = make_record("tampered", data, policy_parameters={"limit": 1})
    release = keyed.signer.release(record)
    code, body = call(keyed.service, {**record, "policy_parameters": {"limit": 1000}}, release, granter=keyed.signer)
    assert code == 500 and body["error_type"] == "integrity" and "altered" in body["message"]


def test_an_unknown_key_is_refused_then_learnt_in_the_background(keyed):
    service = keyed.service
    data = echo_zip("new key")
    record = make_record("newkey", data)
    assert put(service, record["code_digest"], data)[0] == 201
    newcomer = Signer("k-2")
    loads = cache_stats(service)["keys"]["loads"]
    code, body = call(service, record, newcomer.release(record), granter=keyed.signer)
    assert code == 500 and body["error_type"] == "integrity" and "k-2" in body["message"]
    deadline = time.monotonic() + 5
    while cache_stats(service)["keys"]["loads"] == loads:  # the refresh an unknown key id asks for
        assert time.monotonic() < deadline, "no refresh after an unknown key id"
        time.sleep(0.1)
    keyed.keys_file.write_text(json.dumps([keyed.signer.entry(), newcomer.entry()]))
    while (code := call(service, record, newcomer.release(record), granter=keyed.signer)[0]) != 200:
        assert code == 500 and time.monotonic() < deadline + 5
        time.sleep(0.2)


def test_an_unsigned_record_runs_only_as_a_dry_run_while_verification_is_on(keyed):
    service = keyed.service
    data = echo_zip("draft")
    record = make_record("draft", data)
    assert put(service, record["code_digest"], data)[0] == 201
    code, body = call(service, record, granter=keyed.signer)
    assert code == 500 and body["error_type"] == "integrity" and "release" in body["errors"]
    code, body = call(service, record, dry_run=True, granter=keyed.signer)
    assert code == 200, body


def test_a_call_runs_only_with_the_portals_grant_for_exactly_that_call(keyed):
    """A stolen executor credential alone runs nothing: every call needs the portal's signed, short-lived grant
    naming this version, this package and whether it is a dry run."""
    service = keyed.service
    data = echo_zip("granted")
    record = make_record("granted", data)
    assert put(service, record["code_digest"], data)[0] == 201
    release = keyed.signer.release(record)
    refusals = {
        "grant": call(service, record, release),
        "grant.expires_at": call(service, record, release, grant=keyed.signer.grant(record, expires_in=-5)),
        "grant.dry_run": call(service, record, release, grant=keyed.signer.grant(record, dry_run=True)),
        "grant.uri": call(service, record, release, grant=keyed.signer.grant(record, uri="other:1-x")),
        "grant.code_digest": call(service, record, release,
                                  grant=keyed.signer.grant(record, code_digest="sha256:" + "0" * 64)),
        "signature": call(service, record, release,
                          grant={**keyed.signer.grant(record), "signature": keyed.signer.release(record)["signature"]}),
        "signature.key_id": call(service, record, release, grant=Signer("stranger").grant(record)),
    }
    for field, (code, body) in refusals.items():
        assert code == 500 and body["error_type"] == "integrity" and field in body["errors"], (field, body)
    # A grant for a job or a function is not one for a call; a call's grant can't start a job, nor one job's
    # grant another job.
    for purpose in ("job:j-1", "function:f"):
        code, body = call(service, record, release, grant=keyed.signer.grant(record, purpose=purpose))
        assert code == 500 and "grant.purpose" in body["errors"], (purpose, body)
    job = {"job_id": "j-2", "token": "t" * 20}
    for grant in (keyed.signer.grant(record), keyed.signer.grant(record, purpose="job:j-1")):
        body = {"policy_rule_uri": record["policy_rule_uri"], "input_data": {}, "record": record,
                "release": release, "grant": grant, "job": job}
        answer = service.session.post(f"{service.url}/jobs", json=body, timeout=30)
        assert answer.status_code == 500 and "grant.purpose" in answer.json()["errors"], answer.json()
    function = {"name": "f-2", "replicas": 1}
    body = {"policy_rule_uri": record["policy_rule_uri"], "input_data": None, "record": record, "release": release,
            "grant": keyed.signer.grant(record, purpose="function:f-1"), "function": function}
    answer = service.session.post(f"{service.url}/functions", json=body, timeout=30)
    assert answer.status_code == 500 and "grant.purpose" in answer.json()["errors"], answer.json()
    # A draft (no release) with a grant that is not for a dry run stays refused, as a dry run it runs.
    assert call(service, record, None, dry_run=True, grant=keyed.signer.grant(record))[0] == 500
    assert call(service, record, None, dry_run=True, granter=keyed.signer)[0] == 200
    assert call(service, record, release, granter=keyed.signer)[0] == 200


def test_package_uploads_are_checked(keyed):
    service = keyed.service
    data = echo_zip("uploads")
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    other = "sha256:" + "0" * 64
    code, body = put(service, other, data)
    assert code == 400 and other in body["message"] and digest in body["message"]
    assert put(service, other, b"x" * (100 * 1024))[0] == 413
    assert put(service, digest, data, session=requests.Session())[0] == 401
    junk = b"not an archive at all"
    code, body = put(service, "sha256:" + hashlib.sha256(junk).hexdigest(), junk)
    assert code == 400 and body["error_type"] == "package_invalid"
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(code for code, _ in pool.map(lambda _: put(service, digest, data), range(6)))
    assert statuses == [200] * 5 + [201]
    record = make_record("uploads", data)
    assert call(service, record, keyed.signer.release(record), granter=keyed.signer)[0] == 200


def test_execute_with_upload_with_verification_off(executor_service):
    data = echo_zip("helper")
    record = make_record("helper", data, policy_settings={"s": 1})
    body = {"policy_rule_uri": record["policy_rule_uri"], "input_data": [1], "record": record, "release": None}
    reads = []

    def read_package(digest):
        reads.append(digest)
        return data

    result = execute_with_upload(send_to(executor_service), body, read_package, "test-executor")
    assert result == {"settings": {"s": 1}, "parameters": {}, "input": [1]}
    assert execute_with_upload(send_to(executor_service), body, read_package, "test-executor") == result
    assert reads == [record["code_digest"]]


def test_keys_are_read_from_the_portal_and_a_service_without_keys_says_so(tmp_path, fake_portal):
    signer = Signer("portal-key")
    fake_portal.file_server.serve("keys", json.dumps({"success": True, "data": [signer.entry()]}).encode())
    data = echo_zip("portal keys")
    record = make_record("portalkeys", data)
    verifying = {"POLICYGRID_VERIFY_SIGNATURES": "true"}
    service = start_service(tmp_path / "with-portal", fake_portal.base, workers=1, extra_env=verifying)
    try:
        assert put(service, record["code_digest"], data)[0] == 201
        assert call(service, record, signer.release(record), granter=signer)[0] == 200
        assert cache_stats(service)["keys"]["count"] == 1
    finally:
        stop_service(service)
    service = start_service(tmp_path / "alone", "", workers=1, extra_env=verifying)
    try:
        code, body = call(service, record, signer.release(record), granter=signer)
        assert code == 500 and body["error_type"] == "integrity" and "no signing keys" in body["message"]
    finally:
        stop_service(service)


def test_capture_output_answers_what_the_policy_printed(keyed):
    service = keyed.service
    data = policy_zip(ECHO.replace("            return {", "            print('to stdout', input_data)\n"
                                   "            import sys; print('to stderr', file=sys.stderr)\n            return {"))
    record = make_record("printer", data)
    assert put(service, record["code_digest"], data)[0] == 201
    release = keyed.signer.release(record)
    code, body = call(service, record, release, {"n": 1}, granter=keyed.signer)
    assert code == 200 and "output" not in body
    code, body = call(service, record, release, {"n": 2}, granter=keyed.signer, capture_output=True)
    assert code == 200, body
    assert body["output"] == {"stdout": "to stdout {'n': 2}\n", "stderr": "to stderr\n", "truncated": False}
