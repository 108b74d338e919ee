"""Signs the audit chain's head now: a checkpoint in the database and in the export file (docs/governance.md §3)."""
from django.core.management.base import BaseCommand, CommandError

from audit.checkpoints import checkpoint_file
from audit.tasks import sign_head_now


class Command(BaseCommand):
    help = "Sign the audit chain's head with the active signing key (stored, and appended to the export file)."

    def handle(self, *args, **options):
        made = sign_head_now()
        if made is None:
            raise CommandError("no checkpoint: the audit log is empty")
        self.stdout.write(self.style.SUCCESS(
            f"audit checkpoint #{made.seq} ({made.entry_hash[:12]}…) signed by key {made.key_id}; "
            f"export file {checkpoint_file()}"))
