"""The embedded supervisor's liveness check of the Celery worker (portal/heartbeat.py): a worker whose heartbeat
task stopped running is stalled, unless one of its pool processes is in the middle of a (long) task."""
import os
import subprocess
import time
from types import SimpleNamespace

import pytest

from portal.heartbeat import BUSY_FOLDER, WorkerHeartbeat


@pytest.fixture
def check(tmp_path, monkeypatch):
    heartbeat = WorkerHeartbeat(tmp_path, stall_seconds=5)
    monkeypatch.setattr(heartbeat, "send", lambda: True)  # the broker is not the subject: sends succeed
    return heartbeat


def worker(started_ago: float):
    return SimpleNamespace(started_at=time.time() - started_ago)


def test_a_worker_that_ran_no_heartbeat_for_the_stall_time_is_stalled(check, tmp_path):
    child = worker(started_ago=100)
    assert check(child)  # heartbeats start being sent now
    check.sending_since -= 10  # ... ten seconds ago, and none ran
    assert not check(child)
    (tmp_path / "worker-heartbeat").write_text("now")  # one runs
    assert check(child)


def test_a_pool_process_in_a_long_task_keeps_the_worker_alive_and_a_dead_one_s_mark_is_cleared(check, tmp_path):
    child = worker(started_ago=100)
    check(child)
    check.sending_since -= 10
    busy = tmp_path / BUSY_FOLDER
    busy.mkdir()
    (busy / str(os.getpid())).touch()  # a live process in a task
    assert check(child)
    (busy / str(os.getpid())).unlink()
    gone = subprocess.Popen(["true"])
    gone.wait()
    (busy / str(gone.pid)).touch()  # the mark of a pool process killed in its task
    assert not check(child)
    assert not (busy / str(gone.pid)).exists()


def test_a_task_marks_its_process_busy_while_it_runs(settings, tmp_path):
    from portal import tasks

    settings.STATE_DIR = tmp_path
    tasks.mark_busy()
    assert (tmp_path / BUSY_FOLDER / str(os.getpid())).exists()
    tasks.mark_idle()
    assert not (tmp_path / BUSY_FOLDER / str(os.getpid())).exists()


def test_the_mark_of_a_killed_process_not_yet_reaped_does_not_count(check, tmp_path):
    child = worker(started_ago=100)
    check(child)
    check.sending_since -= 10
    zombie = subprocess.Popen(["true"])
    deadline = time.time() + 5
    while time.time() < deadline and "Z" not in open(f"/proc/{zombie.pid}/stat").read().rpartition(")")[2][:3]:
        time.sleep(0.01)  # exited, not reaped (no wait() yet): a zombie
    busy = tmp_path / BUSY_FOLDER
    busy.mkdir()
    (busy / str(zombie.pid)).touch()
    try:
        assert not check(child)
    finally:
        zombie.wait()
