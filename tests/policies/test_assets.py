"""Assets (docs/api.md §4.2): multipart upload into the configured storage, download, delete; S3 via moto."""
import hashlib
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from policies.models import Asset

pytestmark = pytest.mark.django_db

META = {"asset_name": "IP-allow-list", "asset_version": {"version": "1.0", "tag": "beta"},
        "asset_metadata": {"description": "IP allow list policy code"}, "asset_tags": ["policy", "example"]}


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "assets": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "assets")}}}
    from django.core.files.storage import storages

    storages._storages = {}
    storages._backends = None
    yield
    storages._storages = {}
    storages._backends = None


def upload(client, data: bytes, meta=META, name="ip-allow-list-checker.zip"):
    return client.post("/upload_asset", {"asset": SimpleUploadedFile(name, data), "asset_metadata": json.dumps(meta)},
                       format="multipart")


def test_upload_answers_the_earlier_systems_keys_and_the_record(clients, sample_package):
    data = sample_package[2]
    response = upload(clients["author"], data)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["success"] is True
    assert body["asset_uri"] == "IP-allow-list:1.0-beta"
    assert body["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert body["public_url"].endswith(f"/asset-object/{body['asset_id']}")
    assert body["data"]["asset_tags"] == ["policy", "example"]
    assert body["data"]["size"] == len(data)


def test_an_upload_writes_one_audit_entry_and_a_refused_one_none(clients):
    from audit.models import AuditEntry

    body = upload(clients["author"], b"bytes").json()
    entries = list(AuditEntry.objects.filter(target_key=body["asset_uri"]))
    assert [(e.action, e.actor_username) for e in entries] == [("create", "author-user")]
    assert entries[0].data["digest"] == body["digest"]
    assert upload(clients["author"], b"again").status_code == 409
    assert AuditEntry.objects.filter(target_key=body["asset_uri"]).count() == 1


def test_download_returns_the_same_bytes(clients, sample_package):
    body = upload(clients["author"], sample_package[2]).json()
    response = clients["viewer"].get(f"/asset-object/{body['asset_id']}")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == sample_package[2]
    assert clients["viewer"].get("/asset-object/00000000-0000-0000-0000-000000000000").status_code == 404


def test_a_policy_can_point_at_an_uploaded_asset(clients, policy_payload, sample_package):
    body = upload(clients["author"], sample_package[2]).json()
    response = clients["author"].post("/policy", policy_payload(code=body["public_url"]), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["data"]["code_digest"] == body["digest"]
    # ... and the asset can't be deleted while the policy uses it.
    conflict = clients["admin"].delete(f"/asset/{body['asset_uri']}")
    assert conflict.status_code == 409
    assert "ip_allowlist:1.0-beta" in conflict.json()["message"]


def test_second_upload_of_one_uri_conflicts_and_stores_nothing(clients, tmp_path):
    assert upload(clients["author"], b"one").status_code == 201
    response = upload(clients["author"], b"two")
    assert response.status_code == 409
    assert Asset.objects.count() == 1
    stored = [p for p in (tmp_path / "assets").rglob("*") if p.is_file()]
    assert len(stored) == 1


@pytest.mark.parametrize("meta,field_name", [
    ("not json", "asset_metadata"),
    ([1, 2], "asset_metadata"),
    ({"asset_version": {"version": "1.0", "tag": "b"}}, "asset_metadata"),
    ({**META, "asset_name": "bad name"}, "asset_name"),
    ({**META, "asset_version": {"version": "1-0", "tag": "beta"}}, "asset_version.version"),
    ({**META, "extra": 1}, "asset_metadata.extra"),
])
def test_malformed_metadata_is_400_and_stores_nothing(clients, meta, field_name, tmp_path):
    raw = meta if isinstance(meta, str) else json.dumps(meta)
    response = clients["author"].post("/upload_asset", {"asset": SimpleUploadedFile("a.zip", b"x"), "asset_metadata": raw},
                                      format="multipart")
    assert response.status_code == 400, response.content
    assert field_name in response.json()["errors"], response.json()
    assert not Asset.objects.exists()
    assert not (tmp_path / "assets").exists() or not any((tmp_path / "assets").rglob("*.zip"))


def test_upload_without_a_file_is_400(clients):
    response = clients["author"].post("/upload_asset", {"asset_metadata": json.dumps(META)}, format="multipart")
    assert response.status_code == 400
    assert "asset" in response.json()["errors"]


def test_upload_needs_the_author_role_and_a_token(clients, anon):
    assert upload(anon, b"x").status_code == 401
    assert upload(clients["viewer"], b"x").status_code == 403
    assert upload(clients["operator"], b"x").status_code == 403


def test_upload_as_json_is_415(clients):
    response = clients["author"].post("/upload_asset", META, format="json")
    assert response.status_code == 415


def test_oversized_upload_is_413(clients, settings):
    settings.API_MAX_UPLOAD_BYTES = 1000
    response = upload(clients["author"], b"x" * 5000)
    assert response.status_code == 413
    assert not Asset.objects.exists()


def test_delete_removes_record_and_bytes(clients, tmp_path, django_capture_on_commit_callbacks):
    body = upload(clients["author"], b"bytes").json()
    with django_capture_on_commit_callbacks(execute=True):
        response = clients["author"].delete(f"/asset/{body['asset_uri']}")
    assert response.status_code == 200
    assert not Asset.objects.exists()
    assert not [p for p in (tmp_path / "assets").rglob("*") if p.is_file()]


@pytest.fixture
def moto_s3():
    """A moto S3 server on loopback, with a bucket; yields its endpoint."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                 region_name="us-east-1").create_bucket(Bucket="policygrid-assets")
    yield endpoint
    server.stop()


def test_assets_are_stored_in_s3_through_boto3(clients, settings, moto_s3, sample_package, policy_payload):
    import boto3
    from django.core.files.storage import storages

    settings.STORAGES = {**settings.STORAGES, "assets": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": "policygrid-assets", "endpoint_url": moto_s3, "access_key": "test", "secret_key": "test",
        "region_name": "us-east-1", "location": "assets", "file_overwrite": False, "default_acl": None}}}
    storages._storages = {}
    storages._backends = None
    body = upload(clients["author"], sample_package[2]).json()
    s3 = boto3.client("s3", endpoint_url=moto_s3, aws_access_key_id="test", aws_secret_access_key="test",
                      region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="policygrid-assets")["Contents"]]
    assert keys == [f"assets/{body['asset_id']}/ip-allow-list-checker.zip"]
    stored = s3.get_object(Bucket="policygrid-assets", Key=keys[0])["Body"].read()
    assert stored == sample_package[2]
    downloaded = clients["viewer"].get(f"/asset-object/{body['asset_id']}")
    assert b"".join(downloaded.streaming_content) == sample_package[2]
    # Registration reads the portal's own asset from storage (no HTTP round trip to itself).
    assert clients["author"].post("/policy", policy_payload(code=body["public_url"]), format="json").status_code == 201
