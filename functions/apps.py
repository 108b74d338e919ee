"""App config of functions."""
from django.apps import AppConfig


class FunctionsConfig(AppConfig):
    name = "functions"
    verbose_name = "Functions"

    def ready(self):
        from functions import signals  # noqa: F401  (follows the lifecycle of the policy versions it uses)
