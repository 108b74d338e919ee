"""Revokes a release-signing key: signatures it made no longer verify; its private half is destroyed."""
from django.core.management.base import BaseCommand, CommandError

from governance.signing import KeyStoreError, revoke_signing_key


class Command(BaseCommand):
    help = "Revoke a signing key by id (see GET /keys)."

    def add_arguments(self, parser):
        parser.add_argument("key_id")

    def handle(self, *args, key_id, **options):
        try:
            key = revoke_signing_key(key_id, actor=None)
        except KeyStoreError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.WARNING(f"revoked signing key {key.key_id}"))
