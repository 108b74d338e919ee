"""App config of the portal's cross-cutting models (API tokens, search index, audit trail)."""
from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "PolicyGrid portal"

    def ready(self):
        from django.db.models.signals import post_migrate

        from portal import signals  # noqa: F401  (connects the search-index maintenance)
        from portal.api import schema  # noqa: F401  (registers the token scheme with drf-spectacular)
        # Models added by later migrations join their roles without a migration of their own, and a
        # flushed database (tests) gets its roles back.
        post_migrate.connect(_sync_roles_after_migrate)


def _sync_roles_after_migrate(sender, **kwargs):
    from django.apps import apps

    from portal.roles import sync_roles

    # post_migrate is sent once per app; every app's permissions exist only after the last one.
    if sender is list(apps.get_app_configs())[-1]:
        sync_roles()
