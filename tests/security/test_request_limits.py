"""Unbounded input: request bodies are capped before they are read, and API errors are always JSON.

Reproduces the report: 100 MB JSON bodies were accepted by the annotations PUT and by the label
list's POST (DATA_UPLOAD_MAX_MEMORY_SIZE does not apply to JSON); a 100 MB form body got an HTML 400.
"""
from __future__ import annotations

import io
import math

import orjson
import pytest
from django.conf import settings
from django.test import RequestFactory
from django.urls import URLPattern
from rest_framework.views import APIView

from annotator import api_urls
from annotator.core import error_views
from annotator.core.errors import RequestTooLarge
from annotator.core.parsers import JSONParser
from tests.factories import make_images, polygon_geometry

pytestmark = pytest.mark.django_db

MB = 1024 * 1024


def _padded_json(size: int) -> bytes:
    """A valid JSON object of `size` bytes (a long string field)."""
    head, tail = b'{"name": "big", "pad": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def test_default_json_limit_is_32_mb() -> None:
    assert settings.ANNOTATOR_MAX_JSON_BYTES == 32 * MB


@pytest.mark.parametrize("where", ["annotations", "labels"])
def test_json_body_over_the_limit_gets_a_413_naming_the_limit(world, image, where: str) -> None:
    url = f"/api/images/{image.pk}/annotations/" if where == "annotations" else f"/api/projects/{world.project.pk}/labels/"
    method = "PUT" if where == "annotations" else "POST"
    body = _padded_json(settings.ANNOTATOR_MAX_JSON_BYTES + 1)
    response = world.client("manager").generic(method, url, body, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json()["limit_bytes"] == 32 * MB
    assert "32 MB" in response.json()["detail"]
    assert not world.project.labels.filter(name="big").exists()


def test_form_body_over_the_limit_gets_a_json_413(world) -> None:
    body = b"name=big&pad=" + b"x" * (100 * MB)
    response = world.client("manager").generic(
        "POST", f"/api/projects/{world.project.pk}/labels/", body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 413
    assert response.json()["limit_bytes"] == settings.ANNOTATOR_MAX_JSON_BYTES


def test_limit_is_configurable(world, settings) -> None:
    settings.ANNOTATOR_MAX_JSON_BYTES = 1000
    client = world.client("manager")
    url = f"/api/projects/{world.project.pk}/labels/"
    assert client.generic("POST", url, _padded_json(1001), content_type="application/json").status_code == 413
    assert client.generic("POST", url, _padded_json(999), content_type="application/json").status_code == 201


def test_parser_stops_reading_a_body_of_unknown_length_at_the_limit(settings) -> None:
    """A body whose Content-Length the middleware could not check (none given) is still capped."""
    settings.ANNOTATOR_MAX_JSON_BYTES = 1000

    class Endless(io.RawIOBase):
        read_sizes: list[int] = []

        def read(self, size: int = -1) -> bytes:
            self.read_sizes.append(size)
            return b" " * (size if size > 0 else 10 * MB)

    stream = Endless()
    with pytest.raises(RequestTooLarge):
        JSONParser().parse(stream)
    assert stream.read_sizes == [1001]


def test_a_2000_polygon_50_vertex_save_fits_and_is_accepted(world) -> None:
    image = make_images(world.project, 1, width=4000, height=3000)[0]
    label = world.labels[0].pk
    annotations = []
    for index in range(2000):
        x, y = 40 + (index % 50) * 78, 40 + (index // 50) * 70
        ring = [[round(x + 30 + 30 * math.cos(k * math.tau / 50), 3), round(y + 30 + 30 * math.sin(k * math.tau / 50), 3)]
                for k in range(50)]
        annotations.append({"label": label, "geometry": polygon_geometry(ring)})
    body = orjson.dumps({"version": 0, "annotations": annotations})
    assert len(body) < settings.ANNOTATOR_MAX_JSON_BYTES / 4
    response = world.client("manager").generic(
        "PUT", f"/api/images/{image.pk}/annotations/", body, content_type="application/json"
    )
    assert response.status_code == 200, response.content[:500]
    assert len(response.json()["annotations"]) == 2000


def test_every_api_view_parses_json_with_the_limited_parser() -> None:
    for pattern in api_urls.urlpatterns:
        if not isinstance(pattern, URLPattern):
            continue
        view = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
        if view is None or not issubclass(view, APIView):
            continue
        json_parsers = [p for p in view.parser_classes if "json" in p.media_type]
        assert all(p is JSONParser for p in json_parsers), f"{pattern.pattern}: {json_parsers}"


# --- API errors are JSON, also where Django (not DRF) answers ------------------------------------


def test_unknown_api_url_is_a_json_404(world) -> None:
    response = world.client("manager").get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_too_many_form_fields_is_a_json_400(world) -> None:
    body = "&".join(f"f{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)).encode()
    response = world.client("manager").generic(
        "POST", f"/api/projects/{world.project.pk}/labels/", body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"


def test_django_error_pages_under_api_are_json_and_elsewhere_html() -> None:
    api, page = RequestFactory().get("/api/projects/"), RequestFactory().get("/projects/")
    for view, args, code in [
        (error_views.bad_request, (Exception(),), 400),
        (error_views.permission_denied, (Exception(),), 403),
        (error_views.page_not_found, (Exception(),), 404),
        (error_views.server_error, (), 500),
        (error_views.csrf_failure, (), 403),
    ]:
        answer = view(api, *args)
        assert answer.status_code == code and answer["Content-Type"] == "application/json", view.__name__
        assert view(page, *args)["Content-Type"].startswith("text/html"), view.__name__


def test_request_django_refuses_before_any_view_is_a_json_400(world) -> None:
    # An unknown Host header: Django answers (handler400), not DRF.
    response = world.client("manager").get("/api/projects/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
