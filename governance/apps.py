"""App config of governance: the lifecycle of versions, reviews, releases and their signing keys."""
from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"
