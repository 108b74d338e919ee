"""The PolicyGrid Django project and its cross-cutting pieces (API layer, query compiler, roles, audit)."""
from portal.celery import app as celery_app

__all__ = ["celery_app"]
