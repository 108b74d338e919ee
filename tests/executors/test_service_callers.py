"""One caller's call is never seen by another caller's: what a policy could try from the process that runs a
caller's calls (forked from the warm worker that relays every caller's calls) against a real executor service."""
from __future__ import annotations

import os

import pytest

from tests.executors.conftest import as_caller

pytestmark = pytest.mark.slow

SCAVENGER = """
    import gc

    class AIOSv1PolicyRule:
        def __init__(self, rule_id, settings, parameters): pass
        def eval(self, parameters, input_data, context):
            if "secret" in input_data:
                print("printed:", input_data["secret"])  # into this call's captured output
                return {"found": [], "echo": input_data["secret"]}  # and its result
            # Every object the process holds that the garbage collector tracks (what it inherited from the warm
            # worker included), searched for another caller's input (sent reversed: this call's own input is
            # not a find).
            wanted = input_data["look_for"][::-1]
            gc.unfreeze()  # what the warm worker froze before the fork, back where get_objects() sees it
            found = []
            for obj in gc.get_objects():
                try:
                    text = repr(obj)
                except Exception:
                    continue
                if wanted in text:
                    found.append(text[:300])
            return {"found": found[:5]}
"""

WATCHER = """
    import os, signal, time

    SEEN = []

    def watch(*_):  # a timer's handler, left armed after its call: reads what appears in the call folder
        try:
            for name in os.listdir("."):
                with open(name) as handle:
                    SEEN.append(handle.read())
        except OSError:
            pass

    class AIOSv1PolicyRule:
        def __init__(self, rule_id, settings, parameters): pass
        def eval(self, parameters, input_data, context):
            if "secret" in input_data:  # another caller's call: its data in a file of the call folder a while
                with open("scratch.txt", "w") as handle:
                    handle.write(input_data["secret"])
                time.sleep(0.3)
                return {"seen": []}
            # No thread (a worker whose call leaves one is replaced): a signal handler runs in the main thread,
            # between the retries of its blocked read of the next call.
            signal.signal(signal.SIGALRM, watch)
            signal.setitimer(signal.ITIMER_REAL, 0.005, 0.005)
            return {"seen": sorted(set(SEEN))}
"""

HOOKER = """
    import json

    CAPTURED = []
    _loads = json.loads

    def loads(*args, **kwargs):  # module code: installed in whichever process imports the package
        value = _loads(*args, **kwargs)
        CAPTURED.append(repr(value))
        return value

    json.loads = loads

    class AIOSv1PolicyRule:
        def __init__(self, rule_id, settings, parameters): pass
        def eval(self, parameters, input_data, context):
            return {"captured": [text for text in CAPTURED if "alice-secret" in text][:3]}
"""


@pytest.fixture(scope="module")
def policies(fake_portal, executor_service):
    return {"scavenger": fake_portal.publish("callers-scavenger", SCAVENGER),
            "watcher": fake_portal.publish("callers-watcher", WATCHER),
            "hooker": fake_portal.publish("callers-hooker", HOOKER)}


def test_no_trace_of_one_callers_call_in_the_objects_another_callers_process_holds(executor_service, policies):
    """A caller's process is forked from the warm worker that relayed other callers' calls: it must not inherit a
    reference to their input, result or printed output."""
    for round_ in range(8):  # the calls land on the pool's workers in turn: every worker relays some of each
        secret = f"alice-secret-{round_}-{os.urandom(4).hex()}"
        code, body = executor_service.execute(policies["scavenger"], {"secret": secret}, **as_caller("alice"))
        assert code == 200, body
        for caller in (f"bob-{round_}", "alice-again" if round_ == 0 else f"carol-{round_}"):
            code, body = executor_service.execute(policies["scavenger"], {"look_for": secret[::-1]},
                                                  **as_caller(caller))
            assert code == 200, body
            assert body["data"]["found"] == [], (caller, body["data"]["found"])
        # A call without a grant is the service credential's holder's ("direct"): a caller of its own, the same holds.
        code, body = executor_service.execute(policies["scavenger"], {"look_for": secret[::-1]})
        assert code == 200 and body["data"]["found"] == [], body


def test_a_callers_process_runs_nothing_during_another_callers_call(executor_service, policies):
    """A timer's signal handler left armed in one caller's process (a thread left running gets its worker
    replaced) would see the next caller's files in the worker's call folder: between its caller's calls the
    process is stopped."""
    secrets_ = [f"bob-secret-{n}" for n in range(6)]
    seen: set[str] = set()
    for secret in secrets_:
        for _ in range(2):  # a watcher in mallory's process on every worker the calls reach
            code, body = executor_service.execute(policies["watcher"], {}, **as_caller("mallory"))
            assert code == 200, body
            seen.update(body["data"]["seen"])
        code, body = executor_service.execute(policies["watcher"], {"secret": secret}, **as_caller("bob"))
        assert code == 200, body
    for _ in range(8):
        code, body = executor_service.execute(policies["watcher"], {}, **as_caller("mallory"))
        seen.update(body["data"]["seen"])
    assert not seen & set(secrets_), seen


def test_the_packages_module_code_never_runs_in_the_process_that_relays_every_callers_calls(executor_service,
                                                                                             policies):
    """Module code that hooks json.loads sees the calls of the process it runs in: only its caller's own."""
    for round_ in range(6):
        code, body = executor_service.execute(policies["hooker"], {"note": f"alice-secret-{round_}"},
                                              **as_caller("alice"))
        assert code == 200, body
        code, body = executor_service.execute(policies["hooker"], {}, **as_caller(f"mallory-{round_}"))
        assert code == 200, body
        assert body["data"]["captured"] == [], body["data"]
