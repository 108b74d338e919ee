"""The error classes of the data plane, one per `error_type` of docs/api.md §1."""

from __future__ import annotations

from typing import Any


class PolicyGridError(Exception):
    """Base of every error the SDK raises; carries the envelope's `error_type` and HTTP status.

    `errors` maps a field or dotted path to the reasons it was refused, as in the API envelope.
    """

    error_type: str = "error"
    status: int = 500

    def __init__(
        self,
        message: str,
        *,
        errors: dict[str, list[str]] | None = None,
        status: int | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        # The portal client keeps the status and error_type a server sent, even one we have no class for.
        if status is not None:
            self.status = status
        if error_type is not None:
            self.error_type = error_type

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"success": False, "message": self.message, "error_type": self.error_type}
        if self.errors:
            body["errors"] = self.errors
        return body

    def __str__(self) -> str:
        return self.message


class InputInvalid(PolicyGridError):
    error_type = "input_invalid"
    status = 400


class NotFound(PolicyGridError):
    error_type = "not_found"
    status = 404


class NotExecutable(PolicyGridError):
    error_type = "not_executable"
    status = 409


class PolicyError(PolicyGridError):
    """The policy raised (or its process died); `exception_type` names the policy's own exception."""

    error_type = "policy_error"
    status = 500

    def __init__(self, message: str, *, exception_type: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.exception_type = exception_type


class OutputInvalid(PolicyGridError):
    error_type = "output_invalid"
    status = 500


class ResourceLimit(PolicyGridError):
    error_type = "resource_limit"
    status = 500


class IntegrityError(PolicyGridError):
    error_type = "integrity"
    status = 500


class Unavailable(PolicyGridError):
    error_type = "unavailable"
    status = 502


class Timeout(PolicyGridError):
    error_type = "timeout"
    status = 504


class PackageError(PolicyGridError):
    """A package (archive, layout, source, requirements, URL) was refused."""

    error_type = "package_invalid"
    status = 400


class PackageTooLarge(PackageError):
    """The download or the unpacked archive is over its configured cap (docs/api.md §1: 413)."""

    status = 413


class PackageRequired(PolicyGridError):
    """An executor lacks the package of ``code_digest``: upload it (``PUT /packages/<digest>``), then call again."""

    error_type = "package_required"
    status = 409

    def __init__(self, message: str, *, code_digest: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.code_digest = code_digest


ERROR_CLASSES: dict[str, type[PolicyGridError]] = {
    cls.error_type: cls
    for cls in (
        InputInvalid,
        NotFound,
        NotExecutable,
        PolicyError,
        OutputInvalid,
        ResourceLimit,
        IntegrityError,
        Unavailable,
        Timeout,
        PackageError,
        PackageRequired,
    )
}
