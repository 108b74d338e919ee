"""Shared fixtures: users of every role with tokens, authenticated API clients, sample records."""
import pytest


@pytest.fixture(autouse=True)
def _loopback_packages(settings, tmp_path_factory):
    """Tests serve packages from loopback servers they start, so the SSRF guard is relaxed for them.

    The guard itself is tested in tests/sdk with the setting off.
    """
    settings.PACKAGE_ALLOW_PRIVATE_NETWORKS = True
    # Password hashing is deliberately slow; tests create many users and need no protection.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.PACKAGE_CACHE_DIR = tmp_path_factory.getbasetemp() / "package-cache"


@pytest.fixture(autouse=True)
def _own_cache(settings, tmp_path):
    """Each test has its own cache, as it has its own database: a record cached by one test (records/cache.py)
    is never served to another, nor to a portal running from the same state folder."""
    settings.CACHES = {"default": {"BACKEND": "records.cache_backends.FileCache",
                                   "LOCATION": str(tmp_path / "django-cache")}}

ROLES = ("viewer", "author", "reviewer", "operator", "admin")


@pytest.fixture
def make_user(db):
    from django.contrib.auth.models import Group, User

    def make(username: str, *roles: str, superuser: bool = False, password: str = "pw-for-tests-1"):
        user = User.objects.create_user(username=username, password=password, is_superuser=superuser,
                                        is_staff=superuser or "admin" in roles)
        for role in roles:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def token_for(db):
    from accounts.services import issue_token

    def issue(user) -> str:
        return issue_token(user, name="tests")[1]

    return issue


@pytest.fixture
def client_for(token_for):
    """An APIClient authenticated with a fresh token of ``user``."""
    from rest_framework.test import APIClient

    def make(user):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
        return client

    return make


@pytest.fixture
def anon():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def users(make_user):
    """One user per role, plus a user with no role."""
    made = {role: make_user(f"{role}-user", role) for role in ROLES}
    made["norole"] = make_user("norole-user")
    return made


@pytest.fixture
def clients(users, client_for):
    return {name: client_for(user) for name, user in users.items()}


@pytest.fixture
def api(clients):
    """The admin role's client: for tests that are not about permissions."""
    return clients["admin"]


@pytest.fixture(scope="session")
def file_server():
    """A loopback HTTP server in a thread (tests/fileserver.py); ``serve(name, data)`` returns the URL of the bytes."""
    from tests.fileserver import FileServer

    with FileServer() as server:
        yield server


@pytest.fixture(scope="session")
def sample_package(file_server):
    """The sample ip_allowlist package served on loopback: (url, sha256 digest, bytes)."""
    import hashlib

    from policygrid.samples import sample_archive

    data = sample_archive("ip_allowlist")
    url = file_server.serve("ip_allowlist.zip", data)
    return url, "sha256:" + hashlib.sha256(data).hexdigest(), data


@pytest.fixture(scope="session")
def sample_record():
    """The description's ip_allowlist record (loopback-safe: no remote allowlist)."""
    from policygrid.samples import sample_record as load

    return load("ip_allowlist")


@pytest.fixture
def policy_payload(sample_package, sample_record):
    """Returns a create body for policy ``name:version-tag`` whose code is the served sample package."""

    def make(name="ip_allowlist", version="1.0", release_tag="beta", **overrides):
        body = {key: value for key, value in sample_record.items() if key != "policy_rule_uri"}
        body.update(name=name, version=version, release_tag=release_tag, code=sample_package[0])
        body.update(overrides)
        return body

    return make
