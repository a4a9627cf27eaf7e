"""Request limits applied before any view reads the body: size of non-multipart bodies, NULs in query strings."""
from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from .errors import RequestTooLarge


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


class RequestLimitsMiddleware:
    """413 for a JSON (or any other non-multipart) body over ANNOTATOR_MAX_JSON_BYTES, read or not.

    Django's DATA_UPLOAD_MAX_MEMORY_SIZE covers form fields only; a JSON body is read whole by
    the parser. The Content-Length is checked here, before a byte is read; the JSON parser caps
    what it reads as well (core.parsers). Multipart uploads stream to disk and have their own
    limits (file counts, zip sizes).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.ANNOTATOR_MAX_JSON_BYTES
        content_type = request.META.get("CONTENT_TYPE", "")
        if not content_type.startswith("multipart/form-data") and _content_length(request) > limit:
            error = RequestTooLarge(limit)
            if is_api(request):
                return JsonResponse({"detail": error.detail, **error.extra}, status=413)
            return HttpResponse(error.detail, status=413, content_type="text/plain; charset=utf-8")
        if is_api(request) and b"\x00" in unquote_to_bytes(request.META.get("QUERY_STRING", "")):
            # PostgreSQL refuses NUL in any text it is asked to compare; SQLite would answer.
            return JsonResponse({"detail": "Query parameters may not contain a NUL character."}, status=400)
        return self.get_response(request)


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
