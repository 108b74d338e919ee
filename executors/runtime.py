"""The one runtime interface of jobs and functions (docs/runtime.md §6), chosen per executor by ``executor_runtime``.

Jobs (and, later, functions) reach a runtime only through ``runtime_for(executor)``: ``local`` is the executor
service's own supervised processes (``POST /jobs`` etc. on the service, authorised like ``execute_policy``: the
executor's credential, the record, its release and a signed execution grant); ``kubernetes`` plugs in here with
the same methods. The function methods are declared now so that Type 4 and the Kubernetes runtime fit without
changing the callers; until they are built they answer ``RuntimeNotBuilt`` (501).
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

    # Type 4 (functions) and its call routing: declared, built with the functions.
    def deploy_function(self, executor: PolicyExecutor, deployment: Any) -> Any:
        raise self._not_built("deploying functions")

    def remove_function(self, executor: PolicyExecutor, name: str) -> None:
        raise self._not_built("removing functions")

    def function_status(self, executor: PolicyExecutor, name: str) -> Any:
        raise self._not_built("function status")

    def function_logs(self, executor: PolicyExecutor, name: str, tail: int | None = None) -> str:
        raise self._not_built("function logs")

    def call_function(self, executor: PolicyExecutor, name: str, input_data: Any) -> Any:
        raise self._not_built("calling functions")

    def manage_function(self, executor: PolicyExecutor, name: str, command: dict[str, Any]) -> Any:
        raise self._not_built("function management")

    def _not_built(self, what: str) -> RuntimeNotBuilt:
        return RuntimeNotBuilt(f"{what} on the {self.name} runtime is not built yet")


class LocalRuntime(Runtime):
    """The executor service's supervised processes (``policygrid.executor.jobs``), over its HTTP API."""

    name = ExecutorRuntime.LOCAL

    def launch_job(self, executor: PolicyExecutor, launch: JobLaunch) -> RuntimeJob:
        require_address(executor)
        body = {**execution_body(launch.policy, launch.call), "job": {"job_id": launch.job_id, "token": launch.token}}
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

    @staticmethod
    def _send(executor: PolicyExecutor, method: str, path: str) -> tuple[int, Any]:
        require_address(executor)
        return executor_channel(executor, settings.EXECUTOR_PROBE_TIMEOUT + settings.EXECUTOR_TIMEOUT_MARGIN)(
            method, path, None)


class KubernetesRuntime(Runtime):
    """A ``batch/v1 Job`` per job, the runner as its container command (``python -m policygrid.job``): its own
    issue. Until then every operation answers 501 naming it."""

    name = ExecutorRuntime.KUBERNETES

    def launch_job(self, executor: PolicyExecutor, launch: JobLaunch) -> RuntimeJob:
        raise self._not_built("running jobs")

    def cancel_job(self, executor: PolicyExecutor, job_id: str) -> None:
        raise self._not_built("cancelling jobs")

    def job_status(self, executor: PolicyExecutor, job_id: str) -> RuntimeJob | None:
        raise self._not_built("job status")

    def job_logs(self, executor: PolicyExecutor, job_id: str, tail: int | None = None) -> str:
        raise self._not_built("job logs")


RUNTIMES: dict[str, Runtime] = {runtime.name: runtime for runtime in (LocalRuntime(), KubernetesRuntime())}


def runtime_for(executor: PolicyExecutor) -> Runtime:
    """The runtime of ``executor`` (its ``executor_runtime``)."""
    runtime = RUNTIMES.get(executor.executor_runtime)
    if runtime is None:
        raise RuntimeNotBuilt(f"executor {executor.executor_id} has runtime {executor.executor_runtime!r}, "
                              f"which this deployment does not have (it has {', '.join(sorted(RUNTIMES))})")
    return runtime
