"""Loads the demo data of the embedded setup: an admin, one user per role, the sample ip_allowlist policy and the
default resource allocator (both released through the real review flow)."""
import os
import secrets

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.choices import Role

SAMPLE = "ip_allowlist"
# The samples the demo registers and releases: the description's policy, and the default resource allocator.
SAMPLES = (("ip_allowlist", "ip-allow-list", "IP allow list policy code", ["policy", "example"]),
           ("resource_allocator", "resource-allocator", "the default resource allocator", ["allocator", "system"]))
UNKNOWN_PASSWORD = "{label:16} {user} / (set on first start; `manage.py changepassword {user}` sets a new one)"


class Command(BaseCommand):
    help = "Create the demo accounts and register the sample ip_allowlist policy (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--admin-password", default=None, help="default: a random one, printed")
        parser.add_argument("--credentials-file", default=None, help="write the printed credentials here too")

    def handle(self, *args, admin_password=None, credentials_file=None, **options):
        from policies.services import install_sample, release_for_demo

        previous = read_credentials(credentials_file)
        lines = []
        with transaction.atomic():
            admin = User.objects.filter(username="admin").first()
            if admin is None:
                password = admin_password or secrets.token_urlsafe(12)
                admin = User.objects.create_superuser("admin", "admin@localhost", password)
                admin.groups.add(Group.objects.get(name=Role.ADMIN))
                lines.append(f"admin login:     admin / {password}")
            else:
                lines.append(previous.get("admin login") or UNKNOWN_PASSWORD.format(label="admin login:", user="admin"))
            for role in (Role.AUTHOR, Role.REVIEWER, Role.OPERATOR, Role.VIEWER):
                name, label = f"demo-{role.value}", f"{role.value} login:"
                if not User.objects.filter(username=name).exists():
                    password = secrets.token_urlsafe(9)
                    user = User.objects.create_user(name, password=password)
                    user.groups.add(Group.objects.get(name=role.value))
                    lines.append(f"{label:16} {name} / {password}")
                else:
                    lines.append(previous.get(label[:-1]) or UNKNOWN_PASSWORD.format(label=label, user=name))
            lines.append(f"admin API token: {demo_token(admin, previous.get('admin API token'))}")

        for name, asset_name, description, tags in SAMPLES:
            policy, created = install_sample(name, admin, asset_name=asset_name, description=description, tags=tags)
            if created:
                release_for_demo(policy, admin)
        uri = sample_uri(SAMPLE)
        lines.append(f"sample policy:   {uri}")
        text = "\n".join(lines)
        self.stdout.write(text)
        if credentials_file:
            with open(credentials_file, "w") as handle:
                handle.write(text + "\n")


def sample_uri(name: str) -> str:
    from policygrid.samples import sample_record

    record = sample_record(name)
    return f"{record['name']}:{record['version']}-{record['release_tag']}"


def read_credentials(path: str | None) -> dict[str, str]:
    """The lines of an earlier start's credentials file by label (``admin login``…), so a restart keeps them."""
    if not path or not os.path.exists(path):
        return {}
    with open(path) as handle:
        lines = [line.rstrip("\n") for line in handle if ":" in line]
    return {line.split(":", 1)[0]: line for line in lines if "(set on first start" not in line}


def demo_token(admin, previous_line: str | None) -> str:
    """The demo admin token: the earlier start's while it is still valid, else a new one replacing the others.

    Every start used to mint one more, and the earlier ones stayed valid.
    """
    from accounts.models import ApiToken, hash_token
    from accounts.services import issue_token, revoke_token

    demo_tokens = ApiToken.objects.active().filter(user=admin, name="demo")
    key = previous_line.split(":", 1)[1].strip() if previous_line else ""
    if key and demo_tokens.filter(key_hash=hash_token(key)).exists():
        return key
    for token in demo_tokens:
        revoke_token(token, actor=admin)
    return issue_token(admin, name="demo")[1]
