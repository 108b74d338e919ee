"""Benchmark of the SDK's hot and load paths on the sample ip_allowlist policy (issue 3's figures).

Run:  .venv/bin/python bench/bench_sdk.py
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import policygrid.loader as loader_module
import policygrid.requirements as requirements_module
from policygrid.context import MemoryContext
from policygrid.evaluator import LocalPolicyEvaluator
from policygrid.fetch import FetchOptions
from policygrid.loader import load_rule_class
from policygrid.package import digest_of, zip_code_folder
from policygrid.rule_runner import PolicyRunner
from policygrid.samples import sample_path, sample_record

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fileserver import FileServer  # noqa: E402 - the repository root is on sys.path from here

URI = "ip_allowlist:1.0-beta"
INPUT = {"ip": "192.168.0.109"}
TARGETS = {"ratio": 1.5, "validation_us": 25.0, "cold_ms": 150.0, "warm_ms": 20.0}


def per_call_us(fn, calls: int = 20_000, repeats: int = 15) -> float:
    """Best-of-repeats mean cost of one call, in µs (the best run is the least disturbed one)."""
    for _ in range(1000):
        fn()
    best = float("inf")
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            best = min(best, (time.perf_counter() - start) / calls)
    finally:
        gc.enable()
    return best * 1e6


def ten_kb_package() -> bytes:
    """The sample's code/ plus a 9 KB incompressible data file: a ~10 KB archive."""
    work = Path(tempfile.mkdtemp(prefix="pg-bench-src-"))
    shutil.copytree(sample_path("ip_allowlist") / "code", work / "code")
    (work / "code" / "data.bin").write_bytes(os.urandom(8 * 1024))
    data = zip_code_folder(work)
    shutil.rmtree(work)
    return data


def main() -> int:
    record = sample_record("ip_allowlist")
    record["policy_rule_uri"] = URI
    rule_class = load_rule_class(sample_path("ip_allowlist"))

    # --- per-call cost ------------------------------------------------------------------------------------
    context = MemoryContext()
    instance = rule_class(URI, dict(record["policy_settings"]), dict(record["policy_parameters"]))
    parameters = instance.parameters
    direct = per_call_us(lambda: instance.eval(parameters, INPUT, context))
    unvalidated = PolicyRunner(record, rule_class, validate=False)
    runner_off = per_call_us(lambda: unvalidated.eval(INPUT))
    validated = PolicyRunner(record, rule_class, validate=True)
    runner_on = per_call_us(lambda: validated.eval(INPUT))

    data = ten_kb_package()
    record["code_digest"] = digest_of(data)
    server = FileServer()
    url = server.serve("pkg.zip", data)
    record["code"] = url
    options = FetchOptions(allow_private=True)
    evaluator_off = LocalPolicyEvaluator(URI, record=record, validate=False, fetch_options=options,
                                         cache_dir=tempfile.mkdtemp(prefix="pg-bench-"))  # fmt: skip
    evaluator_off_cost = per_call_us(lambda: evaluator_off.execute_policy_rule(INPUT))
    evaluator_on = LocalPolicyEvaluator(URI, record=record, fetch_options=options,
                                        cache_dir=tempfile.mkdtemp(prefix="pg-bench-"))  # fmt: skip
    evaluator_on_cost = per_call_us(lambda: evaluator_on.execute_policy_rule(INPUT))

    # Sub-µs figures are noisy on a shared machine: measure the pair again, interleaved, keep the best.
    for _ in range(3):
        direct = min(direct, per_call_us(lambda: instance.eval(parameters, INPUT, context)))
        evaluator_off_cost = min(evaluator_off_cost, per_call_us(lambda: evaluator_off.execute_policy_rule(INPUT)))

    # --- load paths ---------------------------------------------------------------------------------------
    cold, warm, warm_reimport = [], [], []
    for _ in range(30):
        cache_dir = Path(tempfile.mkdtemp(prefix="pg-bench-cache-"))
        requirements_module._memo.clear()
        start = time.perf_counter()
        LocalPolicyEvaluator(URI, record=record, fetch_options=options, cache_dir=cache_dir)
        cold.append((time.perf_counter() - start) * 1000)

        # A fresh evaluator on a cached digest: no fetch, no unpack (the class is warm in this process).
        start = time.perf_counter()
        LocalPolicyEvaluator(URI, record=record, fetch_options=options, cache_dir=cache_dir)
        warm.append((time.perf_counter() - start) * 1000)

        # As a new process would: the class cache and the requirements memo empty, function.py re-imported.
        loader_module._classes.clear()
        requirements_module._memo.clear()
        start = time.perf_counter()
        LocalPolicyEvaluator(URI, record=record, fetch_options=options, cache_dir=cache_dir)
        warm_reimport.append((time.perf_counter() - start) * 1000)
        shutil.rmtree(cache_dir)
    server.close()

    ratio = evaluator_off_cost / direct
    added = evaluator_on_cost - direct
    figures = [
        ("direct instance.eval", f"{direct:.2f} µs/call", ""),
        ("PolicyRunner.eval, validation off", f"{runner_off:.2f} µs/call", f"{runner_off / direct:.2f}x direct"),
        ("execute_policy_rule, validation off", f"{evaluator_off_cost:.2f} µs/call",
         f"{ratio:.2f}x direct (target <= {TARGETS['ratio']}x)"),
        ("PolicyRunner.eval, validation on", f"{runner_on:.2f} µs/call", f"+{runner_on - direct:.2f} µs"),
        ("execute_policy_rule, validation on", f"{evaluator_on_cost:.2f} µs/call",
         f"+{added:.2f} µs over direct (target <= {TARGETS['validation_us']:.0f} µs)"),
        (f"cold load of a {len(data) / 1024:.1f} KB package", f"median {statistics.median(cold):.1f} ms",
         f"min {min(cold):.1f} ms (target <= {TARGETS['cold_ms']:.0f} ms; fetch+verify+unpack+check+import)"),
        ("load of a cached digest", f"median {statistics.median(warm):.2f} ms",
         f"min {min(warm):.2f} ms (target <= {TARGETS['warm_ms']:.0f} ms)"),
        ("load of a cached digest, re-importing", f"median {statistics.median(warm_reimport):.2f} ms",
         f"min {min(warm_reimport):.2f} ms (target <= {TARGETS['warm_ms']:.0f} ms)"),
    ]  # fmt: skip
    print(f"policygrid SDK benchmark — Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"reproduce: cd {Path(__file__).resolve().parent.parent} && .venv/bin/python bench/bench_sdk.py\n")
    for name, value, note in figures:
        print(f"  {name:<42} {value:<20} {note}")
    met = (
        ratio <= TARGETS["ratio"]
        and added <= TARGETS["validation_us"]
        and statistics.median(cold) <= TARGETS["cold_ms"]
        and statistics.median(warm_reimport) <= TARGETS["warm_ms"]
    )
    print("\nall targets met" if met else "\nSOME TARGETS MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
