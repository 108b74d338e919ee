"""Runs schemathesis with every check against a live portal, inside a network namespace of its own.

    unshare --net python -m tests.openapi.run_schemathesis [--max-time SECONDS] [-- extra schemathesis options]

The portal is the web server ``manage.py run_embedded`` starts (tests/liveportal.py), with the demo data, on
a fresh state folder. The namespace holds only a loopback interface: whatever address a generated record
names (an executor's host, a package URL), nothing leaves the machine and no name is resolved. Exits with
schemathesis's status; tests/openapi/test_openapi_conformance.py runs it in the suite.
"""
import argparse
import fcntl
import os
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up() -> None:
    """`ip link set lo up`, without needing iproute2: a new network namespace starts with lo down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", IFF_UP, b"\0" * 14))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-time", type=int, default=120)
    parser.add_argument("--allow-network", action="store_true", help="skip the check that no route leaves loopback")
    parser.add_argument("extra", nargs="*")
    args = parser.parse_args()
    if not args.allow_network:
        try:
            socket.create_connection(("192.0.2.1", 9), timeout=0.5).close()  # TEST-NET-1: never routed
            return print("refusing to run: this process can reach beyond loopback (run it under unshare --net)") or 2
        except OSError:
            pass
    loopback_up()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from tests.liveportal import live_portal

    with tempfile.TemporaryDirectory(prefix="policygrid-fuzz-") as state, \
            live_portal(Path(state), workers=2, threads=4) as portal:
        headers = {"Authorization": f"Token {portal['token']}"}
        tokens = requests.get(f"{portal['base']}/tokens", headers=headers, timeout=10).json()["data"]
        # Records for the run to find (tests/openapi/hooks.py): the demo policy and asset are there already.
        for n in range(2):
            requests.post(f"{portal['base']}/executor", headers=headers, timeout=10, json={
                "executor_id": f"fuzz-{n}", "executor_host_uri": "http://127.0.0.1:9",
                "executor_metadata": {"n": n, "tags": ["fuzz"]}})
        env = {**os.environ, "POLICYGRID_FUZZ_OWN_TOKEN_ID": str(tokens[0]["id"]),
               "POLICYGRID_FUZZ_BASE": portal["base"], "POLICYGRID_FUZZ_TOKEN": portal["token"]}
        command = [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(HERE / "schemathesis.toml"), "run",
            f"{portal['base']}/api/schema/?format=json", "--url", portal["base"],
            "-H", f"Authorization: Token {portal['token']}", "--max-time", str(args.max_time), *args.extra,
        ]
        return subprocess.run(command, env=env, cwd=HERE.parents[1]).returncode


if __name__ == "__main__":
    sys.exit(main())
