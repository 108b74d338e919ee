"""Starts the whole embedded system: migrations, demo data, the portal, a Celery worker and beat.

Every process is a child of this command, which supervises them (portal/supervisor.py: a process that dies is
restarted, nothing it started is left behind) and holds the portal's and the executor's listening sockets so
that a restart refuses no connection; Ctrl-C (or SIGTERM) stops them all. Ports and the state folder come from
the environment so that two instances can run side by side.
"""
import io
import os
import shlex
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from portal.server import listening_socket, worker_sockets


class Command(BaseCommand):
    help = "Run the portal, a worker, beat and a local executor on the embedded default, with demo data."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("POLICYGRID_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("POLICYGRID_PORT", "8000")))
        parser.add_argument("--workers", type=int, default=default_web_workers(),
                            help="web worker processes of the public portal (default: POLICYGRID_WEB_WORKERS, else "
                                 "two per CPU, from 2 to 8)")
        parser.add_argument("--threads", type=int, default=int(os.environ.get("POLICYGRID_WEB_THREADS", "8")),
                            help="threads per web worker: requests waiting on an executor hold a thread each")
        parser.add_argument("--no-demo", action="store_true", help="skip the demo data")

    def handle(self, *args, host, port, workers, threads, no_demo, **options):
        state = Path(settings.STATE_DIR)
        for folder in (state, state / "broker" / "out", state / "broker" / "processed", state / "broker" / "control",
                       state / "logs"):
            folder.mkdir(parents=True, exist_ok=True)
        refuse_earlier_layout()
        call_command("migrate", interactive=False, verbosity=0)
        # The demo data, loaded in this process, names the sample's package with the portal's address: it must be
        # this run's (``--port`` may differ from POLICYGRID_PORT), or every client of the sample is refused.
        settings.PUBLIC_BASE_URL = os.environ.get("POLICYGRID_PUBLIC_URL", f"http://{host}:{port}").rstrip("/")
        credentials = state / "credentials.txt"
        if not no_demo:
            call_command("demo_data", credentials_file=str(credentials), stdout=io.StringIO())

        env = {**os.environ, "POLICYGRID_STATE_DIR": str(state), "POLICYGRID_PUBLIC_URL": settings.PUBLIC_BASE_URL}
        python = sys.executable
        # The supervisor holds the portal's listening sockets (one per web worker process, SO_REUSEPORT) and hands
        # them to each web server it starts: while a killed server is restarted, connections wait in the backlogs
        # instead of being refused.
        listeners = worker_sockets(host, port, workers)
        commands = {
            "web": self.web_command([listener.fileno() for listener in listeners], threads, "access.log"),
            "worker": [python, "-m", "celery", "-A", "portal", "worker", "--loglevel", "INFO",
                       "--concurrency", "2", "--pool", "prefork"],
            "beat": [python, "-m", "celery", "-A", "portal", "beat", "--loglevel", "INFO",
                     "--schedule", str(state / "celerybeat-schedule")],
        }
        self.executor_listener = None
        commands.update(self.extra_processes(env, host, port))
        base = f"http://{host}:{port}"
        from portal.heartbeat import WorkerHeartbeat
        from portal.supervisor import Supervisor

        supervisor = Supervisor(state, env, say=lambda line: self.stderr.write(line))
        probes = {"worker": WorkerHeartbeat(state)}
        for name, command in commands.items():
            inherited = {"web": listeners, "executor": [self.executor_listener] if self.executor_listener else []}.get(
                name, ())
            supervisor.add(name, command, alive=probes.get(name), pass_fds=tuple(s.fileno() for s in inherited))

        def started(child) -> None:
            if child.name == "web":
                # The executor reads the signing keys from the portal when it starts: serve them first.
                wait_for_health(base, child.process)

        def ready() -> None:
            if "executor" in supervisor.children:
                wait_for_health(env["POLICYGRID_EXECUTOR_URL"], supervisor.children["executor"].process)
            self.print_banner(base, state, credentials)

        supervisor.run_until_stopped(started, ready)

    def print_banner(self, base: str, state: Path, credentials: Path) -> None:
        self.stdout.write(self.style.SUCCESS("PolicyGrid is running (embedded: SQLite, local runtime, file broker)"))
        self.stdout.write(f"  API:        {base}/policy   (health: {base}/health)")
        self.stdout.write(f"  portal:     {base}/portal/")
        self.stdout.write(f"  admin:      {base}/admin/")
        self.stdout.write(f"  API docs:   {base}/api/docs/")
        self.stdout.write(f"  state:      {state}   (logs in {state / 'logs'})")
        self.stdout.write(f"  commands:   {manage_command_hint(state)} <command>")
        if credentials.exists():
            self.stdout.write("  " + credentials.read_text().strip().replace("\n", "\n  "))
        self.stdout.write("Press Ctrl-C to stop. (A process that dies is restarted; /health shows each one.)")
        self.stdout.flush()

    @staticmethod
    def web_command(where: list[int] | str, threads: int, access_log: str, workers: int = 1) -> list[str]:
        """portal/server.py: uvicorn reading requests on its event loop, Django in a pool of threads per process.

        ``where``: inherited listening sockets' descriptors (a worker process per socket), or ``host:port`` to bind
        (``workers`` processes)."""
        listen = ([arg for fd in where for arg in ("--fd", str(fd))] if isinstance(where, list)
                  else ["--bind", where, "--workers", str(workers)])
        return [sys.executable, "-m", "portal.server", *listen, "--threads", str(threads),
                "--access-log", str(Path(settings.STATE_DIR) / "logs" / access_log), "--graceful-timeout", "5"]

    def extra_processes(self, env, host, port) -> dict[str, list[str]]:
        """The local executor service, registered as executor ``local``.

        The portal sends each call the policy's record and signed release, and uploads a package the service
        lacks, so the service never reads the portal while a portal thread waits for it; it reads only the
        published signing keys, at start-up and in the background. Its shared secret and its own portal token
        live in ``<state>/executor/`` (mode 0600) and are kept across restarts; ``env`` is updated so that the
        portal and the workers send the secret.
        """
        import secrets

        from django.contrib.auth.models import Group, User

        from accounts.choices import Role
        from accounts.models import ApiToken
        from accounts.services import issue_token, revoke_token
        from executors.models import PolicyExecutor

        folder = Path(settings.STATE_DIR) / "executor"
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        secret_file = folder / "executor-token"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(32))
            os.chmod(secret_file, 0o600)
        secret = secret_file.read_text().strip()

        # The service reads policies and packages with a viewer account of its own.
        user, created = User.objects.get_or_create(username="executor-local")
        if created:
            user.set_unusable_password()
            user.save()
        user.groups.add(Group.objects.get(name=Role.VIEWER))
        for token in ApiToken.objects.filter(user=user, name="local executor"):
            revoke_token(token, actor=None)
        _, portal_token = issue_token(user, name="local executor")

        executor_port = int(os.environ.get("POLICYGRID_EXECUTOR_PORT", "8900"))
        address = f"http://127.0.0.1:{executor_port}"
        executor = PolicyExecutor.objects.filter(executor_id="local").first() or PolicyExecutor(executor_id="local")
        executor.executor_host_uri = address
        executor.credential = secret  # the service's own credential, kept in <state>/executor/ across restarts
        executor.executor_runtime = "local"
        executor.executor_metadata = {**(executor.executor_metadata or {}),
                                      "description": "the embedded run's local executor service"}
        executor.full_clean(validate_unique=False)
        executor.save()

        env.update({
            "POLICYGRID_EXECUTOR_URL": address,
            "POLICYGRID_EXECUTOR_TOKEN": secret,
            "POLICYGRID_URL": f"http://{host}:{port}",
            "POLICYGRID_TOKEN": portal_token,
            "POLICYGRID_CACHE_DIR": str(settings.PACKAGE_CACHE_DIR),
        })
        self.stdout.write(f"  executor:   {address} (registered as 'local'; secret in {secret_file})")
        # Held here like the portal's socket: a restarted service finds the calls that came meanwhile waiting.
        self.executor_listener = listening_socket("127.0.0.1", executor_port)
        return {
            "executor": [sys.executable, "-m", "policygrid.executor", "serve", "--host", "127.0.0.1",
                         "--port", str(executor_port), "--fd", str(self.executor_listener.fileno()),
                         "--tmp-dir", str(folder / "tmp")],
        }


def refuse_earlier_layout() -> None:
    """Stop with one line when the database was made by the layout before records/audit/accounts/governance.

    Those models moved out of the ``portal`` app and the migrations started anew; migrating such a database
    would leave its audit trail, releases and tokens in tables nothing reads.
    """
    from django.core.management.base import CommandError
    from django.db import connection

    if "django_migrations" not in connection.introspection.table_names():
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM django_migrations WHERE app = %s", ["portal"])
        (earlier,) = cursor.fetchone()
    if earlier:
        raise CommandError(
            f"the database in {settings.STATE_DIR} was made by an earlier PolicyGrid layout: move the state "
            "folder aside (or set POLICYGRID_STATE_DIR to a new one) and start again"
        )


def manage_command_hint(state: Path) -> str:
    """How to run ``manage.py`` commands against this run's database: with its state folder, unless the default."""
    python = Path(sys.executable)
    if python.is_relative_to(settings.BASE_DIR):
        python = python.relative_to(settings.BASE_DIR)
    command = f"{python} manage.py"
    if "DATABASE_URL" in os.environ:
        return "DATABASE_URL=… " + command
    if state != (Path(settings.BASE_DIR) / "state").resolve():
        return f"POLICYGRID_STATE_DIR={shlex.quote(str(state))} {command}"
    return command


def default_web_workers() -> int:
    """``POLICYGRID_WEB_WORKERS``, else two processes per CPU (2 to 8).

    Each process runs Python under its own GIL: with fewer processes than busy threads, the CPUs idle while
    threads wait for a GIL, and a second process per CPU serves more execute_policy calls a second
    (bench/bench_executor.py measures it).
    """
    configured = os.environ.get("POLICYGRID_WEB_WORKERS")
    if configured:
        return int(configured)
    return min(8, max(2, 2 * (os.cpu_count() or 1)))


def wait_for_health(base: str, web, seconds: float = 60) -> None:
    """Return once ``base``/health answers (or the web process died, or ``seconds`` passed)."""
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and web.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
