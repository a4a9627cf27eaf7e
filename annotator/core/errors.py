"""The one domain error type and its mapping to HTTP responses."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


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


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response({"detail": exc.detail, **exc.extra}, status=exc.status)
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
