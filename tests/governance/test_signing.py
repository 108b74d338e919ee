"""Signed releases (docs/governance.md §5): approval signs; the SDK's loader verifies digest and signature; a
tampered package, an edited record, a revoked key and an unknown key are refused; rotation keeps old
signatures valid; private keys stay in the key store."""
import hashlib
import stat

import pytest
from django.core.management import call_command
from policygrid.errors import IntegrityError
from policygrid.evaluator import LocalPolicyEvaluator
from policygrid.fetch import FetchOptions
from policygrid.signing import POLICY_SIGNED_FIELDS, verify_release

from governance import lifecycle
from governance.models import SigningKey
from policies.models import PolicyRule

pytestmark = pytest.mark.django_db


def record_of(client, policy):
    return client.get(f"/policy/{policy.policy_rule_uri}").json()["data"]


def published(client):
    response = client.get("/keys")
    assert response.status_code == 200
    return response.json()["data"]


def test_the_sdk_signs_exactly_the_frozen_fields():
    assert set(POLICY_SIGNED_FIELDS) == set(PolicyRule.frozen_fields)


def test_approval_signs_and_the_record_verifies(clients, anon, policy_in, signing_key):
    policy = policy_in("approved")
    record = record_of(clients["viewer"], policy)
    assert record["signature"]["key_id"] == signing_key.key_id
    assert record["signature"]["algorithm"] == "ed25519"
    keys = published(anon)  # public keys need no account
    assert verify_release(record, record["code_digest"], keys) == signing_key.key_id


def test_drafts_and_versions_in_review_are_unsigned(clients, policy_in):
    for state in ("draft", "in_review"):
        record = record_of(clients["viewer"], policy_in(state, version=f"{state}.1".replace("_", "")))
        assert record["signature"] is None
        with pytest.raises(IntegrityError):
            verify_release(record, record["code_digest"], published(clients["viewer"]))


def test_the_sdk_loader_verifies_before_loading(clients, policy_in, tmp_path):
    record = record_of(clients["viewer"], policy_in("approved"))
    evaluator = LocalPolicyEvaluator(
        record["policy_rule_uri"], record=record, cache_dir=tmp_path, verify_signatures=True,
        signing_keys=published(clients["viewer"]), fetch_options=FetchOptions(allow_private=True),
    )
    assert evaluator.package.digest == record["code_digest"]
    evaluator.close()


def test_a_flipped_byte_in_the_package_is_refused(clients, new_policy, users, file_server, sample_package, tmp_path):
    data = sample_package[2]
    url = file_server.serve("signed-then-tampered.zip", data)
    policy = new_policy(version="5.0", code=url)
    lifecycle.submit(policy, users["author"])
    lifecycle.approve(policy, users["reviewer"])
    record = record_of(clients["viewer"], policy)
    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0x01
    file_server.serve("signed-then-tampered.zip", bytes(tampered))
    keys = published(clients["viewer"])
    with pytest.raises(IntegrityError) as caught:
        LocalPolicyEvaluator(record["policy_rule_uri"], record=record, cache_dir=tmp_path / "fresh",
                             verify_signatures=True, signing_keys=keys, fetch_options=FetchOptions(allow_private=True))
    assert caught.value.error_type == "integrity"
    tampered_digest = "sha256:" + hashlib.sha256(bytes(tampered)).hexdigest()
    with pytest.raises(IntegrityError):
        verify_release(record, tampered_digest, keys)
    # Re-pinning the record to the tampered package breaks the signature instead.
    with pytest.raises(IntegrityError):
        verify_release({**record, "code_digest": tampered_digest}, tampered_digest, keys)
    file_server.serve("signed-then-tampered.zip", data)


@pytest.mark.parametrize("field,value", [
    ("policy_settings", {"enable_external_allowlist": True, "external_allowlist_url": "http://evil"}),
    ("policy_parameters", {"local_allowlist": ["0.0.0.0/0"]}),
    ("code", "http://127.0.0.1:9/other.zip"),
    ("type", "python_class_v2"),
    ("policy_rule_uri", "ip_allowlist:1.0-prod"),
])
def test_an_edited_record_is_refused(field, value, clients, policy_in):
    record = record_of(clients["viewer"], policy_in("approved"))
    keys = published(clients["viewer"])
    verify_release(record, record["code_digest"], keys)  # verified once: its signature covers this record only
    with pytest.raises(IntegrityError) as caught:
        verify_release({**record, field: value}, record["code_digest"], keys)
    assert "altered" in caught.value.message


def test_a_revoked_key_is_refused(clients, policy_in, signing_key):
    record = record_of(clients["viewer"], policy_in("approved"))
    verify_release(record, record["code_digest"], published(clients["viewer"]))  # verified (and remembered) first
    call_command("rotate_signing_key", revoke=signing_key.key_id)
    keys = published(clients["viewer"])
    assert {k["key_id"]: k["status"] for k in keys}[signing_key.key_id] == "revoked"
    with pytest.raises(IntegrityError) as caught:
        verify_release(record, record["code_digest"], keys)
    assert "revoked" in caught.value.message


def test_an_unknown_key_id_is_refused(clients, policy_in):
    record = record_of(clients["viewer"], policy_in("approved"))
    forged = {**record, "signature": {**record["signature"], "key_id": "0123456789abcdef"}}
    with pytest.raises(IntegrityError) as caught:
        verify_release(forged, record["code_digest"], published(clients["viewer"]))
    assert "not a known signing key" in caught.value.message


def test_a_signature_by_another_key_is_refused(clients, policy_in, signing_key):
    first = record_of(clients["viewer"], policy_in("approved", version="1.0"))
    call_command("rotate_signing_key")
    second = record_of(clients["viewer"], policy_in("approved", version="2.0"))
    swapped = {**first, "signature": {**first["signature"], "signature": second["signature"]["signature"]}}
    with pytest.raises(IntegrityError):
        verify_release(swapped, first["code_digest"], published(clients["viewer"]))


def test_rotation_keeps_old_signatures_verifiable(clients, policy_in, signing_key, capsys):
    old = record_of(clients["viewer"], policy_in("approved", version="1.0"))
    call_command("rotate_signing_key")
    new_key = SigningKey.objects.get(status="active")
    assert new_key.key_id != signing_key.key_id
    new = record_of(clients["viewer"], policy_in("approved", version="2.0"))
    assert new["signature"]["key_id"] == new_key.key_id
    keys = published(clients["viewer"])
    assert {k["key_id"]: k["status"] for k in keys} == {signing_key.key_id: "retired", new_key.key_id: "active"}
    assert verify_release(old, old["code_digest"], keys) == signing_key.key_id
    assert verify_release(new, new["code_digest"], keys) == new_key.key_id


def test_private_keys_stay_in_the_key_store_with_mode_0600(settings, clients, signing_key):
    path = settings.SIGNING_KEY_DIR / f"{signing_key.key_id}.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.SIGNING_KEY_DIR.stat().st_mode) == 0o700
    body = clients["admin"].get("/keys").content.decode()
    assert "PRIVATE" not in body and path.read_text() not in body


def test_create_signing_key_command_retires_the_previous_key(signing_key, capsys):
    call_command("create_signing_key")
    assert "created signing key" in capsys.readouterr().out
    signing_key.refresh_from_db()
    assert signing_key.status == "retired"
    assert SigningKey.objects.filter(status="active").count() == 1


def test_the_portal_side_check_notices_a_field_changed_in_the_database(policy_in, signing_key):
    from governance.signing import verify_object

    policy = policy_in("approved")
    assert verify_object(policy) == signing_key.key_id
    PolicyRule.objects.filter(pk=policy.pk).update(policy_parameters={"local_allowlist": ["0.0.0.0/0"]})
    policy.refresh_from_db()
    with pytest.raises(IntegrityError):
        verify_object(policy)


def test_signing_can_be_turned_off(settings, clients, policy_in):
    settings.SIGNING_ENABLED = False
    record = record_of(clients["viewer"], policy_in("approved"))
    assert record["status"] == "approved" and record["signature"] is None


def test_a_grant_serves_one_use_for_a_while_and_a_new_key_signs_afresh(signing_key,
                                                                     django_capture_on_commit_callbacks):
    from governance.signing import sign_grant

    first = sign_grant("p:1.0", "sha256:" + "a" * 64, dry_run=False, caller="user:1")
    assert sign_grant("p:1.0", "sha256:" + "a" * 64, dry_run=False, caller="user:1") is first
    for other in ({"caller": "user:2"}, {"dry_run": True}, {"purpose": "job:7"}):
        grant = sign_grant("p:1.0", "sha256:" + "a" * 64, **{"dry_run": False, "caller": "user:1", **other})
        assert grant["signature"] != first["signature"]
        assert all(grant["statement"][name] == value for name, value in other.items())
    with django_capture_on_commit_callbacks(execute=True):  # the rotation's commit forgets the active key's id
        call_command("rotate_signing_key")
    assert sign_grant("p:1.0", "sha256:" + "a" * 64, dry_run=False, caller="user:1")["key_id"] != first["key_id"]


@pytest.mark.parametrize("signature", [["not", "text"], {"a": 1}, "bm90IGEgc2lnbmF0dXJl"])
def test_a_signature_that_is_not_text_or_not_valid_is_refused_not_a_crash(clients, policy_in, signature):
    record = record_of(clients["viewer"], policy_in("approved"))
    keys = published(clients["viewer"])
    verify_release(record, record["code_digest"], keys)  # the genuine one verified (and remembered) first
    forged = {**record, "signature": {**record["signature"], "signature": signature}}
    with pytest.raises(IntegrityError):
        verify_release(forged, record["code_digest"], keys)
