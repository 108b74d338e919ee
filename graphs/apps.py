"""App config of graphs."""
from django.apps import AppConfig


class GraphsConfig(AppConfig):
    name = "graphs"
    verbose_name = "Graphs"

    def ready(self):
        from graphs import signals  # noqa: F401  (follows the lifecycle of the policy versions it uses)
