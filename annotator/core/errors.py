"""The one domain error type and its mapping to HTTP responses."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response


class DomainError(Exception):
    """A request that breaks a business rule; `status` says how it maps to HTTP."""

    status = 400

    def __init__(self, detail: str, *, status: int | None = None, extra: dict[str, Any] | None = None):
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        self.extra = extra or {}


class NotFound(DomainError):
    status = 404


class Forbidden(DomainError):
    status = 403


class Conflict(DomainError):
    status = 409


class RequestTooLarge(DomainError):
    status = 413

    def __init__(self, limit: int):
        super().__init__(
            f"The request body is larger than the {_size(limit)} this server accepts.", extra={"limit_bytes": limit}
        )


class ServiceUnavailable(DomainError):
    """A service the request needs (the job queue's broker) is down; the client may retry later."""

    status = 503


def _size(limit: int) -> str:
    return f"{limit / 1024 / 1024:g} MB" if limit >= 1024 * 1024 else f"{limit} bytes"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    # Imported here: rest_framework.views loads the parser classes, and core.parsers uses this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DomainError):
        return Response({"detail": exc.detail, **exc.extra}, status=exc.status)
    if isinstance(exc, RequestDataTooBig):
        # Form and multipart fields past DATA_UPLOAD_MAX_MEMORY_SIZE (JSON is capped in core.parsers).
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return exception_handler(RequestTooLarge(limit), context)
    if isinstance(exc, SuspiciousOperation):
        # Too many form fields or files, a malformed multipart body: the client's fault, a 400.
        return Response({"detail": str(exc) or "Bad request."}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.ValidationError) and isinstance(response.data, dict):
        # Give every 400 a single human-readable `detail` next to the field errors.
        response.data = {"detail": _first_message(response.data), "errors": response.data}
    elif response is not None and isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": _first_message(response.data), "errors": response.data}
        response.status_code = status.HTTP_400_BAD_REQUEST
    return response


def _first_message(data: Any, path: str = "") -> str:
    if isinstance(data, dict):
        for key, value in data.items():
            prefix = path if key in ("non_field_errors", "detail") else (f"{path}.{key}" if path else str(key))
            return _first_message(value, prefix)
    if isinstance(data, list) and data:
        if isinstance(data[0], (dict, list)):
            for index, item in enumerate(data):
                if item:
                    return _first_message(item, f"{path}[{index}]")
        return _first_message(data[0], path)
    return f"{path}: {data}" if path else str(data)
