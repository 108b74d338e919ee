"""The job runner (Type 3, docs/runtime.md §6): ``python -m policygrid.job --limits '<json>'``.

One process per job. It starts its sandbox (``policygrid.workers``: a pool of one warm worker, the same runner
and protections as Type 2) *before* it reads its job, so an executor can keep one started ahead; then it reads
the job as one JSON line on stdin (the token never appears in argv or the environment), runs the policy once,
and posts the outcome to the portal with the job's own token::

    POST <portal_url>/jobs/<job_id>/result    X-Job-Token: <token>
    {"status": "completed", "output": …}  or  {"status": "failed", "error": "…", "error_type": "…"}

The job (stdin): ``job_id``, ``token``, ``portal_url``, ``record`` (the policy's record), ``package_dir`` and
``requirements_dir`` (prepared by the local runtime through the one cache), or neither (a container: the package
is loaded through the one loader, ``load_record_package``), ``input_data``, ``parameters``, ``settings`` (the
caller's overrides: they win key by key), ``timeout_seconds``.

``--spec-file PATH`` reads the job from that file instead of stdin (Kubernetes: a Secret mounted as a file, so that
the token is in neither the pod spec nor its environment); the sandbox is started and the job run at once.

Exit status: 0 once the outcome is posted (whether the policy succeeded or not); 3 when it could not be posted.
What the policy printed, and the runner's own lines, go to stderr: the job's log. One line on stdout,
``{"worker_pids": […]}``, tells a supervisor which sandbox processes to kill with the job.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .errors import PolicyGridError
from .lifetime import die_with_parent
from .workers import PoolLimits, WorkerPool

POST_ATTEMPTS = 5
# A runner waiting for its job starts (and keeps its sandbox) at this lower priority, so that starting the next
# spare takes no CPU from the jobs running; it is raised back when its job arrives (where the user may).
SPARE_NICE = 10
EXIT_NOT_POSTED = 3


def log(message: str) -> None:
    now = time.time()
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(now))}.{int(now % 1 * 1000):03d} {message}\n")
    sys.stderr.flush()


def limits_from_json(text: str) -> PoolLimits:
    """The sandbox limits a supervisor passes (``limits_to_json`` of its own pool's limits)."""
    raw = json.loads(text or "{}")
    uids = raw.pop("sandbox_uids", "default")
    if "preload" in raw:
        raw["preload"] = tuple(raw["preload"])
    if "pass_env" in raw:
        raw["pass_env"] = tuple(raw["pass_env"])
    if "deny_ports" in raw:
        raw["deny_ports"] = tuple(raw["deny_ports"])
    if raw.get("tmp_root"):
        raw["tmp_root"] = Path(raw["tmp_root"])
    limits = PoolLimits(**{**raw, "workers": 1, "label": "job"})
    if uids != "default":  # the supervisor's own pool's range (None: stay its user)
        limits.sandbox_uids = range(uids[0], uids[1]) if uids else None
    return limits


def limits_to_json(limits: PoolLimits) -> str:
    uids = limits.sandbox_uids
    return json.dumps({
        "timeout_seconds": limits.timeout_seconds, "cpu_seconds": limits.cpu_seconds, "memory_mb": limits.memory_mb,
        "max_processes": limits.max_processes, "max_result_bytes": limits.max_result_bytes,
        "landlock": limits.landlock, "preload": list(limits.preload), "pass_env": list(limits.pass_env),
        "redis_url": limits.redis_url, "tmp_root": str(limits.tmp_root) if limits.tmp_root else None,
        "deny_ports": list(limits.deny_ports), "allow_weaker_sandbox": limits.allow_weaker_sandbox,
        "sandbox_uids": [uids.start, uids.stop] if uids else None,
    })


def post_result(job: dict[str, Any], outcome: dict[str, Any]) -> bool:
    """Post the outcome with the job's token; True once the portal took it (or refused it for good)."""
    url = f"{job['portal_url'].rstrip('/')}/jobs/{job['job_id']}/result"
    data = json.dumps(outcome, default=str).encode()
    for attempt in range(POST_ATTEMPTS):
        request = urllib.request.Request(url, data=data, method="POST", headers={
            "Content-Type": "application/json", "X-Job-Token": job["token"]})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - the portal's address
                log(f"result posted: HTTP {answer.status}")
                return True
        except urllib.error.HTTPError as exc:
            if exc.code < 500:  # refused (403 wrong token, 409 already finished): repeating can't help
                log(f"the portal refused the result: HTTP {exc.code} {exc.read()[:300]!r}")
                return exc.code == 409
            log(f"posting the result failed: HTTP {exc.code}")
        except OSError as exc:
            log(f"posting the result failed: {exc}")
        time.sleep(min(2.0, 0.2 * 2 ** attempt))
    return False


def prepare_package(job: dict[str, Any]) -> tuple[str, str | None, str]:
    """(package folder, requirements folder, digest): prepared by the local runtime, else the one loader."""
    if job.get("package_dir"):
        return job["package_dir"], job.get("requirements_dir"), job["record"]["code_digest"]
    from .client import PortalClient
    from .package import load_record_package
    from .requirements import ensure_requirements

    client = PortalClient(job["portal_url"], os.environ.get("POLICYGRID_TOKEN", ""), timeout=30)
    package = load_record_package(job["record"], client=client)
    requirements = ensure_requirements(package.path)
    return str(package.path), str(requirements) if requirements else None, package.digest


async def run_job(pool: WorkerPool, job: dict[str, Any]) -> dict[str, Any]:
    """Run the policy once in the sandbox: the outcome to post."""
    record = job["record"]
    try:
        package_dir, requirements_dir, digest = await asyncio.to_thread(prepare_package, job)
        request = {"rk": "job", "pkg": package_dir, "req": requirements_dir, "uri": record["policy_rule_uri"],
                   "input_data": job.get("input_data"), "settings": job.get("settings"),
                   "parameters": job.get("parameters")}
        printed: dict[str, Any] = {}
        log("running the policy in the sandbox")
        try:
            result = await pool.run(digest, request, record, "job", float(job["timeout_seconds"]), output=printed)
        finally:
            for stream in ("stdout", "stderr"):
                for line in (printed.get(stream) or "").splitlines():
                    log(f"policy {stream}: {repr(line)[1:-1]}")
            if printed.get("truncated"):
                log("policy output truncated")
    except PolicyGridError as exc:
        log(f"failed: {exc.error_type}: {exc.message}")
        return {"status": "failed", "error_type": exc.error_type, "error": exc.message,
                "exception_type": getattr(exc, "exception_type", None)}
    log("completed")
    return {"status": "completed", "output": json.loads(result)}


def _renice(pids: list[int], value: int) -> None:
    for pid in pids:
        try:
            os.setpriority(os.PRIO_PROCESS, pid, value)
        except OSError:  # raising a priority needs CAP_SYS_NICE: an ordinary user's jobs stay at the spare's
            pass


async def main_async(limits: PoolLimits, spec_file: str | None = None) -> int:
    if not spec_file:  # a spare waiting for its job; a job read from a file runs at once
        _renice([0], SPARE_NICE)
    pool = WorkerPool(limits)
    await pool.start()
    workers = [worker.pid for worker in pool.workers]
    print(json.dumps({"worker_pids": workers}), flush=True)
    try:
        line = Path(spec_file).read_text() if spec_file else await asyncio.to_thread(sys.stdin.readline)
        if not line.strip():
            return 0  # a spare runner that was never given a job
        _renice([0, *workers], 0)
        job = json.loads(line)
        log(f"job {job['job_id']} started on {socket.gethostname()}: {job['record']['policy_rule_uri']}")
        outcome = await run_job(pool, job)
    finally:
        await pool.close()
    return 0 if await asyncio.to_thread(post_result, job, outcome) else EXIT_NOT_POSTED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policygrid.job", description=__doc__.splitlines()[0])
    parser.add_argument("--limits", default="{}", help="the sandbox limits, as JSON (limits_to_json)")
    parser.add_argument("--spec-file", help="read the job (one JSON object) from this file instead of stdin")
    args = parser.parse_args(argv)
    die_with_parent(os.getppid(), signal.SIGTERM)  # a runner whose supervisor dies stops (SIGTERM closes its sandbox)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(143)))
    return asyncio.run(main_async(limits_from_json(args.limits), args.spec_file))


if __name__ == "__main__":
    sys.exit(main())
