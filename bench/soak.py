"""A bounded soak of the embedded system (loopback only): processes killed in rotation under a mixed load.

    .venv/bin/python bench/soak.py [--minutes 10] [--kill-every 30] [--good 4] [--slow 20] [--hostile 2]

Starts ``manage.py run_embedded`` in a temporary state folder on free ports, then for ``--minutes``:

* good clients (``--good`` threads) call ``POST /executor/local/execute_policy`` and check every answer;
* hostile clients send ReDoS-shaped ``$regex`` queries, over-long targets, header floods, bodies over the limit,
  broken JSON and invalid HTTP, and expect a 4xx envelope each time;
* slow clients (``--slow``) hold connections that send a head or a body a byte a second;
* a task (``portal.mark``) is sent through the broker every second; each must have run by the end;
* every ``--kill-every`` seconds one process gets SIGKILL, in turn: the web server, the executor service, one
  of its sandbox workers, the Celery master, a Celery pool process, beat.

Then it stops the run, waits for the tasks still due, and prints: good calls answered rightly (%), wrong
answers, lost tasks, orphan processes (any process left with the run's state folder in its environment), the
restarts /health reported, and the command to reproduce.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from tests.portal.embedded_run import GOOD_CALL, Embedded, children, command_of  # noqa: E402

EXPECTED = {"success": True, "data": {"allowed": True, "input_data": {"ip": "127.0.0.1"}, "reason": "allowed"}}
ROTATION = ("web", "executor service", "executor sandbox worker", "celery master", "celery pool child", "beat")


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.examples: dict[str, str] = {}

    def add(self, what: str, example: str = "") -> None:
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1
            if example and what not in self.examples:
                self.examples[what] = example[:300]


def good_client(run: Embedded, stop: threading.Event, tally: Tally) -> None:
    session = requests.Session()
    while not stop.is_set():
        try:
            answer = session.post(f"{run.base}/executor/local/execute_policy", json=GOOD_CALL, headers=run.headers,
                                  timeout=30)
            body = answer.json()
        except (requests.RequestException, ValueError) as exc:
            tally.add("good: failed", repr(exc))
            session = requests.Session()
            time.sleep(0.2)
            continue
        if body == EXPECTED:
            tally.add("good: right")
        elif body.get("success") is True or answer.status_code < 400:
            tally.add("good: WRONG", f"{answer.status_code} {body}")
        else:
            tally.add("good: failed", f"{answer.status_code} {body}")
            time.sleep(0.2)


def hostile_requests(run: Embedded) -> list[tuple[str, bytes]]:
    auth = f"Authorization: Token {run.token}\r\n"

    def post(path: str, body: bytes, extra: str = "") -> bytes:
        return (f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n{extra}"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    regexes = ["(a+)+$", "(a|aa)+$", "(.*a){20}", "([a-z]+)*$"]
    return [
        *(("regex", post("/executor/query", json.dumps({"executor_metadata.x": {"$regex": r}}).encode()))
          for r in regexes),
        ("long target", f"GET /policy?q={'a' * 30000} HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode()),
        ("header flood", ("GET /policy HTTP/1.1\r\nHost: x\r\n" + "".join(f"X-{i}: v\r\n" for i in range(300))
                          + "\r\n").encode()),
        ("big body", post("/policy/query", b"[" * 2_000_000)),
        ("broken json", post("/policy/query", b'{"name": ')),
        ("deep json", post("/policy/query", b'{"a":' * 3000 + b"1" + b"}" * 3000)),
        ("not http", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64) + b"\r\n\r\n"),
    ]


def hostile_client(run: Embedded, stop: threading.Event, tally: Tally) -> None:
    attacks = hostile_requests(run)
    while not stop.is_set():
        name, data = random.choice(attacks)
        try:
            with socket.create_connection(("127.0.0.1", run.port), timeout=30) as sock:
                sock.sendall(data)
                first = sock.recv(65536)
            status = int(first.split()[1]) if first.startswith(b"HTTP/1.1 ") else 0
        except (OSError, ValueError, IndexError):
            status = -1
        tally.add(f"hostile {name}: {status if status > 0 else 'no answer'}")
        time.sleep(0.2)


def slow_client(run: Embedded, stop: threading.Event, index: int) -> None:
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", run.port), timeout=30) as sock:
                if index % 2:
                    sock.sendall(f"POST /policy/query HTTP/1.1\r\nHost: x\r\nAuthorization: Token {run.token}\r\n"
                                 "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode())
                else:
                    sock.sendall(b"GET /policy HTTP/1.1\r\n")
                while not stop.is_set():
                    sock.sendall(b" " if index % 2 else b"X")
                    time.sleep(1)
        except OSError:
            time.sleep(0.5)


def victim(run: Embedded, target: str) -> int | None:
    try:
        if target == "web":
            return run.pid("web")
        if target == "executor service":
            return run.pid("executor")
        if target == "celery master":
            return run.pid("worker")
        if target == "beat":
            return run.pid("beat")
        parent, marker = ((run.pid("executor"), "policygrid.workers.process") if target == "executor sandbox worker"
                          else (run.pid("worker"), "celery"))
        found = [pid for pid in children(parent) if marker in command_of(pid)]
        return found[0] if found else None
    except (OSError, KeyError, ValueError):
        return None


def task_sender(state: Path, stop: threading.Event, sent: list[str]) -> None:
    os.environ.update(POLICYGRID_STATE_DIR=str(state), DJANGO_SETTINGS_MODULE="portal.settings")
    for name in [k for k in os.environ if k.startswith(("CELERY_", "DATABASE_URL"))]:
        del os.environ[name]
    import django

    django.setup()
    from portal.celery import app

    while not stop.is_set():
        mark = uuid.uuid4().hex
        try:
            app.send_task("portal.mark", args=[mark], ignore_result=True)
            sent.append(mark)
        except Exception:  # noqa: BLE001 - a send that failed is not a task lost by the system
            pass
        time.sleep(1)


def processes_of(state: Path) -> list[tuple[int, str]]:
    """Every live process whose environment names this run's state folder."""
    marker = f"POLICYGRID_STATE_DIR={state}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if marker in handle.read().split(b"\0"):
                    found.append((int(entry), command_of(int(entry))))
        except OSError:
            continue
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--kill-every", type=float, default=30, help="seconds between two kills")
    parser.add_argument("--good", type=int, default=4, help="good clients (threads)")
    parser.add_argument("--slow", type=int, default=20, help="slow connections")
    parser.add_argument("--hostile", type=int, default=2, help="hostile clients (threads)")
    args = parser.parse_args()
    command = f"{Path(sys.executable).name} bench/soak.py --minutes {args.minutes:g} --kill-every {args.kill_every:g} " \
              f"--good {args.good} --slow {args.slow} --hostile {args.hostile}"
    with tempfile.TemporaryDirectory(prefix="policygrid-soak-") as folder:
        state = Path(folder) / "state"
        run = Embedded(state).start()
        print(f"embedded run on {run.base}, state {state}; soaking {args.minutes:g} min", flush=True)
        stop, tally, sent = threading.Event(), Tally(), []
        threads = [threading.Thread(target=good_client, args=(run, stop, tally)) for _ in range(args.good)]
        threads += [threading.Thread(target=hostile_client, args=(run, stop, tally)) for _ in range(args.hostile)]
        threads += [threading.Thread(target=slow_client, args=(run, stop, i), daemon=True) for i in range(args.slow)]
        threads.append(threading.Thread(target=task_sender, args=(state, stop, sent)))
        for thread in threads:
            thread.start()
        kills, started = [], time.monotonic()
        try:
            turn = 0
            while time.monotonic() - started < args.minutes * 60:
                time.sleep(min(args.kill_every, max(0.0, args.minutes * 60 - (time.monotonic() - started))))
                if time.monotonic() - started >= args.minutes * 60:
                    break
                target = ROTATION[turn % len(ROTATION)]
                turn += 1
                pid = victim(run, target)
                if pid:
                    os.kill(pid, signal.SIGKILL)
                kills.append(f"{target} (pid {pid})")
                print(f"  {time.monotonic() - started:6.0f} s  killed {target} (pid {pid}); "
                      f"good so far {tally.counts.get('good: right', 0)} right, "
                      f"{tally.counts.get('good: failed', 0)} failed, {tally.counts.get('good: WRONG', 0)} wrong",
                      flush=True)
        finally:
            stop.set()
            for thread in threads:
                if not thread.daemon:
                    thread.join(60)
            # Tasks sent shortly before the end get the time a restart needs to run.
            marks = state / "marks"
            Embedded.wait_for(lambda: all((marks / m).exists() for m in list(sent)), 90, every=1)
            try:
                health = requests.get(f"{run.base}/health", timeout=5).json().get("processes", {})
            except (requests.RequestException, ValueError):
                health = {}
            run.stop()
            time.sleep(2)
            orphans = processes_of(state)
        lost = [m for m in sent if not (marks / m).exists()]
        right, failed, wrong = (tally.counts.get(k, 0) for k in ("good: right", "good: failed", "good: WRONG"))
        total = right + failed + wrong
        print(f"\nsoak of {args.minutes:g} min, {len(kills)} kills ({', '.join(k.split(' (')[0] for k in kills[:6])}, …)")
        print(f"  good calls:     {total}, answered rightly {right} ({100 * right / max(total, 1):.2f} %), "
              f"failed {failed}, wrong {wrong}")
        print(f"  tasks:          {len(sent)} sent, {len(lost)} lost")
        print(f"  orphans:        {len(orphans)}" + "".join(f"\n    {pid} {cmd[:100]}" for pid, cmd in orphans))
        restarts = {name: p.get("restarts") for name, p in health.get("processes", {}).items()}
        print(f"  restarts:       {restarts} (from /health before the stop)")
        hostile = {k: v for k, v in sorted(tally.counts.items()) if k.startswith("hostile")}
        print("  hostile:        " + ", ".join(f"{k[8:]} ×{v}" for k, v in hostile.items()))
        for what, example in tally.examples.items():
            print(f"  e.g. {what}: {example}")
        print(f"  reproduce:      {command}")


if __name__ == "__main__":
    main()
