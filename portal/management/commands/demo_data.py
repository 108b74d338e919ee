"""Loads the demo data of the embedded setup: an admin, one user per role, the sample ip_allowlist policy."""
import os
import secrets

from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.choices import Role

SAMPLE = "ip_allowlist"
UNKNOWN_PASSWORD = "{label:16} {user} / (set on first start; `manage.py changepassword {user}` sets a new one)"


class Command(BaseCommand):
    help = "Create the demo accounts and register the sample ip_allowlist policy (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--admin-password", default=None, help="default: a random one, printed")
        parser.add_argument("--credentials-file", default=None, help="write the printed credentials here too")

    def handle(self, *args, admin_password=None, credentials_file=None, **options):
        from policygrid.samples import sample_archive, sample_record

        from policies.models import Asset, PolicyRule
        from policies.registration import register_package
        from policies.services import store_asset
        from records.services import save_record

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

        record = sample_record(SAMPLE)
        uri = f"{record['name']}:{record['version']}-{record['release_tag']}"
        if not PolicyRule.objects.filter(policy_rule_uri=uri).exists():
            asset = Asset.objects.filter(asset_name="ip-allow-list").first()
            if asset is None:
                upload = SimpleUploadedFile("ip-allow-list-checker.zip", sample_archive(SAMPLE), "application/zip")
                asset = store_asset(actor=admin, upload=upload, metadata={
                    "asset_name": "ip-allow-list", "asset_version": {"version": "1.0", "tag": "beta"},
                    "asset_metadata": {"description": "IP allow list policy code"}, "asset_tags": ["policy", "example"],
                })
            policy = PolicyRule(**{k: v for k, v in record.items() if k not in ("policy_rule_uri", "code")},
                                code=asset.public_url, created_by=admin)
            policy.full_clean()
            register_package(policy)
            save_record(policy, admin, action="create", extra={"source": "demo data"})
            self._approve_if_possible(policy, admin)
        lines.append(f"sample policy:   {uri}")
        text = "\n".join(lines)
        self.stdout.write(text)
        if credentials_file:
            with open(credentials_file, "w") as handle:
                handle.write(text + "\n")

    def _approve_if_possible(self, policy, admin):
        """The demo's sample policy is released so that it can run at once (governance records it)."""
        try:
            from policies.services import release_for_demo
        except ImportError:  # governance not installed yet: the gate is relaxed in the embedded setup
            return
        release_for_demo(policy, admin)


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
