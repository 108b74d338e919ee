"""App config of the policy registry."""
from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    name = "policies"
    verbose_name = "Policies"

    def ready(self):
        from policies import signals  # noqa: F401  (asset files, package checks of the lifecycle)
