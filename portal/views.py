"""Health, metrics and the JSON answers for unknown paths and server errors under the API."""
import os
import time

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.response import Response

PAGE_PREFIXES = ("/portal/", "/admin/")


def _database_status() -> dict:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - health reports any failure
        return {"status": "error", "vendor": connection.vendor, "error": str(exc)}
    return {"status": "ok", "vendor": connection.vendor, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _broker_status() -> dict:
    url = settings.CELERY_BROKER_URL
    scheme = url.split("://", 1)[0]
    if scheme.startswith("redis"):
        try:
            import redis

            redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
        except Exception as exc:  # noqa: BLE001
            return {"status": "error", "transport": scheme, "error": str(exc)}
    return {"status": "ok", "transport": scheme}


def _supervision_status() -> dict | None:
    """What the embedded run's supervisor last wrote (portal/supervisor.py): each process, its restarts and last
    exit. None outside the embedded run."""
    import json

    try:
        status = json.loads((settings.STATE_DIR / "supervisor.json").read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(int(status.get("supervisor_pid", 0)), 0)
    except (ProcessLookupError, ValueError, OverflowError):
        status["status"] = "unsupervised"  # the supervisor is gone: nothing restarts a process now
    except PermissionError:
        pass
    return status


@extend_schema(responses={200: dict, 503: dict},
               description="Liveness of the portal, its database and broker; in the embedded run, of each process.")
@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def health(request):
    database = _database_status()
    broker = _broker_status()
    healthy = database["status"] == "ok"
    body = {"status": "ok" if healthy else "error", "database": database, "broker": broker}
    supervision = _supervision_status()
    if supervision is not None:
        body["processes"] = supervision
    return Response(body, status=200 if healthy else 503)


def metrics(request):
    """Prometheus text: record counts per registry (cheap COUNTs on indexed tables), graph runs and node durations."""
    from django.apps import apps

    from graphs.services import metric_lines
    from records.models import RecordModel

    lines = ["# HELP policygrid_records Number of records per registry.", "# TYPE policygrid_records gauge"]
    for model in apps.get_models():
        if issubclass(model, RecordModel):
            lines.append(f'policygrid_records{{model="{model._meta.label_lower}"}} {model.objects.count()}')
    lines += metric_lines()
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; version=0.0.4")


def not_found(request, exception=None):
    if request.path.startswith(PAGE_PREFIXES):
        from django.views.defaults import page_not_found

        return page_not_found(request, exception)
    return JsonResponse({"success": False, "message": f"no route for {request.method} {request.path}"}, status=404)


def bad_request(request, exception=None):
    """What Django refused before any view (a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, too many fields), said."""
    from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent

    if isinstance(exception, RequestDataTooBig):
        message = (f"the request body is larger than the {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes a form may "
                   "send")
    elif isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
        message = "the request sends more fields or files than a form may"
    else:
        message = "the request could not be read"
    if request.path.startswith(PAGE_PREFIXES):
        from django.shortcuts import render

        return render(request, "400.html", {"message": message}, status=400)
    from records.api.errors import error_body

    return JsonResponse(error_body(message), status=400)


def server_error(request):
    if request.path.startswith(PAGE_PREFIXES):
        from django.views.defaults import server_error as page_server_error

        return page_server_error(request)
    return JsonResponse({"success": False, "message": "internal error"}, status=500)
