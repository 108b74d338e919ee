"""App config of jobs."""
from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self):
        from jobs import signals  # noqa: F401  (follows the lifecycle of the policy versions it uses)
