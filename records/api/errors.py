"""The error half of the API envelope (docs/api.md §1): every failure is {"success": false, "message", ...}."""
import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from policygrid.errors import PolicyGridError
from policygrid.wire import error_envelope
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from records.budget import QueryTimeout
from records.services import DeleteRefused, RecordInUse, in_use

logger = logging.getLogger(__name__)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "the request conflicts with the current state"
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "the request body is too large"
    default_code = "too_large"


class ApiError(exceptions.APIException):
    """An error with an explicit status, message and optional extra envelope keys (e.g. error_type)."""

    def __init__(self, message: str, status_code: int, **extra):
        super().__init__(message)
        self.status_code = status_code
        self.extra = extra


def flatten_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail → {"field" or "dotted.path": [reasons]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors" and not prefix:
                path = "non_field_errors"
            for sub_path, reasons in flatten_errors(value, path).items():
                out.setdefault(sub_path, []).extend(reasons)
    elif isinstance(detail, list | tuple):
        if all(not isinstance(item, dict | list | tuple) for item in detail):
            out.setdefault(prefix or "non_field_errors", []).extend(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                for sub_path, reasons in flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)).items():
                    out.setdefault(sub_path, []).extend(reasons)
    else:
        out.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return out


def validation_message(errors: dict[str, list[str]]) -> str:
    parts = [f"{field}: {'; '.join(reasons)}" if field != "non_field_errors" else "; ".join(reasons)
             for field, reasons in errors.items()]
    return "invalid request: " + " | ".join(parts)


def error_body(message: str, **extra) -> dict:
    return {"success": False, "message": message, **extra}


def exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "no such object")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or "not allowed")
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, (ProtectedError, RestrictedError)):
        exc = in_use(None, exc)  # a delete outside records.services: still 409, naming the dependents
    if isinstance(exc, RecordInUse):
        exc = Conflict(exc.message)
    elif isinstance(exc, DeleteRefused):
        exc = exceptions.PermissionDenied(exc.message)
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge("the request body exceeds the configured limit")
    elif isinstance(exc, QueryTimeout):
        exc = ApiError(str(exc), status.HTTP_504_GATEWAY_TIMEOUT, error_type="timeout")
    else:
        sdk_error = _sdk_error(exc)
        if sdk_error is not None:
            return sdk_error

    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled error in %s", context.get("view"), exc_info=exc)
        return Response(error_body(f"internal error: {type(exc).__name__}"), status=500)

    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
        response.data = error_body(validation_message(errors), errors=errors)
    elif isinstance(exc, ApiError):
        response.data = error_body(str(exc.detail), **exc.extra)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        if isinstance(detail, dict | list):
            errors = flatten_errors(detail)
            response.data = error_body(validation_message(errors), errors=errors)
        else:
            response.data = error_body(_sentence(str(detail)))
    return response


def _sentence(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def _sdk_error(exc):
    """Errors of the data plane carry their own status and error_type (docs/api.md §1 table)."""
    if isinstance(exc, PolicyGridError):
        return Response(error_envelope(exc), status=exc.status)
    return None
