"""Registration checks of docs/api.md §4.1: the package is fetched once, checked by reading it, and pinned."""
import io
import zipfile

import pytest

from policies.models import PolicyRule

pytestmark = pytest.mark.django_db


def zip_bytes(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def test_registration_pins_the_package_digest(api, policy_payload, sample_package):
    response = api.post("/policy", policy_payload(), format="json")
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["code_digest"] == sample_package[1]
    assert data["policy_rule_uri"] == "ip_allowlist:1.0-beta"
    assert data["status"] == "draft"


def test_a_client_sent_digest_must_match(api, policy_payload, sample_package):
    wrong = "sha256:" + "0" * 64
    response = api.post("/policy", policy_payload(code_digest=wrong), format="json")
    assert response.status_code == 400
    assert "code_digest" in response.json()["errors"]
    assert not PolicyRule.objects.exists()
    ok = api.post("/policy", policy_payload(code_digest=sample_package[1]), format="json")
    assert ok.status_code == 201


def test_a_uri_sent_by_the_client_is_ignored(api, policy_payload):
    response = api.post("/policy", policy_payload(policy_rule_uri="evil:9-x"), format="json")
    assert response.json()["data"]["policy_rule_uri"] == "ip_allowlist:1.0-beta"


def test_tags_as_a_list_are_stored_as_the_same_string(api, policy_payload):
    response = api.post("/policy", policy_payload(tags=["network", "security"]), format="json")
    assert response.json()["data"]["tags"] == "network,security"


@pytest.mark.parametrize("files,needle", [
    ({"code/other.py": "x = 1"}, "function.py"),
    ({"code/function.py": "class Other:\n    pass\n"}, "AIOSv1PolicyRule"),
    ({"code/function.py": "class AIOSv1PolicyRule:\n    def management(self, a, d):\n        return {}\n"}, "eval"),
    ({"code/function.py": "class AIOSv1PolicyRule(:\n"}, "line"),
    ({"function.py": "class AIOSv1PolicyRule:\n    def eval(self, p, i, c):\n        return {}\n"}, "code/"),
])
def test_a_package_failing_the_checks_is_400_with_the_reason(api, policy_payload, file_server, files, needle):
    url = file_server.serve(f"bad-{abs(hash(str(files)))}.zip", zip_bytes(files))
    response = api.post("/policy", policy_payload(code=url), format="json")
    assert response.status_code == 400, response.content
    assert "code" in response.json()["errors"]
    assert needle in response.json()["message"]
    assert not PolicyRule.objects.exists()


def test_a_chain_of_links_leading_out_of_the_package_is_refused(api, policy_payload, file_server):
    """Issue 13: "code/sub/a -> c/../../.." and "code/sub/c -> .." each look inside; together "a" leads out."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("code/function.py", "class AIOSv1PolicyRule:\n    def eval(self, p, i, c):\n        return {}\n")
        for name, target in (("code/sub/a", "c/../../.."), ("code/sub/c", "..")):
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = 0o120777 << 16  # a symbolic link
            archive.writestr(info, target)
    url = file_server.serve("link-chain.zip", buffer.getvalue())
    response = api.post("/policy", policy_payload(code=url), format="json")
    assert response.status_code == 400, response.content
    assert "code/sub/a" in response.json()["message"]
    assert "leaves the package folder" in response.json()["message"]
    assert not PolicyRule.objects.exists()


def test_a_file_that_is_no_archive_is_refused(api, policy_payload, file_server):
    url = file_server.serve("not-an-archive.zip", b"just some text, not an archive")
    response = api.post("/policy", policy_payload(code=url), format="json")
    assert response.status_code == 400
    assert "archive" in response.json()["message"]


def test_an_unreachable_package_is_400(api, policy_payload, file_server):
    response = api.post("/policy", policy_payload(code=f"{file_server.base}/missing.zip"), format="json")
    assert response.status_code == 400
    assert "404" in response.json()["message"] or "not found" in response.json()["message"].lower()


def test_private_network_package_urls_are_refused_without_connecting(api, policy_payload, settings, monkeypatch):
    import socket

    settings.PACKAGE_ALLOW_PRIVATE_NETWORKS = False

    def no_connection(*args, **kwargs):
        raise AssertionError("the guard must refuse before any connection is opened")

    monkeypatch.setattr(socket, "create_connection", no_connection)
    monkeypatch.setattr(socket.socket, "connect", no_connection)
    for url in ("http://10.1.2.3/p.zip", "http://192.168.0.10/p.zip", "http://127.0.0.1:9/p.zip", "http://[::1]/p.zip"):
        response = api.post("/policy", policy_payload(code=url), format="json")
        assert response.status_code == 400, url
        assert "private" in response.json()["message"] or "loopback" in response.json()["message"]


def test_local_paths_are_refused_unless_allowed(api, policy_payload, tmp_path):
    path = tmp_path / "p.zip"
    path.write_bytes(zip_bytes({"code/function.py": "class AIOSv1PolicyRule:\n    def eval(self, p, i, c):\n        return {}\n"}))
    response = api.post("/policy", policy_payload(code=str(path)), format="json")
    assert response.status_code == 400


@pytest.mark.parametrize("field_name,value", [
    ("policy_input_schema", {"ip": {"type": "ipaddress"}}),
    ("policy_input_schema", {"ip": {"type": "string", "pattern": "("}}),
    ("policy_parameters_schema", {"n": {"type": "number", "min": 5, "max": 1}}),
    ("management_commands_schema", [{"description": "no name"}]),
])
def test_malformed_schemas_are_400_with_the_path_of_the_fault(api, policy_payload, field_name, value):
    response = api.post("/policy", policy_payload(**{field_name: value}), format="json")
    assert response.status_code == 400, response.content
    assert any(key.startswith(field_name) for key in response.json()["errors"]), response.json()


def test_stored_settings_and_parameters_must_satisfy_their_schemas(api, policy_payload):
    response = api.post("/policy", policy_payload(policy_parameters={"local_allowlist": "not-a-list"}), format="json")
    assert response.status_code == 400
    assert any(key.startswith("policy_parameters") for key in response.json()["errors"])
    response = api.post("/policy", policy_payload(policy_settings={"allowlist_api": "ftp://x"}), format="json")
    assert response.status_code == 400
    assert any(key.startswith("policy_settings") for key in response.json()["errors"])


def test_updating_code_refetches_and_repins(api, policy_payload, file_server):
    api.post("/policy", policy_payload(), format="json")
    other = zip_bytes({"code/function.py": "class AIOSv1PolicyRule:\n    def eval(self, p, i, c):\n        return {'allowed': True}\n"})
    url = file_server.serve("other.zip", other)
    response = api.patch("/policy/ip_allowlist:1.0-beta", {"$set": {"code": url}, "$unset": {"code_digest": ""}},
                         format="json")
    assert response.status_code == 200, response.content
    import hashlib

    assert response.json()["data"]["code_digest"] == "sha256:" + hashlib.sha256(other).hexdigest()
    # Keeping the old digest with new code is a mismatch: refused, nothing saved.
    bad = api.patch("/policy/ip_allowlist:1.0-beta", {"$set": {"code": policy_payload()["code"]}}, format="json")
    assert bad.status_code == 400
    assert PolicyRule.objects.get().code == url


def test_no_outbound_network_unless_the_version_declares_its_ports(api, policy_payload):
    created = api.post("/policy", policy_payload(), format="json").json()["data"]
    assert created["policy_network"] == {}
    declared = api.post("/policy", policy_payload(version="2.0", policy_network={"outbound_ports": [443, 8443]}),
                        format="json")
    assert declared.status_code == 201, declared.json()
    assert declared.json()["data"]["policy_network"] == {"outbound_ports": [443, 8443]}


@pytest.mark.parametrize("network,reason", [
    ([443], "must be a JSON object"),
    ({"outbound": True}, "unknown key 'outbound'"),
    ({"outbound_ports": [0]}, "list of TCP ports"),
    ({"outbound_ports": ["443"]}, "list of TCP ports"),
    ({"outbound_ports": [True]}, "list of TCP ports"),
])
def test_a_malformed_network_declaration_is_400_naming_it(api, policy_payload, network, reason):
    response = api.post("/policy", policy_payload(policy_network=network), format="json")
    assert response.status_code == 400
    assert any(reason in message for message in response.json()["errors"]["policy_network"])
