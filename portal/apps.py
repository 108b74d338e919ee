"""App config of the Django project itself: it holds the embedded run and demo-data commands, no models."""
from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "PolicyGrid portal"
