"""The API's JSON parser: orjson, with the body size capped and the content checked (core.jsoncheck).

Every JSON body of the API comes through here, so NUL characters and runaway nesting are refused
with a 400 (the same on SQLite and PostgreSQL) before any serializer or service sees them.
"""
from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from drf_orjson_renderer.parsers import ORJSONParser
from rest_framework.exceptions import ParseError

from .errors import RequestTooLarge
from .jsoncheck import json_problem, json_text_is_plain


class JSONParser(ORJSONParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        limit = settings.ANNOTATOR_MAX_JSON_BYTES
        # The request-size middleware already refused a larger Content-Length; reading one byte
        # past the limit keeps a body of unknown length from being read whole.
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise RequestTooLarge(limit)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        problem = None if json_text_is_plain(body) else json_problem(data)
        if problem:
            raise ParseError(f"JSON body refused: {problem}")
        return data
