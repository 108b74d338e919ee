"""Fixtures of the Kubernetes tests: fake clusters on loopback (tests/kubernetes/fakecluster.py)."""
from __future__ import annotations

import socket

import pytest

from tests.kubernetes.fakecluster import FakeCluster

# The executor pods' service, as the fake's kubelet runs it: one worker each on this shared two-core machine
# (the value an operator would set in the Deployment's environment; the fake's node adds it).
POD_ENV = {"POLICYGRID_EXECUTOR_WORKERS": "1"}


def closed_port() -> int:
    """A loopback port nothing listens on: the portal address of tests that need none."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def cluster():
    fake = FakeCluster("alpha", extra_env=POD_ENV)
    yield fake
    fake.stop()


@pytest.fixture
def second_cluster():
    fake = FakeCluster("beta", extra_env=POD_ENV)
    yield fake
    fake.stop()


@pytest.fixture
def kube_settings(settings, tmp_path):
    """A key store of the test's own (the kubeconfig key is generated there) and an image name."""
    settings.SIGNING_KEY_DIR = tmp_path / "keys"
    settings.KUBECONFIG_KEYS = []
    settings.KUBERNETES_IMAGE = "policygrid/dataplane:test"
    return settings
