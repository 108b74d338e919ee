"""The portal as an ASGI application: portal/front.py around Django's WSGI handler, run in a fixed thread pool.

portal/server.py serves it; any ASGI server may (``uvicorn portal.asgi:application``). Django's own ASGI handler
is not used: it runs each request's synchronous code in a thread of its own, so database connections could not
persist between requests (DATABASE_CONN_MAX_AGE) and every request paid for a new one.
"""
import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from portal.front import Front
from portal.wsgi_threads import ThreadedWSGI

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
application = Front(
    ThreadedWSGI(get_wsgi_application(), threads=int(os.environ.get("POLICYGRID_WEB_THREADS", "8"))),
    max_body=settings.API_MAX_BODY_BYTES, max_upload=settings.API_MAX_UPLOAD_BYTES,
    body_idle_seconds=float(os.environ.get("POLICYGRID_WEB_BODY_IDLE_SECONDS", "10")),
    body_total_seconds=float(os.environ.get("POLICYGRID_WEB_BODY_SECONDS", "60")),
    access_log=os.environ.get("POLICYGRID_ACCESS_LOG") or None,
)
