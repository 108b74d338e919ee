"""Gives every request an id, carried into the audit entries it writes and its answer's X-Request-ID."""
import contextvars
import uuid

REQUEST_ID_HEADER = "X-Request-ID"

_current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_request_id", default=None)


def current_request_id() -> str | None:
    return _current_request_id.get()


class RequestIdMiddleware:
    """Gives every request an id (the client's ``X-Request-ID`` if sane), for audit entries and responses."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        request.request_id = request_id
        token = _current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _current_request_id.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response
