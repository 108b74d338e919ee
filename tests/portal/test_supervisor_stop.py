"""How the supervisor stops its children: SIGTERM to each child's own process (which stops what it started, as
Celery's warm shutdown ends its pool), then SIGKILL to the child's whole process group.

SIGTERM to the whole group reached the Celery worker's pool processes at once and deadlocked the master's shutdown
until the SIGKILL. The supervisor makes its process a subreaper, so it runs here in a process of its own."""
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A child that starts a helper in its own process group, as Celery's master starts its pool.
CHILD = textwrap.dedent("""
    import subprocess, sys, time
    helper = subprocess.Popen([sys.executable, sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE)
    helper.stdout.readline()
    print("started", helper.pid, flush=True)
    time.sleep(60)
""")
# The helper notes a SIGTERM it receives (SIGKILL it can't note).
HELPER = textwrap.dedent("""
    import signal, sys, time
    def noted(*_):
        open(sys.argv[1], "w").write("SIGTERM")
        sys.exit(0)
    signal.signal(signal.SIGTERM, noted)
    print("ready", flush=True)
    time.sleep(60)
""")
SUPERVISE = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from portal.supervisor import Supervisor
    state = Path(sys.argv[1])
    (state / "logs").mkdir(parents=True)
    supervisor = Supervisor(state, dict(os.environ), say=lambda line: None)
    child = supervisor.add("child", [sys.executable, sys.argv[2], sys.argv[3], sys.argv[4]])
    supervisor.start(child)
    deadline = time.monotonic() + 30
    while "started" not in (state / "logs" / "child.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    began = time.monotonic()
    supervisor.stop_all(grace=5)
    print(round(time.monotonic() - began, 2))
""")


def test_stopping_terms_the_child_alone_and_kills_what_it_left_in_its_group(tmp_path):
    for name, text in (("child.py", CHILD), ("helper.py", HELPER), ("supervise.py", SUPERVISE)):
        (tmp_path / name).write_text(text)
    mark = tmp_path / "helper-got-sigterm"
    done = subprocess.run([sys.executable, str(tmp_path / "supervise.py"), str(tmp_path / "state"),
                           str(tmp_path / "child.py"), str(tmp_path / "helper.py"), str(mark)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "state" / "logs" / "child.log").read_text()
    helper = int(log.split("started", 1)[1].split()[0])
    assert not mark.exists(), "the SIGTERM reached the child's helper, not the child alone"
    assert float(done.stdout.strip()) < 5, "the child did not stop on its SIGTERM within the grace"
    deadline = time.monotonic() + 5
    while Path(f"/proc/{helper}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{helper}").exists(), "the helper the child left in its group is still running"
