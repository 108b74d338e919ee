"""App config of accounts: API tokens, roles, authentication and permissions."""
from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self):
        from django.db.models.signals import post_migrate

        # Models added by later migrations join their roles without a migration of their own, and a
        # flushed database (tests) gets its roles back.
        post_migrate.connect(_sync_roles_after_migrate)
        from accounts import signals  # noqa: F401  (invalidates the cached permissions)


def _sync_roles_after_migrate(sender, **kwargs):
    from django.apps import apps

    from accounts.roles import sync_roles

    # post_migrate is sent once per app; every app's permissions exist only after the last one.
    if sender is list(apps.get_app_configs())[-1]:
        sync_roles()
