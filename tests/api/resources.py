"""Every resource described once (a ``Resource``), for the API checks applied to each in test_resources*.py."""
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Resource:
    name: str
    path: str
    key_field: str
    # Builds the n-th record through the ORM (for resources the API does not create directly).
    make: Callable
    # Builds the n-th create body, or None when POST /<path> is not how this resource is created.
    payload: Callable | None = None
    update_field: str = ""
    update_value: object = None
    invalid_identity: list = field(default_factory=list)
    write_role: str = "author"
    updatable: bool = True


def _policy(n, ctx):
    from policies.models import PolicyRule

    return PolicyRule.objects.create(
        name=f"pol{n}", version="1.0", release_tag="beta", code=ctx["package_url"],
        metadata={"n": n, "team": "net" if n % 2 else "ops"}, tags="network,security",
    )


def _executor(n, ctx):
    from executors.models import PolicyExecutor

    return PolicyExecutor.objects.create(
        executor_id=f"exec-{n}", executor_host_uri=f"http://127.0.0.1:{9000 + n}",
        executor_hardware_info={"vcpus": {"count": 8 * (n + 1)}}, executor_metadata={"tags": ["amd_64"]},
    )


def _function(n, ctx):
    from functions.models import Function

    return Function.objects.create(
        function_id=f"fn-{n}", function_executor_id="exec-0", function_policy_rule_uri="pol0:1.0-beta",
        function_tags=["network", f"t{n}"],
    )


def _graph(n, ctx):
    from graphs.models import Graph

    for fid in ("fa", "fb"):
        _function_named(fid)
    return Graph.objects.create(
        graph_name=f"g{n}", graph_version="1.0", graph_release_tag="stable",
        graph_function_ids=["fa", "fb"], graph_connection_data={"fa": ["fb"]}, graph_search_tags=["ip"],
    )


def _function_named(fid):
    from functions.models import Function

    Function.objects.get_or_create(
        function_id=fid, defaults={"function_executor_id": "exec-0", "function_policy_rule_uri": "pol0:1.0-beta"}
    )


def _job(n, ctx):
    from jobs.models import Job

    return Job.objects.create(job_name=f"job-{n}", job_policy_rule_uri="pol0:1.0-beta",
                              job_executor_id="exec-0", job_inputs={"ip": f"10.0.0.{n}"}, job_status="completed")


def _asset(n, ctx):
    from policies.models import Asset

    return Asset.objects.create(asset_name=f"asset{n}", asset_version={"version": "1.0", "tag": "beta"},
                                asset_tags=["policy"], public_url=f"http://127.0.0.1/asset-object/{n}")


def _policy_payload(n, ctx):
    return ctx["policy_payload"](name=f"new{n}", version="2.0", release_tag="rc")


def _executor_payload(n, ctx):
    return {"executor_id": f"new-exec-{n}", "executor_host_uri": "http://127.0.0.1:9999",
            "executor_hardware_info": {"vcpus": {"count": 4}}}


def _graph_payload(n, ctx):
    for fid in ("fa", "fb", "fc"):
        _function_named(fid)
    return {"graph_name": f"newg{n}", "graph_version": "1.0", "graph_release_tag": "stable",
            "graph_function_ids": ["fa", "fb", "fc"], "graph_connection_data": {"fa": ["fb", "fc"]}}


RESOURCES = [
    Resource("policy", "/policy", "policy_rule_uri", _policy, _policy_payload, "description", "changed",
             [("name", "bad name"), ("name", ""), ("version", "1-0"), ("version", "1:0"),
              ("release_tag", "-beta"), ("release_tag", "x" * 101)]),
    Resource("executor", "/executor", "executor_id", _executor, _executor_payload,
             "executor_metadata", {"tags": ["x"]},
             [("executor_id", "Exec_1"), ("executor_id", "-exec"), ("executor_id", "a" * 64)], write_role="operator"),
    Resource("graph", "/graphs", "graph_uri", _graph, _graph_payload, "graph_description", "changed",
             [("graph_name", "bad/name"), ("graph_version", "1-0"), ("graph_release_tag", "")]),
    Resource("function", "/function", "function_id", _function, None, "function_tags", ["changed"],
             write_role="operator"),
    Resource("job", "/jobs", "job_id", _job, None, write_role="operator", updatable=False),
    Resource("asset", "/asset", "asset_uri", _asset, None, "asset_tags", ["changed"]),
]
CREATABLE = [r for r in RESOURCES if r.payload]
UPDATABLE = [r for r in RESOURCES if r.updatable]


def ids(resources):
    return [r.name for r in resources]


def key_of(resource, record):
    return str(getattr(record, resource.key_field))


def assert_error(response, status):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False
    assert isinstance(body["message"], str) and body["message"]
    return body
