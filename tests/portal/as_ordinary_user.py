"""Run a command as an ordinary user: ``python as_ordinary_user.py <uid> <path>... -- <command>...``.

For the tests that start the embedded system the way an operator without root would. On this kind of machine
the interpreter may live under ``/root`` (mode 0700), where no other user can reach it: as root, this launcher
makes a mount namespace of its own in which the given paths (and the interpreter) are reachable — the covering
the sandbox workers use, ``policygrid.workers.identity.make_reachable`` — then becomes ``uid`` (gid = uid, no
groups, no capabilities) and executes the command.
"""
import os
import sys

from policygrid.workers import identity


def main() -> None:
    uid = int(sys.argv[1])
    split = sys.argv.index("--")
    paths = [*sys.argv[2:split], sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))]
    command = sys.argv[split + 1:]
    identity.make_reachable(paths, uid)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    os.execvpe(command[0], command, os.environ)


if __name__ == "__main__":
    main()
