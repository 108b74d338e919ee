"""The one runtime interface of jobs and functions (docs/runtime.md §6), chosen per executor by ``executor_runtime``.

Jobs and functions reach a runtime only through ``runtime_for(executor)``: ``local`` is the executor service's
own supervised processes (``POST /jobs``, ``POST /functions`` etc. on the service, authorised like
``execute_policy``: the executor's credential, the record, its release and a signed execution grant);
``kubernetes`` creates cluster objects with the same methods.

Calls, management commands and logs of a function go through the executor service in both runtimes
(``POST /functions/<name>/call`` and so on: the service reaches the replicas beside it, local processes or the
pods behind the function's Service), so ``Runtime`` implements them once; a runtime overrides how a function is
deployed, removed and observed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from django.conf import settings
from policygrid.errors import PolicyGridError, Unavailable
from policygrid.wire import ExecuteRequest, execute_with_upload, executor_result

from executors.choices import ExecutorRuntime
from executors.cluster import functions as cluster_functions
from executors.cluster import jobs as cluster_jobs
from executors.models import PolicyExecutor
from executors.services import execution_body, executor_channel, package_reader, require_address
from policies.models import PolicyRule


class RuntimeNotBuilt(PolicyGridError):
    """A runtime operation that this deployment does not have yet: 501, naming it."""

    error_type = "not_implemented"
    status = 501


@dataclass(frozen=True)
class JobLaunch:
    """What a runtime needs to start one job: its id and result token, the policy and the call."""

    job_id: str
    name: str
    token: str  # the job's own secret, for its runner's result post only (shown to nobody else)
    policy: PolicyRule
    call: ExecuteRequest  # input_data, parameters, settings (the caller's overrides), timeout_seconds, dry_run
    node_selector: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RuntimeJob:
    """A job as its runtime sees it. ``state``: queued, running, exited (``exit_code``, ``signal``, ``reason``)
    or cancelled."""

    state: str
    exit_code: int | None = None
    signal: str | None = None
    reason: str = ""
    node: str = ""

    @property
    def finished(self) -> bool:
        return self.state in ("exited", "cancelled")

    @classmethod
    def from_answer(cls, data: Any) -> RuntimeJob:
        if not isinstance(data, dict) or not isinstance(data.get("state"), str):
            raise Unavailable("the runtime answered a job's status without a state")
        return cls(state=data["state"], exit_code=data.get("exit_code"), signal=data.get("signal"),
                   reason=str(data.get("reason") or ""), node=str(data.get("node") or ""))


@dataclass(frozen=True)
class FunctionDeployment:
    """What a runtime needs to deploy one function: its name, the policy, the caller's overrides, the shape."""

    name: str  # the function's DNS-1123 name (function_id): unique per deployment
    policy: PolicyRule
    settings: dict[str, Any] = field(default_factory=dict)  # the caller's overrides: they win key by key
    parameters: dict[str, Any] = field(default_factory=dict)
    replicas: int = 1
    autoscaling: dict[str, Any] = field(default_factory=dict)  # {"enabled", "min_replicas", "max_replicas", …}
    resources: dict[str, Any] = field(default_factory=dict)
    node_selector: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RuntimeFunction:
    """A function as its runtime sees it. ``state``: deploying (no replica ready yet), ready (at least one
    replica serves calls), failed (none can: ``message`` says why). ``replicas``: one dict per replica,
    ``{"replica", "state" (starting|ready|restarting|failed), "restarts", "message"}``."""

    state: str
    replicas: tuple[dict[str, Any], ...] = ()
    message: str = ""

    @property
    def ready_replicas(self) -> int:
        return sum(1 for replica in self.replicas if replica.get("state") == "ready")

    @classmethod
    def from_answer(cls, data: Any) -> RuntimeFunction:
        if not isinstance(data, dict) or not isinstance(data.get("state"), str):
            raise Unavailable("the runtime answered a function's status without a state")
        replicas = data.get("replicas") if isinstance(data.get("replicas"), list) else []
        return cls(state=data["state"], replicas=tuple(r for r in replicas if isinstance(r, dict)),
                   message=str(data.get("message") or ""))


class Runtime:
    """The interface. Every method takes the executor it acts on; failures are ``PolicyGridError``s."""

    name = ""

    def launch_job(self, executor: PolicyExecutor, launch: JobLaunch) -> RuntimeJob:
        raise NotImplementedError

    def cancel_job(self, executor: PolicyExecutor, job_id: str) -> None:
        raise NotImplementedError

    def job_status(self, executor: PolicyExecutor, job_id: str) -> RuntimeJob | None:
        """The job's state, or None when the runtime doesn't know it (never launched, or forgotten)."""
        raise NotImplementedError

    def job_logs(self, executor: PolicyExecutor, job_id: str, tail: int | None = None) -> str:
        raise NotImplementedError

    # --- Type 4: how a function is deployed, removed and observed (per runtime) ----------------------------

    def deploy_function(self, executor: PolicyExecutor, deployment: FunctionDeployment) -> RuntimeFunction:
        """Start deploying; returns at once (state ``deploying``, or ``ready`` if it already is)."""
        raise self._not_built("deploying functions")

    def remove_function(self, executor: PolicyExecutor, name: str) -> None:
        """Stop every replica and remove what the deployment made; a function the runtime doesn't know is gone."""
        raise self._not_built("removing functions")

    def function_status(self, executor: PolicyExecutor, name: str) -> RuntimeFunction | None:
        """The function's state, or None when the runtime doesn't know it."""
        raise self._not_built("function status")

    # --- Type 4: calls, management and logs (through the executor service, in every runtime) ---------------

    def call_function(self, executor: PolicyExecutor, name: str, input_data: Any,
                      timeout: float | None = None) -> Any:
        """The policy's ``eval`` output from one replica; failures as ``PolicyGridError`` (the Type 2 mapping)."""
        body = json.dumps({"input_data": input_data, **({"timeout_seconds": timeout} if timeout else {})}).encode()
        read_timeout = (timeout or settings.EXECUTOR_CALL_TIMEOUT) + settings.EXECUTOR_TIMEOUT_MARGIN
        status, answer = self._send(executor, "POST", f"/functions/{quote(name)}/call", body, read_timeout)
        return executor_result(status, answer, executor.executor_id)

    def manage_function(self, executor: PolicyExecutor, name: str, action: str, data: Any = None,
                        target: str = "all") -> list[dict[str, Any]]:
        """Run ``management(action, data)`` on every ready replica (``all``) or one; one result per replica:
        ``{"replica", "success", "data"}`` or ``{"replica", "success": false, "error_type", "message"}``."""
        body = json.dumps({"action": action, "data": data, "target": target}).encode()
        read_timeout = settings.EXECUTOR_CALL_TIMEOUT + settings.EXECUTOR_TIMEOUT_MARGIN
        status, answer = self._send(executor, "POST", f"/functions/{quote(name)}/management", body, read_timeout)
        results = executor_result(status, answer, executor.executor_id)
        if not isinstance(results, list):
            raise Unavailable(f"executor {executor.executor_id} answered a management command without results")
        return results

    def function_logs(self, executor: PolicyExecutor, name: str, tail: int | None = None) -> str:
        path = f"/functions/{quote(name)}/logs" + (f"?tail={int(tail)}" if tail is not None else "")
        status, answer = self._send(executor, "GET", path)
        if status == 404:
            return ""
        text = executor_result(status, answer, executor.executor_id)
        return text if isinstance(text, str) else json.dumps(text)

    @staticmethod
    def _send(executor: PolicyExecutor, method: str, path: str, data: bytes | None = None,
              read_timeout: float | None = None) -> tuple[int, Any]:
        require_address(executor)
        timeout = read_timeout or settings.EXECUTOR_PROBE_TIMEOUT + settings.EXECUTOR_TIMEOUT_MARGIN
        return executor_channel(executor, timeout)(method, path, data)

    def _not_built(self, what: str) -> RuntimeNotBuilt:
        return RuntimeNotBuilt(f"{what} on the {self.name} runtime is not built yet")


class LocalRuntime(Runtime):
    """The executor service's supervised processes (``policygrid.executor.jobs``), over its HTTP API."""

    name = ExecutorRuntime.LOCAL

    def launch_job(self, executor: PolicyExecutor, launch: JobLaunch) -> RuntimeJob:
        require_address(executor)
        body = {**execution_body(launch.policy, launch.call, f"job:{launch.job_id}"),
                "job": {"job_id": launch.job_id, "token": launch.token}}
        send = executor_channel(executor, settings.EXECUTOR_CALL_TIMEOUT + settings.EXECUTOR_TIMEOUT_MARGIN)
        data = execute_with_upload(send, body, package_reader(executor, launch.policy), executor.executor_id,
                                   path="/jobs")
        return RuntimeJob.from_answer(data)

    def cancel_job(self, executor: PolicyExecutor, job_id: str) -> None:
        status, answer = self._send(executor, "DELETE", f"/jobs/{quote(job_id)}")
        if status != 404:  # a job the service never knew (or forgot) has nothing left to kill
            executor_result(status, answer, executor.executor_id)

    def job_status(self, executor: PolicyExecutor, job_id: str) -> RuntimeJob | None:
        status, answer = self._send(executor, "GET", f"/jobs/{quote(job_id)}")
        if status == 404:
            return None
        return RuntimeJob.from_answer(executor_result(status, answer, executor.executor_id))

    def job_logs(self, executor: PolicyExecutor, job_id: str, tail: int | None = None) -> str:
        path = f"/jobs/{quote(job_id)}/logs" + (f"?tail={int(tail)}" if tail is not None else "")
        status, answer = self._send(executor, "GET", path)
        if status == 404:
            return ""
        text = executor_result(status, answer, executor.executor_id)
        return text if isinstance(text, str) else json.dumps(text)

    def deploy_function(self, executor: PolicyExecutor, deployment: FunctionDeployment) -> RuntimeFunction:
        require_address(executor)
        policy = deployment.policy
        call = ExecuteRequest(policy_rule_uri=policy.policy_rule_uri, input_data=None,
                              settings=deployment.settings or None, parameters=deployment.parameters or None)
        body = {**execution_body(policy, call, f"function:{deployment.name}"),
                "function": {"name": deployment.name, "replicas": deployment.replicas}}
        send = executor_channel(executor, settings.EXECUTOR_CALL_TIMEOUT + settings.EXECUTOR_TIMEOUT_MARGIN)
        data = execute_with_upload(send, body, package_reader(executor, policy), executor.executor_id,
                                   path="/functions")
        return RuntimeFunction.from_answer(data)

    def remove_function(self, executor: PolicyExecutor, name: str) -> None:
        status, answer = self._send(executor, "DELETE", f"/functions/{quote(name)}")
        if status != 404:
            executor_result(status, answer, executor.executor_id)

    def function_status(self, executor: PolicyExecutor, name: str) -> RuntimeFunction | None:
        status, answer = self._send(executor, "GET", f"/functions/{quote(name)}")
        if status == 404:
            return None
        return RuntimeFunction.from_answer(executor_result(status, answer, executor.executor_id))


class KubernetesRuntime(Runtime):
    """A ``batch/v1 Job`` per job in the executor's cluster (``executors.cluster.jobs``: the runner as its
    container command, its spec and token in a Secret); a function is a Deployment + Service (+ HPA) of the
    function server (``executors.cluster.functions``). Reached with the credentials create-infra stored."""

    name = ExecutorRuntime.KUBERNETES

    def launch_job(self, executor: PolicyExecutor, launch: JobLaunch) -> RuntimeJob:
        return RuntimeJob.from_answer(cluster_jobs.launch_job(executor, launch))

    def cancel_job(self, executor: PolicyExecutor, job_id: str) -> None:
        cluster_jobs.cancel_job(executor, job_id)

    def job_status(self, executor: PolicyExecutor, job_id: str) -> RuntimeJob | None:
        seen = cluster_jobs.job_status(executor, job_id)
        return RuntimeJob.from_answer(seen) if seen is not None else None

    def job_logs(self, executor: PolicyExecutor, job_id: str, tail: int | None = None) -> str:
        return cluster_jobs.job_logs(executor, job_id, tail)

    def deploy_function(self, executor: PolicyExecutor, deployment: FunctionDeployment) -> RuntimeFunction:
        call = ExecuteRequest(policy_rule_uri=deployment.policy.policy_rule_uri, input_data=None,
                              settings=deployment.settings or None, parameters=deployment.parameters or None)
        return RuntimeFunction.from_answer(cluster_functions.deploy_function(executor, deployment, call))

    def remove_function(self, executor: PolicyExecutor, name: str) -> None:
        cluster_functions.remove_function(executor, name)

    def function_status(self, executor: PolicyExecutor, name: str) -> RuntimeFunction | None:
        seen = cluster_functions.function_status(executor, name)
        return RuntimeFunction.from_answer(seen) if seen is not None else None


RUNTIMES: dict[str, Runtime] = {runtime.name: runtime for runtime in (LocalRuntime(), KubernetesRuntime())}


def runtime_for(executor: PolicyExecutor) -> Runtime:
    """The runtime of ``executor`` (its ``executor_runtime``)."""
    runtime = RUNTIMES.get(executor.executor_runtime)
    if runtime is None:
        raise RuntimeNotBuilt(f"executor {executor.executor_id} has runtime {executor.executor_runtime!r}, "
                              f"which this deployment does not have (it has {', '.join(sorted(RUNTIMES))})")
    return runtime
