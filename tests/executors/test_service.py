"""The executor service's contract: statelessness, the override rule, auth, validation, record caching."""
from __future__ import annotations

import requests

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
