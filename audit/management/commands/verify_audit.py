"""Verifies the audit hash chain and its signed checkpoints; names the first altered, removed, inserted or
rewritten entry (docs/governance.md §3)."""
import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.checkpoints import read
from audit.models import AuditCheckpoint
from audit.services import verify_chain


class Command(BaseCommand):
    help = ("Verify the audit trail's hash chain and its signed checkpoints; exits non-zero and names the first "
            "broken entry.")

    def add_arguments(self, parser):
        parser.add_argument("--checkpoints", metavar="FILE",
                            help="also check against an exported checkpoint file (a copy kept outside the database)")
        parser.add_argument("--keys", metavar="FILE",
                            help="verify signatures with these keys (a saved `GET /keys` answer) instead of the "
                                 "database's: someone who can write the database can also add a key there")

    def handle(self, *args, **options):
        try:
            exported = read(Path(options["checkpoints"])) if options["checkpoints"] else None
            keys = json.loads(Path(options["keys"]).read_text(encoding="utf-8")) if options["keys"] else None
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        if isinstance(keys, dict) and "data" in keys:
            keys = keys["data"]  # the API's envelope, saved as it came
        started = time.perf_counter()
        count, problem = verify_chain(exported, keys)
        elapsed = time.perf_counter() - started
        if problem is not None:
            raise CommandError(f"{problem} ({count} entries read in {elapsed:.2f} s)")
        signed = AuditCheckpoint.objects.count() + len(exported or ())
        self.stdout.write(self.style.SUCCESS(
            f"audit chain intact: {count} entries verified, and {signed} signed checkpoints, in {elapsed:.2f} s"))
