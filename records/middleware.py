"""Refuses oversized API bodies with 413 before anything reads them (docs/api.md §1 limits)."""
from django.conf import settings
from django.http import JsonResponse

# Multipart uploads have their own, larger limit.
UPLOAD_PATHS = ("/upload_asset",)


class ApiBodyLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        length = request.META.get("CONTENT_LENGTH")
        if length:
            try:
                size = int(length)
            except ValueError:
                return JsonResponse({"success": False, "message": "invalid Content-Length header"}, status=400)
            limit = (
                settings.API_MAX_UPLOAD_BYTES
                if request.path.rstrip("/") in UPLOAD_PATHS
                else settings.API_MAX_BODY_BYTES
            )
            if size > limit and not request.path.startswith(("/admin/", "/portal/")):
                return JsonResponse(
                    {"success": False, "message": f"the request body is {size} bytes; the limit is {limit} bytes"},
                    status=413,
                )
        return self.get_response(request)
