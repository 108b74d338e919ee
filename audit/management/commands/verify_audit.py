"""Walks the audit hash chain and names the first altered, removed or inserted entry (governance.md §3)."""
import time

from django.core.management.base import BaseCommand, CommandError

from audit.services import verify_chain


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; exits non-zero and names the first broken entry."

    def handle(self, *args, **options):
        started = time.perf_counter()
        count, problem = verify_chain()
        elapsed = time.perf_counter() - started
        if problem is not None:
            raise CommandError(f"{problem} ({count} entries read in {elapsed:.2f} s)")
        self.stdout.write(self.style.SUCCESS(f"audit chain intact: {count} entries verified in {elapsed:.2f} s"))
