"""Refuses oversized API bodies with 413 before anything reads them (docs/api.md §1 limits), and chunked ones
with 411."""
from django.conf import settings
from django.http import JsonResponse

# Multipart uploads have their own, larger limit.
UPLOAD_PATHS = ("/upload_asset",)


class ApiBodyLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.META.get("HTTP_TRANSFER_ENCODING", "identity").strip().lower() != "identity":
            # Under WSGI, Django reads CONTENT_LENGTH bytes of a body: a chunked body has none, so it read as
            # empty, and POST /policy/query answered every record instead of the filtered ones. Refused, as
            # RFC 9110 §15.5.12 allows, whatever the server in front.
            return JsonResponse({"success": False, "message": "send the request body with a Content-Length header: "
                                 "chunked transfer encoding is not accepted"}, status=411)
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
