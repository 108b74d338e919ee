"""`LocalPolicyEvaluator`: the earlier SDK's entry point (Type 1 local runs, Type 2 remote runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .cache import PackageCache
from .client import PortalClient
from .context import MemoryContext
from .errors import InputInvalid, NotExecutable
from .fetch import FetchOptions
from .loader import load_rule_class
from .package import PackageInfo, load_record_package
from .requirements import ensure_requirements
from .rule_runner import PolicyRunner
from .workers import IsolatedRunner, IsolationLimits

MODES = ("local", "remote")


class LocalPolicyEvaluator:
    """Run one policy for the lifetime of this object.

    `mode="local"` (Type 1) reads the record from the portal (`portal_url`/`token`, else `POLICYGRID_URL` /
    `POLICY_SYSTEM_URL` and `POLICYGRID_TOKEN`), loads the package through the cache and keeps ONE instance of
    the policy for every call, so a stateful policy keeps its state. With `isolate=True` that instance lives in a
    child process with resource limits and a per-call timeout. `mode="remote"` (Type 2) sends each call to
    `executor_id` through the portal; it is stateless, so management commands are refused.

    `record` may be passed instead of reading it from the portal (tests, offline tools).
    `verify_signatures` (default: the `POLICYGRID_VERIFY_SIGNATURES` environment variable) checks the release
    signature against `signing_keys` (default: the portal's `GET /keys`) before loading.
    """

    def __init__(
        self,
        policy_rule_uri: str,
        parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        mode: str = "local",
        executor_id: str | None = None,
        portal_url: str | None = None,
        token: str | None = None,
        isolate: bool = False,
        cache_dir: Path | str | None = None,
        fetch_options: FetchOptions | None = None,
        validate: bool = True,
        *,
        record: dict[str, Any] | None = None,
        isolation_limits: IsolationLimits | None = None,
        client: PortalClient | None = None,
        verify_signatures: bool | None = None,
        signing_keys: Any = None,
    ) -> None:
        if mode not in MODES:
            raise InputInvalid(f"mode must be 'local' or 'remote', not {mode!r}", errors={"mode": ["unknown mode"]})
        self.policy_rule_uri = policy_rule_uri
        self.parameters = parameters
        self.settings = settings
        self.mode = mode
        self.executor_id = executor_id
        self.package: PackageInfo | None = None
        self._runner: PolicyRunner | IsolatedRunner | None = None

        if mode == "remote":
            if not executor_id:
                raise InputInvalid("remote mode needs an executor_id", errors={"executor_id": ["required"]})
            self.client = client or PortalClient(portal_url, token)
            self.record = record
            return

        self.client = client if client is not None else (None if record is not None else PortalClient(portal_url, token))
        self.record = record if record is not None else self.client.get_policy(policy_rule_uri)
        if fetch_options is None:
            fetch_options = self.client.fetch_options() if self.client is not None else FetchOptions()
        cache = PackageCache(cache_dir) if cache_dir is not None else PackageCache()
        self.package = load_record_package(self.record, options=fetch_options, cache=cache, client=self.client,
                                           verify=verify_signatures, keys=signing_keys)
        requirements_dir = ensure_requirements(self.package.path, root=cache.root / "requirements")
        if isolate:
            self._runner = IsolatedRunner(
                self.package.path, requirements_dir, self.record, settings, parameters, validate, isolation_limits
            )
        else:
            rule_class = load_rule_class(self.package.path, requirements_dir)
            self._runner = PolicyRunner(self.record, rule_class, settings, parameters, MemoryContext(), validate)
        # Calls go straight to the runner: one Python call layer less on the per-call hot path.
        self.execute_policy_rule = self._runner.eval  # type: ignore[method-assign]

    @property
    def runner(self) -> PolicyRunner | IsolatedRunner | None:
        return self._runner

    def execute_policy_rule(self, input_data: Any) -> Any:
        """The policy's `eval` output; failures raise the PolicyGridError subclass of their `error_type`."""
        if self._runner is not None:
            return self._runner.eval(input_data)
        return self.client.execute_policy(
            self.executor_id, self.policy_rule_uri, input_data, self.parameters, self.settings
        )

    def execute_mgmt_command(self, action: str, data: dict[str, Any] | None = None) -> Any:
        if self._runner is None:
            raise NotExecutable(
                "management commands need a stateful instance, and remote mode (Type 2) is stateless: a fresh instance per "
                "call. Use mode='local', or deploy the policy as a function and call /function/<name>/management",
                errors={"mode": ["management commands are not available in remote mode"]},
            )
        return self._runner.management(action, data)

    def close(self) -> None:
        if isinstance(self._runner, IsolatedRunner):
            self._runner.close()

    def __enter__(self) -> LocalPolicyEvaluator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
