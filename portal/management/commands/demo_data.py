"""Loads the demo data of the embedded setup: an admin, one user per role, the sample ip_allowlist policy."""
import secrets

from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.choices import Role

SAMPLE = "ip_allowlist"


class Command(BaseCommand):
    help = "Create the demo accounts and register the sample ip_allowlist policy (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--admin-password", default=None, help="default: a random one, printed")
        parser.add_argument("--credentials-file", default=None, help="write the printed credentials here too")

    def handle(self, *args, admin_password=None, credentials_file=None, **options):
        from policygrid.samples import sample_archive, sample_record

        from accounts.services import issue_token
        from policies.models import Asset, PolicyRule
        from policies.registration import register_package
        from policies.services import store_asset
        from records.services import save_record

        lines = []
        with transaction.atomic():
            admin = User.objects.filter(username="admin").first()
            if admin is None:
                password = admin_password or secrets.token_urlsafe(12)
                admin = User.objects.create_superuser("admin", "admin@localhost", password)
                admin.groups.add(Group.objects.get(name=Role.ADMIN))
                lines.append(f"admin login:     admin / {password}")
            else:
                lines.append("admin login:     admin / (unchanged: set on first start)")
            for role in (Role.AUTHOR, Role.REVIEWER, Role.OPERATOR, Role.VIEWER):
                name = f"demo-{role.value}"
                if not User.objects.filter(username=name).exists():
                    password = secrets.token_urlsafe(9)
                    user = User.objects.create_user(name, password=password)
                    user.groups.add(Group.objects.get(name=role.value))
                    lines.append(f"{role.value + ' login:':16} {name} / {password}")
            _token, key = issue_token(admin, name="demo")
            lines.append(f"admin API token: {key}")

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
