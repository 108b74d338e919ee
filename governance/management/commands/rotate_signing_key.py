"""Rotates the release-signing key: a new key signs new approvals, old signatures stay verifiable."""
from django.core.management.base import BaseCommand, CommandError

from governance.signing import KeyStoreError, revoke_signing_key, rotate_signing_key


class Command(BaseCommand):
    help = (
        "Create a new active signing key and retire the current one (its signatures keep verifying). "
        "With --revoke KEY_ID, revoke that key instead: signatures it made no longer verify."
    )

    def add_arguments(self, parser):
        parser.add_argument("--revoke", metavar="KEY_ID", help="revoke this key instead of rotating")

    def handle(self, *args, revoke=None, **options):
        if revoke:
            try:
                key = revoke_signing_key(revoke, actor=None)
            except KeyStoreError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(self.style.WARNING(f"revoked signing key {key.key_id}: its signatures no longer verify"))
            return
        key = rotate_signing_key(actor=None)
        self.stdout.write(self.style.SUCCESS(f"rotated: {key.key_id} now signs new approvals"))
