"""Fixtures of the API checks."""
import pytest


@pytest.fixture
def ctx(sample_package, policy_payload):
    return {"package_url": sample_package[0], "policy_payload": policy_payload}
