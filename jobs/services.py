"""Job operations with side effects (Type 3, docs/api.md §4.4): submit, cancel, a runner's result, logs and the
periodic reconciliation. Each takes its actor and writes the audit entry; the API, the admin and the task call
them. Jobs reach their executor's runtime only through ``executors.runtime.runtime_for``.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from jsonschema import Draft202012Validator
from policygrid.errors import InputInvalid, NotFound, PolicyGridError
from policygrid.wire import ExecuteRequest

from audit.services import audit_object
from executors.allocator import SUBMISSION_PROPERTIES, choose_executor
from executors.models import PolicyExecutor
from executors.runtime import JobLaunch, runtime_for
from executors.services import EXECUTION_POLICY_FIELDS, require_address
from governance.gate import assert_executable
from jobs.choices import JobStatus
from jobs.models import Job
from policies.models import PolicyRule
from records.api.errors import ApiError, Conflict
from records.services import save_record
from records.validators import check_body

logger = logging.getLogger(__name__)

# The body of POST /jobs/submit[/<executor_id>] (docs/api.md §4.4); the job's own rules are in Job.clean().
SUBMIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "policy_rule_uri"],
    "properties": {
        **SUBMISSION_PROPERTIES,
        "name": {"type": "string", "description": "a DNS-1123 label"},
        "inputs": {"description": "the policy's input_data (default {})"},
        "timeout_seconds": {"type": ["integer", "null"], "minimum": 1},
        "dry_run": {"type": "boolean", "description": "a draft's trial run, by its author or a reviewer"},
    },
}
_VALIDATOR = Draft202012Validator(SUBMIT_SCHEMA)
RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"enum": ["completed", "failed"]}, "error": {"type": ["string", "null"]},
                   "error_type": {"type": ["string", "null"]}},
}
_RESULT_VALIDATOR = Draft202012Validator(RESULT_SCHEMA)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _audit_view(job: Job) -> dict[str, Any]:
    """What a job's audit entries record: its identity and settings; its inputs only with POLICYGRID_AUDIT_INPUTS."""
    view = {"job_id": str(job.job_id), "job_name": job.job_name, "job_status": job.job_status,
            "job_policy_rule_uri": job.job_policy_rule_uri, "job_executor_id": job.job_executor_id,
            "timeout_seconds": job.timeout_seconds, "dry_run": job.dry_run}
    if settings.AUDIT_EXECUTION_INPUTS:
        view.update(job_inputs=job.job_inputs, job_parameters=job.job_parameters, job_settings=job.job_settings)
    return view


# --- submit ---------------------------------------------------------------------------------------------


def submit_job(actor, body: Any, executor_id: str | None) -> Job:
    """Create the job (``pending``) and launch it on the executor's runtime (``running``), for ``actor``.

    Order of checks: the body (400), the executor (404; none named: the resource allocator's choice), the
    policy (404), the execution gate (409), the executor's address (409). A launch that fails leaves the job
    ``failed`` with the reason, and answers the failure with its ``job_id``.
    """
    data = check_body(_VALIDATOR, SUBMIT_SCHEMA, body)
    if executor_id is None:
        executor = choose_executor(actor, "job", data, data.get("alloc")).executor
    else:
        executor = PolicyExecutor.objects.filter(executor_id=executor_id).first()
        if executor is None:
            raise NotFound(f"no executor with executor_id '{executor_id}'",
                           errors={"executor_id": ["no such executor"]})
    uri = data["policy_rule_uri"]
    policy = PolicyRule.objects.only(*EXECUTION_POLICY_FIELDS).filter(policy_rule_uri=uri).first()
    if policy is None:
        raise NotFound(f"no policy with policy_rule_uri '{uri}'", errors={"policy_rule_uri": ["no such policy"]})
    dry_run = bool(data.get("dry_run", False))
    assert_executable(policy, actor, dry_run=dry_run)
    require_address(executor)
    runtime = runtime_for(executor)
    token = secrets.token_urlsafe(32)
    timeout = data.get("timeout_seconds") or settings.JOB_DEFAULT_TIMEOUT
    if timeout > settings.JOB_MAX_TIMEOUT:
        raise InputInvalid(f"invalid request: timeout_seconds: at most {settings.JOB_MAX_TIMEOUT}",
                           errors={"timeout_seconds": [f"at most {settings.JOB_MAX_TIMEOUT}"]})
    job = Job(job_name=data["name"], job_policy_rule_uri=policy.policy_rule_uri, job_executor_id=executor.executor_id,
              job_inputs=data.get("inputs", {}), job_parameters=data.get("policy_rule_parameters") or {},
              job_settings=data.get("policy_rule_settings") or {}, node_selector=data.get("node_selector") or {},
              resources=data.get("resources") or {}, timeout_seconds=timeout, dry_run=dry_run,
              result_token_hash=token_hash(token), created_by=actor)
    job.full_clean(validate_unique=False)
    save_record(job, actor, action="job.submit", render=_audit_view)
    call = ExecuteRequest(policy_rule_uri=policy.policy_rule_uri, input_data=job.job_inputs,
                          parameters=data.get("policy_rule_parameters"), settings=data.get("policy_rule_settings"),
                          timeout_seconds=timeout, dry_run=dry_run)
    try:
        seen = runtime.launch_job(executor, JobLaunch(str(job.job_id), job.job_name, token, policy, call,
                                                      job.node_selector, job.resources))
    except PolicyGridError as exc:
        finish_job(job, JobStatus.FAILED, error=f"the runtime could not start the job: {exc.error_type}: "
                   f"{exc.message}", action="job.launch_failed")
        raise ApiError(exc.message, exc.status, error_type=exc.error_type, job_id=str(job.job_id),
                       **({"errors": exc.errors} if exc.errors else {})) from None
    now = timezone.now()
    if not _transition(job, JobStatus.RUNNING, {JobStatus.PENDING}, started_at=now, node_id=seen.node[:255],
                       deadline_at=now + timedelta(seconds=timeout + settings.JOB_LOST_GRACE)):
        job.refresh_from_db(fields=["job_status"])
        if job.job_status == JobStatus.CANCELLED:  # cancelled while it was being launched: stop it there too
            try:
                runtime.cancel_job(executor, str(job.job_id))
            except PolicyGridError as exc:
                logger.warning("job %s, cancelled during its launch, could not be stopped: %s", job.job_id, exc)
    job.refresh_from_db()
    return job


# --- transitions ----------------------------------------------------------------------------------------


def _transition(job: Job, to: str, allowed_from: set[str], **fields) -> bool:
    """Move ``job`` to ``to`` if it is still in ``allowed_from``: one conditional UPDATE, so of two concurrent
    writers (a runner's post, a cancel, the reconciliation) exactly one wins. Returns whether this one did."""
    # One transaction: the save below writes the same values again, and must not land after another writer's
    # outcome (the row stays locked until commit on PostgreSQL; SQLite's IMMEDIATE transaction holds the lock).
    with transaction.atomic():
        won = Job.objects.filter(pk=job.pk, job_status__in=allowed_from).update(
            job_status=to, updated_at=timezone.now(), **fields)
        if won:
            job.job_status = to
            for name, value in fields.items():
                setattr(job, name, value)
            # The search index and the record cache follow a save (records.signals), not a QuerySet.update.
            job.save(update_fields=["job_status", "updated_at", *fields])
    return bool(won)


def finish_job(job: Job, status: str, *, output: Any = None, error: str = "", actor=None,
               action: str = "job.finish", extra: dict | None = None) -> bool:
    """End an unfinished job as ``status`` (completed, failed, cancelled, lost) and audit it; False when it had
    already ended (the first outcome stands)."""
    with transaction.atomic():
        won = _transition(job, status, set(JobStatus.ACTIVE), job_output_data=output, job_error=error[:10000],
                          finished_at=timezone.now())
        if won:
            audit_object(actor, action, job, {"job_status": status, "job_error": error[:500], **(extra or {})})
    return won


def record_result(job_id: str, token: str | None, body: Any) -> Job:
    """``POST /jobs/<id>/result`` by the job's runner (or its runtime): only with the job's own token (else
    403), once (a second post, a replay: 409)."""
    job = find_job(job_id)
    if not token or not job.result_token_hash or not hmac.compare_digest(token_hash(token), job.result_token_hash):
        raise PermissionDenied(f"this is not job {job.job_id}'s result token: only its runner may post its result")
    check_body(_RESULT_VALIDATOR, RESULT_SCHEMA, body)
    if body["status"] == JobStatus.COMPLETED:
        won = finish_job(job, JobStatus.COMPLETED, output=body.get("output"), extra={"reported_by": "runner"})
    else:
        kind = body.get("error_type") or "policy_error"
        won = finish_job(job, JobStatus.FAILED, error=f"{kind}: {body.get('error') or 'no reason given'}",
                         extra={"reported_by": "runner", "error_type": kind, "exit_code": body.get("exit_code"),
                                "signal": body.get("signal")})
    if not won:
        job.refresh_from_db(fields=["job_status"])
        raise Conflict(f"job {job.job_id} is already {job.job_status}: its result can't be written again")
    return job


def cancel_job(actor, job: Job) -> Job:
    """Cancel a pending or running job for ``actor`` (409 once it has ended) and kill it on its runtime."""
    if not finish_job(job, JobStatus.CANCELLED, error=f"cancelled by {getattr(actor, 'username', 'the system')}",
                      actor=actor, action="job.cancel"):
        job.refresh_from_db(fields=["job_status"])
        raise Conflict(f"job {job.job_id} is already {job.job_status}: only a pending or running job can be cancelled")
    executor = job.executor
    if executor is not None:
        try:
            runtime_for(executor).cancel_job(executor, str(job.job_id))
        except PolicyGridError as exc:  # cancelled here; the runtime kills it at its timeout, or already has
            logger.warning("job %s: the runtime of executor %s was not told of its cancellation: %s",
                           job.job_id, executor.executor_id, exc.message)
    job.refresh_from_db()
    return job


def job_logs(job: Job, tail: int | None) -> str:
    executor = job.executor
    if executor is None:
        return ""
    return runtime_for(executor).job_logs(executor, str(job.job_id), tail)


def find_job(job_id: str) -> Job:
    job = Job.objects.filter(job_id=job_id).first() if is_uuid(job_id) else None
    if job is None:
        raise NotFound(f"no job with job_id '{job_id}'")
    return job


def is_uuid(text: str) -> bool:
    import uuid

    try:
        uuid.UUID(str(text))
    except ValueError:
        return False
    return True


# --- reconciliation ---------------------------------------------------------------------------------------


def reconcile_jobs() -> dict[str, int]:
    """Ask each unfinished job's runtime how it is (the periodic task): a job that ended there without its
    outcome reaching us is ``failed`` with the reason the runtime saw; one that no runtime knows, past its
    deadline, is ``lost``. Returns counts by what was done."""
    counts = {"checked": 0, "failed": 0, "cancelled": 0, "lost": 0}
    launch_window = timedelta(seconds=settings.EXECUTOR_CALL_TIMEOUT + settings.EXECUTOR_TIMEOUT_MARGIN + 5)
    now = timezone.now()
    for job in Job.objects.filter(job_status__in=JobStatus.ACTIVE).select_related("executor").order_by("created_at"):
        if job.job_status == JobStatus.PENDING and now < job.created_at + launch_window:
            continue  # being launched right now
        counts["checked"] += 1
        try:
            outcome = _reconcile(job, now)
        except Exception:  # one job's bookkeeping must not stop the others'
            logger.exception("reconciling job %s failed", job.job_id)
            continue
        if outcome:
            counts[outcome] += 1
    return counts


def _reconcile(job: Job, now) -> str | None:
    executor = job.executor
    why = "its executor is gone"
    seen = None
    if executor is not None:
        try:
            seen = runtime_for(executor).job_status(executor, str(job.job_id))
            why = f"executor {executor.executor_id} does not know it"
        except PolicyGridError as exc:
            why = exc.message
    if seen is not None and seen.state == "cancelled":
        return "cancelled" if finish_job(job, JobStatus.CANCELLED, error=seen.reason or "cancelled by its runtime",
                                         extra={"reported_by": "reconciliation"}) else None
    if seen is not None and seen.finished:
        if seen.exit_code == 0:  # its runner posted an outcome that never arrived
            return "lost" if finish_job(job, JobStatus.LOST, error="its runner ended, but its outcome never "
                                        "reached the portal", extra={"reported_by": "reconciliation"}) else None
        return "failed" if finish_job(job, JobStatus.FAILED, error=seen.reason or f"exit code {seen.exit_code}",
                                      extra={"reported_by": "reconciliation", "exit_code": seen.exit_code,
                                             "signal": seen.signal}) else None
    deadline = job.deadline_at or (job.created_at + timedelta(seconds=(job.timeout_seconds or 0)
                                                              + settings.JOB_LOST_GRACE))
    if seen is None and now > deadline:
        return "lost" if finish_job(job, JobStatus.LOST, error=f"no sign of life past its deadline: {why}",
                                    extra={"reported_by": "reconciliation"}) else None
    return None
