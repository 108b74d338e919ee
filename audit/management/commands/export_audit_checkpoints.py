"""Writes every signed audit checkpoint to a file, one JSON object a line, for safekeeping outside the database."""
from pathlib import Path

from django.core.management.base import BaseCommand

from audit.checkpoints import checkpoint_file, export


class Command(BaseCommand):
    help = "Export the signed audit checkpoints (JSON lines) to FILE (default: POLICYGRID_AUDIT_CHECKPOINT_FILE)."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="where to write; replaced atomically")

    def handle(self, *args, **options):
        path = Path(options["file"]) if options["file"] else checkpoint_file()
        count = export(path)
        self.stdout.write(self.style.SUCCESS(f"{count} audit checkpoints written to {path}"))
