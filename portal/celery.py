"""The Celery app: Redis in production (CELERY_BROKER_URL), the filesystem broker in the embedded default."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("policygrid")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
