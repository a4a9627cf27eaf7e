"""OpenAPI generation (drf-spectacular): error responses and request media types, declared in one place."""
from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """The body of every error response (core.errors.exception_handler, core.error_views).

    Some errors add fields of their own next to these: a 413 gives `limit_bytes`, a 503 the
    `reason`, a refused object of a save the `object` it was about.
    """

    detail = serializers.CharField(help_text="What went wrong, in words for a person.")
    errors = serializers.JSONField(
        required=False, help_text="400 on invalid input: DRF's messages, keyed by field (and by index in lists).",
    )
    current_version = serializers.IntegerField(
        required=False, help_text="409 on a save based on a stale version: the version to reload and merge with.",
    )


# Every operation can answer these: bad input, no or bad credentials, a role that does not allow
# it, an id that does not exist (or is not visible to the caller).
COMMON_ERRORS = ("400", "401", "403", "404")
# Operations that change something can also meet a conflicting state or an oversized body.
WRITE_ERRORS = ("409", "413")
_WRITES = {"POST", "PUT", "PATCH", "DELETE"}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema, with the error responses added to each operation and one
    media type per request body.

    A status an operation declares itself (a 501 with its own description, say) is kept.
    """

    def map_parsers(self) -> list[Any]:
        """One media type per request body: JSON where the view parses it, else multipart.

        The views also accept forms, but nested JSON (an annotation set) cannot travel as one,
        and a client offered three encodings of the same body has no way to choose.
        """
        media_types = super().map_parsers()
        for preferred in ("application/json", "multipart/form-data"):
            if preferred in media_types:
                return [preferred]
        return media_types

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        statuses = COMMON_ERRORS + (WRITE_ERRORS if self.method in _WRITES else ())
        for status in statuses:
            if status not in responses:
                responses[status] = self._get_response_for_code(ErrorSerializer, status, direction=direction)
        return dict(sorted(responses.items()))
