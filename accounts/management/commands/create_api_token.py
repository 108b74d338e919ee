"""Prints a new API token for a user, on its own line (the key is never shown again)."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.services import issue_token


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it on its own line."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label to recognise the token by")

    def handle(self, *args, username, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        _token, key = issue_token(user, name=name, actor=None)
        self.stdout.write(key)
