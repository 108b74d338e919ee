"""`LocalPolicyEvaluator`: the earlier SDK's entry point (Type 1 local runs, Type 2 remote runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .cache import PackageCache
from .client import PortalClient
from .context import MemoryContext
from .environment import env
from .errors import InputInvalid, NotExecutable
from .fetch import FetchOptions
from .lifecycle import check_runnable
from .loader import load_rule_class
from .package import PackageInfo, load_record_package
from .requirements import ensure_requirements
from .rule_runner import PolicyRunner
from .signing import type1_verification
from .workers import IsolatedRunner, IsolationLimits

MODES = ("local", "remote")


class LocalPolicyEvaluator:
    """Run one policy for the lifetime of this object.

    `mode="local"` (Type 1) reads the record from the portal (`portal_url`/`token`, else `POLICYGRID_URL` and
    `POLICYGRID_TOKEN`), loads the package through the cache and keeps ONE instance of the policy for every call,
    so a stateful policy keeps its state. With `isolate=True` that instance lives in a child process with
    resource limits and a per-call timeout. `mode="remote"` (Type 2) sends each call to `executor_id` through
    the portal (or, with no executor id, straight to the executor service at `POLICYGRID_EXECUTOR_URL` with
    `POLICYGRID_EXECUTOR_TOKEN`); it is stateless, so management commands are refused. `mode` and `executor_id`
    default to `POLICYGRID_EXECUTION_MODE` and `POLICYGRID_EXECUTOR_ID`; the earlier SDK's names are aliases
    (`policygrid.environment`).

    Only versions the portal would run, run (`policygrid.lifecycle`): approved and deprecated ones; a draft or
    a version in review only with `dry_run=True`; a retired one never.

    `record` may be passed instead of reading it from the portal (tests, offline tools). `custom_class` (the
    earlier SDK's argument) is a policy class to run instead of the package's, with the record's schemas,
    settings and parameters; the package is then not loaded. `verify_signatures` (default: the
    `POLICYGRID_VERIFY_SIGNATURES` environment variable when set, else on whenever the portal publishes keys)
    checks the release signature against `signing_keys` (default: the portal's `GET /keys`) before loading.
    """

    def __init__(
        self,
        policy_rule_uri: str,
        parameters: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        mode: str | None = None,
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
        custom_class: type | None = None,
        dry_run: bool = False,
    ) -> None:
        mode = mode or env("POLICYGRID_EXECUTION_MODE", "local")
        if mode not in MODES:
            raise InputInvalid(f"mode must be 'local' or 'remote', not {mode!r}", errors={"mode": ["unknown mode"]})
        self.policy_rule_uri = policy_rule_uri
        self.parameters = parameters
        self.settings = settings
        self.mode = mode
        self.executor_id = executor_id or env("POLICYGRID_EXECUTOR_ID")
        self.dry_run = dry_run
        self.package: PackageInfo | None = None
        self._runner: PolicyRunner | IsolatedRunner | None = None

        if mode == "remote":
            self.record = record
            if self.executor_id:
                self.client = client or PortalClient(portal_url, token)
            elif env("POLICYGRID_EXECUTOR_URL"):
                # The earlier SDK's remote mode called the executor service itself.
                self.client = client or PortalClient(env("POLICYGRID_EXECUTOR_URL"), env("POLICYGRID_EXECUTOR_TOKEN"),
                                                     auth_scheme="Bearer")
            else:
                raise InputInvalid("remote mode needs an executor_id (or POLICYGRID_EXECUTOR_ID), or the executor "
                                   "service's address in POLICYGRID_EXECUTOR_URL", errors={"executor_id": ["required"]})
            return

        self.client = client if client is not None else (None if record is not None else PortalClient(portal_url, token))
        self.record = record if record is not None else self.client.get_policy(policy_rule_uri)
        check_runnable(self.record, dry_run=dry_run)
        if custom_class is not None:
            if isolate:
                raise InputInvalid("custom_class runs in this process: it can't be combined with isolate=True",
                                   errors={"custom_class": ["not with isolate=True"]})
            self._runner = PolicyRunner(self.record, custom_class, settings, parameters, MemoryContext(), validate)
            self.execute_policy_rule = self._runner.eval  # type: ignore[method-assign]
            return
        if fetch_options is None:
            fetch_options = self.client.fetch_options() if self.client is not None else FetchOptions()
        verify, keys = type1_verification(verify_signatures, signing_keys, self.client)
        cache = PackageCache(cache_dir) if cache_dir is not None else PackageCache()
        self.package = load_record_package(self.record, options=fetch_options, cache=cache, client=self.client,
                                           verify=verify, keys=keys)
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
        if not self.executor_id:
            return self.client.execute_policy_directly(self.policy_rule_uri, input_data, self.parameters,
                                                       self.settings)
        return self.client.execute_policy(
            self.executor_id, self.policy_rule_uri, input_data, self.parameters, self.settings, dry_run=self.dry_run
        )

    def execute_mgmt_command(self, action: str, data: dict[str, Any] | None = None) -> Any:
        if self._runner is None:
            # Remote mode's target is a deployed function (Type 4), which the portal can't deploy yet.
            raise NotExecutable(
                f"execute_mgmt_command({action!r}) needs a stateful instance of the policy: remote mode (Type 2) "
                "is stateless (a fresh instance per call), and this portal has no function deployments (Type 4) to send it "
                "to yet. Use mode='local', which keeps one instance for the evaluator's lifetime",
                errors={"mode": ["management commands need mode='local' until functions can be deployed"]},
            )
        return self._runner.management(action, data)

    def close(self) -> None:
        if isinstance(self._runner, IsolatedRunner):
            self._runner.close()

    def __enter__(self) -> LocalPolicyEvaluator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
