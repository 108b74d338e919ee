"""The embedded run survives the SIGKILL of any of its processes (issue 13): the supervisor restarts what died,
good calls succeed again within 30 s, background work goes on, nothing is left orphaned, and /health says
what happened. Stopping the run stops every process it started."""
import os
import signal
import time
import uuid
from datetime import datetime

import pytest
import requests

from tests.portal.embedded_run import Embedded, alive, children, command_of

RECOVERY_SECONDS = 30


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    run = Embedded(tmp_path_factory.mktemp("supervised"), POLICYGRID_EXECUTOR_PROBE_INTERVAL="3",
                   POLICYGRID_WEB_WORKERS="2", POLICYGRID_WEB_THREADS="4")
    try:
        yield run.start()
    finally:
        run.stop()


def probed_at(run) -> float:
    """When the beat-scheduled, worker-run health probe of executor ``local`` last ran (0 if never)."""
    try:
        answer = requests.get(f"{run.base}/executor/local/health", headers=run.headers, timeout=5).json()
        stamp = answer["data"].get("probed_at") or answer["data"].get("last_seen")
    except (requests.RequestException, ValueError, KeyError):
        return 0.0
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else 0.0


def one_child(pid: int, marker: str) -> int:
    found = [child for child in children(pid) if marker in command_of(child)]
    assert found, f"no child of {pid} runs {marker!r}"
    return found[0]


# What to kill: (the supervised process it belongs to, how to find its pid).
TARGETS = {
    "web": ("web", lambda run: run.pid("web")),
    "executor service": ("executor", lambda run: run.pid("executor")),
    "executor sandbox worker": (None, lambda run: one_child(run.pid("executor"), "policygrid.workers.process")),
    "celery master": ("worker", lambda run: run.pid("worker")),
    "celery pool child": (None, lambda run: one_child(run.pid("worker"), "celery")),
    "beat": ("beat", lambda run: run.pid("beat")),
}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("target", list(TARGETS))
def test_a_killed_process_is_replaced_and_good_calls_succeed_within_30_s(embedded, target):
    supervised, find = TARGETS[target]
    assert embedded.good_call()
    pid = find(embedded)
    left_behind = embedded.descendants(pid)  # what the killed process had started
    restarts_before = embedded.supervision()["processes"][supervised]["restarts"] if supervised else None
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)

    assert embedded.wait_for(embedded.good_call, RECOVERY_SECONDS), f"no good call within 30 s of killing the {target}"
    # Background work too: a health probe (beat sends it, a worker runs it) that started after the kill.
    remaining = RECOVERY_SECONDS - (time.time() - killed_at)
    assert embedded.wait_for(lambda: probed_at(embedded) > killed_at, max(remaining, 1), every=0.5), (
        f"no background task ran within 30 s of killing the {target}\n"
        + embedded.what_happened("worker", "beat", "supervisor"))
    # Nothing it had started outlives it (the executor's sandbox workers, the pool processes, web workers).
    assert embedded.wait_for(lambda: not any(alive(p) for p in left_behind | {pid}), 10), (
        [(p, command_of(p)) for p in left_behind | {pid} if alive(p)])
    if supervised:
        status = requests.get(f"{embedded.base}/health", timeout=5).json()["processes"]
        process = status["processes"][supervised]
        assert process["restarts"] == restarts_before + 1
        assert process["state"] == "running" and process["pid"] != pid
        assert "SIGKILL" in process["last_exit"]["what"]
        assert embedded.wait_for(lambda: requests.get(f"{embedded.base}/health", timeout=5)
                                 .json()["processes"]["status"] == "ok", 10)


@pytest.mark.timeout(120)
def test_a_worker_whose_pool_stalls_is_replaced(embedded):
    """A pool process SIGKILLed while idle used to leave the worker alive but taking no task; the heartbeat
    check finds the worker that runs no task and the supervisor replaces it (or the pool recovers by itself)."""
    def pool():
        master = embedded.pid("worker")
        return [child for child in children(master) if "celery" in command_of(child)]

    for _ in range(2):  # both pool processes, one after the other
        assert embedded.wait_for(pool, 30), "the worker has no pool process"
        os.kill(pool()[0], signal.SIGKILL)
        time.sleep(1)
    killed_at = time.time()
    assert embedded.wait_for(lambda: probed_at(embedded) > killed_at, RECOVERY_SECONDS, every=0.5), (
        embedded.what_happened("worker", "beat", "supervisor"))


@pytest.mark.timeout(120)
def test_a_task_taken_by_a_worker_that_dies_is_run_by_its_replacement(embedded):
    """The worker takes the task (its pool is frozen, so it can't run it) and is SIGKILLed: the task must run."""
    from celery import Celery

    master = embedded.pid("worker")
    pool = [child for child in children(master) if "celery" in command_of(child)]
    for child in pool:
        os.kill(child, signal.SIGSTOP)
    broker = embedded.state / "broker"
    app = Celery(broker="filesystem://", broker_transport="portal.broker:Transport", broker_transport_options={
        "data_folder_in": str(broker / "out"), "data_folder_out": str(broker / "out"),
        "control_folder": str(broker / "control"), "store_processed": False})
    mark = uuid.uuid4().hex
    app.send_task("portal.mark", args=[mark], ignore_result=True)
    claimed = broker / "claimed"
    assert embedded.wait_for(lambda: any(name.startswith(f"{master}.") for name in os.listdir(claimed)), 10), (
        "the worker did not take the task")
    os.kill(master, signal.SIGKILL)
    assert embedded.wait_for(lambda: (embedded.state / "marks" / mark).exists(), RECOVERY_SECONDS), (
        "the task taken by the killed worker was lost")


@pytest.mark.timeout(120)
def test_stopping_the_run_stops_every_process_it_started(embedded):
    everything = embedded.descendants()
    assert len(everything) >= 8  # web + its workers, celery master + pool, beat, executor + its workers
    embedded.stop()
    assert embedded.process.returncode is not None
    assert embedded.wait_for(lambda: not any(alive(p) for p in everything), 10), (
        [(p, command_of(p)) for p in everything if alive(p)])
