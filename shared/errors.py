"""One error hierarchy for every service.

Business code raises ``AppError`` subclasses; each service renders them the same way, as
RFC 9457 problem+json (``type``, ``title``, ``status``, ``detail``, ``code`` and, for invalid input,
``errors``: one entry per field).  Expected outcomes are never 500s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class FieldError:
    """What is wrong with one field of the input."""

    field: str
    message: str
    code: str = "invalid"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": self.code}


@dataclass
class AppError(Exception):
    """Base for every expected failure.  ``code`` is stable and machine-readable."""

    detail: str
    errors: list[FieldError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://quita.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [e.as_dict() for e in self.errors]
        return body


class ValidationFailed(AppError):
    code = "validation_failed"
    status = 422
    title = "Invalid input"


class BadRequest(AppError):
    code = "bad_request"
    status = 400
    title = "Bad request"


class Unauthorized(AppError):
    code = "unauthorized"
    status = 401
    title = "Unauthorized"


class Forbidden(AppError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class NotFound(AppError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(AppError):
    code = "conflict"
    status = 409
    title = "Conflict"


class PayloadTooLarge(AppError):
    code = "payload_too_large"
    status = 413
    title = "Payload too large"


class TooManyRequests(AppError):
    code = "too_many_requests"
    status = 429
    title = "Too many requests"


class ServiceUnavailable(AppError):
    code = "service_unavailable"
    status = 503
    title = "Service unavailable"
