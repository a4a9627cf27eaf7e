"""The API against its own OpenAPI schema (schemathesis): whatever a client sends, never a 5xx.

The server runs on loopback (pytest-django's live_server); requests carry a manager's DRF token,
so they reach the views instead of stopping at authentication. A seeded project with an image,
labels, a revision and a job gives half of the generated requests ids that exist, so that the
code behind the access checks runs too; the other half use whatever ids hypothesis draws.
"""
from __future__ import annotations

import itertools

import pytest
import schemathesis
from django.core.files.base import ContentFile
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error

from annotator.annotations.services import annotations_replace
from annotator.jobs.models import Job
from tests.factories import make_images, polygon_geometry, square

# Bounded so the whole run stays around a minute: ~60 operations x this many examples.
MAX_EXAMPLES = 6

# Which seeded id a path parameter gets, by the first segment of the path.
_RESOURCE = {"projects": "project", "images": "image", "labels": "label", "members": "member", "jobs": "job"}


@pytest.fixture
def seeded(transactional_db, world) -> dict[str, int]:
    # Committed rows (transactional_db), or the live server's own connection would not see them.
    image = make_images(world.project, 1, width=64, height=48)[0]
    annotations_replace(
        image=image, user=world.users["manager"], base_version=0,
        items=[{"label": world.labels[0].pk, "geometry": polygon_geometry(square(5, 5, 20))}],
    )
    job = Job.objects.create(kind="export", project=world.project, created_by=world.users["manager"])
    job.result_file.save("result.txt", ContentFile(b"x"), save=True)
    member = world.project.memberships.get(user=world.users["annotator2"])
    token = Token.objects.create(user=world.users["manager"])
    return {
        "project": world.project.pk, "image": image.pk, "label": world.labels[1].pk, "member": member.pk,
        "job": job.pk, "version": 1, "token": token.key,  # type: ignore[dict-item]
    }


@pytest.fixture
def api_schema(live_server, seeded):  # type: ignore[no-untyped-def]
    return schemathesis.from_uri(f"{live_server.url}/api/schema/", base_url=live_server.url)


schema = schemathesis.from_pytest_fixture("api_schema")


def _use_seeded_ids(case, seeded: dict) -> None:  # type: ignore[no-untyped-def]
    """Point every other generated case at objects that exist (never for DELETE: keep the seed)."""
    if next(_turn) % 2 or case.method.upper() == "DELETE":
        return
    resource = case.path.strip("/").split("/")[1]
    for name in ("id", "pk"):  # drf-spectacular names Django's `pk` "id" in the schema
        if case.path_parameters and name in case.path_parameters and resource in _RESOURCE:
            case.path_parameters[name] = seeded[_RESOURCE[resource]]
    if case.path_parameters and "version" in case.path_parameters:
        case.path_parameters["version"] = seeded["version"]
    if isinstance(case.body, dict) and "image" in case.body:  # the assist endpoints name the image in the body
        case.body["image"] = seeded["image"]


_turn = itertools.count()


def not_a_server_error_unless_documented(ctx, response, case):  # type: ignore[no-untyped-def]
    """No 5xx, except 501 where the operation documents it (SAM on a server without a checkpoint)."""
    documented = case.operation.definition.raw.get("responses", {})
    if response.status_code == 501 and "501" in documented:
        return None
    return not_a_server_error(ctx, response, case)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_never_answers_with_a_server_error(case, seeded) -> None:  # type: ignore[no-untyped-def]
    _use_seeded_ids(case, seeded)
    # Connection: close: schemathesis keeps the responses of failing cases, and with them their
    # kept-alive sockets, each holding a live-server thread and its PostgreSQL connection; one
    # real failure would otherwise end in "too many clients" 500s everywhere after it.
    headers = {"Authorization": f"Token {seeded['token']}", "Connection": "close"}
    case.call_and_validate(headers=headers, checks=(not_a_server_error_unless_documented,), timeout=30)
