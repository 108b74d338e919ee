"""Creates a release-signing key in the key store; it signs new approvals from now on (docs/governance.md §5)."""
from django.core.management.base import BaseCommand

from governance.signing import create_signing_key, key_dir


class Command(BaseCommand):
    help = "Create an Ed25519 release-signing key (the previously active key, if any, is retired)."

    def handle(self, *args, **options):
        key = create_signing_key(actor=None)
        self.stdout.write(self.style.SUCCESS(f"created signing key {key.key_id} (active); private key in {key_dir()}"))
