"""The OpenAPI schema tells the truth: every response the API gives matches what the schema says.

First the lies that were found, one test each (lists documented as arrays but answering pages,
nulls the schema did not allow, error statuses it did not mention). Then schemathesis drives
every operation against a live server with an admin's token and checks each response: its status
is documented, its content type and headers are those documented, and its body validates against
the documented schema. Path ids point at seeded objects, so that most answers are the successful
ones whose bodies matter to a client.
"""
from __future__ import annotations

import hashlib
import importlib
import io
import itertools
import json
import subprocess
import sys
import threading
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
import schemathesis
from django.core.files.base import ContentFile
from django.db import connections
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from annotator.annotations.services import annotations_replace
from annotator.datasets.services import ExportOptions, dataset_export
from annotator.images.models import Image
from annotator.images.services import image_submit, images_add
from annotator.jobs.models import Job
from annotator.jobs.services import job_execute
from annotator.learning.models import ModelVersion
from annotator.projects.models import Project
from annotator.review.models import ReviewComment
from tests.conftest import World
from tests.factories import LabelFactory, MembershipFactory, ProjectFactory, make_images, png_bytes, polygon_geometry, square


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def _resolve(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _body_schema(openapi: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    response = openapi["paths"][path][method]["responses"][status]
    return _resolve(openapi, response["content"]["application/json"]["schema"])


def test_the_job_list_is_documented_as_the_page_it_answers(world, openapi) -> None:
    page = world.client("manager").get("/api/jobs/").json()
    documented = _body_schema(openapi, "/api/jobs/", "get", "200")
    assert documented["type"] == "object", "documented as an array, but the answer is a page"
    assert set(documented["properties"]) == set(page) == {"count", "next", "previous", "results"}
    assert _resolve(openapi, documented["properties"]["results"]["items"]) == openapi["components"]["schemas"]["Job"]
    assert {p["name"] for p in openapi["paths"]["/api/jobs/"]["get"]["parameters"]} >= {"page", "project", "state", "kind"}


def test_the_image_list_is_documented_as_the_page_it_answers(world, image, openapi) -> None:
    page = world.client("manager").get(f"/api/projects/{world.project.pk}/images/").json()
    documented = _body_schema(openapi, "/api/projects/{id}/images/", "get", "200")
    assert set(documented["properties"]) == set(page) == {"count", "next", "previous", "results"}


@pytest.mark.parametrize("method", ["get", "patch"])
def test_every_null_an_image_answers_with_is_documented_as_nullable(world, image, openapi, method: str) -> None:
    manager = world.client("manager")
    answer = manager.get(f"/api/images/{image.pk}/") if method == "get" else manager.patch(
        f"/api/images/{image.pk}/", {"priority": 3}, format="json"
    )
    assert answer.status_code == 200
    nulls = {name for name, value in answer.json().items() if value is None}
    assert nulls >= {"assignee", "reviewer", "uncertainty", "submitted_at"}
    properties = _body_schema(openapi, "/api/images/{id}/", method, "200")["properties"]
    assert {name for name in nulls if not properties[name].get("nullable")} == set()


def test_every_operation_documents_its_error_responses_with_the_error_body(openapi) -> None:
    error = {"$ref": "#/components/schemas/Error"}
    missing = []
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            expected = {"400", "401", "403", "404"} | ({"409", "413"} if method != "get" else set())
            for status in sorted(expected):
                response = operation["responses"].get(status)
                if response is None or response["content"]["application/json"]["schema"] != error:
                    missing.append(f"{method.upper()} {path} {status}")
    assert missing == []
    assert openapi["components"]["schemas"]["Error"]["required"] == ["detail"]


def test_error_answers_have_the_documented_error_body(world, image, openapi) -> None:
    error = openapi["components"]["schemas"]["Error"]
    manager = world.client("manager")
    answers = {
        400: manager.get("/api/jobs/?project=x"),
        403: world.client("annotator").post("/api/projects/", {"name": "x"}, format="json"),
        404: manager.get("/api/images/999999/"),
        409: manager.put(f"/api/images/{image.pk}/annotations/", {"version": 5, "annotations": []}, format="json"),
    }
    for status, answer in answers.items():
        assert answer.status_code == status, (status, answer.json())
        body = answer.json()
        assert set(error["required"]) <= set(body) <= set(error["properties"]) | {"updated_by", "updated_at"}, body
        assert isinstance(body["detail"], str)
    assert answers[409].json()["current_version"] == 0


# ~60 operations x this many examples keeps the run well under a minute.
MAX_EXAMPLES = 5

# Which seeded object a path's `id` names, by the path's first segment after /api/.
_RESOURCE = {
    "projects": "project", "images": "image", "labels": "label", "members": "member", "jobs": "job",
    "datasets": "dataset", "comments": "comment", "models": "model", "backups": "backup",
}


@dataclass
class Seed:
    """Objects of every kind the API names in its paths, and what the run saw (statuses by operation)."""

    world: World
    ids: dict[str, int]
    token: str
    statuses: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))

    def id_for(self, resource: str, method: str) -> int:
        # A DELETE gets an object of its own, so that the operations after it still find theirs.
        return self._disposable(resource) if method == "DELETE" else self.ids[resource]

    def _disposable(self, resource: str) -> int:
        project = self.world.project
        if resource == "project":
            return ProjectFactory().pk
        if resource == "image":
            return images_add(project=project, sources=[(f"d{next(_colors)}.png", _unique_png)]).created[0].pk
        if resource == "label":
            return LabelFactory(project=project).pk
        if resource == "member":
            return MembershipFactory(project=project, role="annotator").pk
        if resource == "backup":
            return _backup_of(project).pk
        return self.ids[resource]


_colors = itertools.count(1)


def _backup_of(project):  # type: ignore[no-untyped-def]
    from annotator.backups.services import BackupOptions, backup_create

    return backup_create(project=project, options=BackupOptions(images=False))


def _unique_png() -> bytes:
    k = next(_colors)
    return png_bytes(16, 16, color=(k % 256, (k // 256) % 256, 201))


@pytest.fixture
def seeded(transactional_db, world) -> Iterator[Seed]:
    # Committed rows (transactional_db): the live server reads them on its own connection.
    # An image the annotator outlined and submitted (for the review operations), one still new
    # (for the queue), a comment, a dataset version, a finished job with a file, a model.
    image, _new = make_images(world.project, 2, width=64, height=48)
    annotations_replace(
        image=image, user=world.users["annotator"], base_version=0,
        items=[{"label": world.labels[0].pk, "geometry": polygon_geometry(square(5, 5, 20))}],
    )
    image_submit(image=image, user=world.users["annotator"])
    version = dataset_export(project=world.project, options=ExportOptions.from_dict({"status": "all"}), name="v1")
    job = Job.objects.create(kind="export", project=world.project, created_by=world.users["manager"])
    job.result_file.save("result.txt", ContentFile(b"x"), save=True)
    comment = ReviewComment.objects.create(image=image, author=world.users["annotator"], text="Check the tail.", version=1)
    model = ModelVersion.objects.create(project=world.project, name="m1", kind="coco", class_names=["cat", "dog"])
    backup = _backup_of(world.project)
    ids = {
        "project": world.project.pk, "image": image.pk, "label": world.labels[1].pk,
        "member": world.project.memberships.get(user=world.users["annotator2"]).pk, "job": job.pk,
        "dataset": version.pk, "comment": comment.pk, "model": model.pk, "backup": backup.pk,
    }
    # The admin: every operation is open to them, so that the successful answers get checked too.
    seed = Seed(world=world, ids=ids, token=Token.objects.create(user=world.users["admin"]).key)
    yield seed
    succeeded = sorted(op for op, codes in seed.statuses.items() if any(200 <= code < 300 for code in codes))
    if seed.statuses:  # the schemathesis run happened (not only collection)
        assert len(succeeded) >= 0.75 * len(seed.statuses), (
            f"only {len(succeeded)} of {len(seed.statuses)} operations answered with a success: the seed no longer "
            f"reaches them, and their success bodies went unchecked. Never successful: "
            f"{sorted(set(seed.statuses) - set(succeeded))}"
        )


@pytest.fixture
def api_schema(live_server, seeded):  # type: ignore[no-untyped-def]
    return schemathesis.from_uri(f"{live_server.url}/api/schema/", base_url=live_server.url)


schema = schemathesis.from_pytest_fixture("api_schema")


def _point_at_seeded_objects(case, seed: Seed) -> None:  # type: ignore[no-untyped-def]
    resource = case.path.strip("/").split("/")[1]
    if case.path_parameters:
        if "id" in case.path_parameters and resource in _RESOURCE:
            case.path_parameters["id"] = seed.id_for(_RESOURCE[resource], case.method.upper())
        if case.path.endswith(("/archive/", "/unarchive/")):
            # Archiving makes a project read-only: a project of its own (archived already, to unarchive).
            archived = timezone.now() if case.path.endswith("/unarchive/") else None
            case.path_parameters["id"] = ProjectFactory(archived_at=archived).pk
        if resource == "projects" and case.method.upper() == "DELETE":
            case.query = {**(case.query or {}), "confirm": Project.objects.get(pk=case.path_parameters["id"]).name}
        if "version" in case.path_parameters:
            case.path_parameters["version"] = 1  # the seeded image's one revision
    if isinstance(case.body, dict):
        if "image" in case.body:  # the assist endpoints name the image in the body
            case.body["image"] = seed.ids["image"]
        if "version" in case.body and resource == "images":
            # Saves, restores and decisions name the version they build on: the current one, or
            # all of them would stop at the 409 of a stale version.
            current = Image.objects.filter(pk=case.path_parameters["id"]).values_list("version", flat=True).first()
            case.body["version"] = current if current is not None else 0


def not_a_server_error_unless_documented(ctx, response, case):  # type: ignore[no-untyped-def]
    """No 5xx, except one the operation documents (501: SAM on a server without a checkpoint)."""
    if str(response.status_code) in case.operation.definition.raw.get("responses", {}):
        return None
    return not_a_server_error(ctx, response, case)


RESPONSE_CHECKS = (
    not_a_server_error_unless_documented, status_code_conformance, content_type_conformance,
    response_headers_conformance, response_schema_conformance,
)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_response_matches_the_schema(case, seeded: Seed) -> None:  # type: ignore[no-untyped-def]
    _point_at_seeded_objects(case, seeded)
    # Connection: close: schemathesis keeps the responses of failing cases, and with them their
    # kept-alive sockets, each holding a live-server thread and its PostgreSQL connection; one
    # real failure would otherwise end in "too many clients" 500s everywhere after it.
    headers = {"Authorization": f"Token {seeded.token}", "Connection": "close"}
    response = case.call(headers=headers, timeout=30)
    seeded.statuses[f"{case.method.upper()} {case.path}"].add(response.status_code)
    case.validate_response(response, checks=RESPONSE_CHECKS, headers=headers)


# --------------------------------------------------------------------------------------------
# A client generated from the schema works: upload → annotate → export → poll → download
# --------------------------------------------------------------------------------------------

# Generator settings, not schema: it has no template for application/zip or image/* bodies,
# which are bytes to a client like application/octet-stream.
_GENERATOR_CONFIG = """\
package_name_override: annotator_client
post_hooks: []
content_type_overrides:
  application/zip: application/octet-stream
  image/*: application/octet-stream
"""


@pytest.fixture
def generated_client(tmp_path: Path, live_server) -> Iterator[Callable[[str], ModuleType]]:  # type: ignore[no-untyped-def]
    """openapi-python-client run on the schema the live server serves; `module("api.jobs.jobs_list")` imports a part."""
    schema_file = tmp_path / "openapi.json"
    schema_file.write_bytes(requests.get(f"{live_server.url}/api/schema/?format=json", timeout=30).content)
    config = tmp_path / "generator.yaml"
    config.write_text(_GENERATOR_CONFIG)
    run = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(schema_file), "--config", str(config),
         "--meta", "none", "--output-path", str(tmp_path / "annotator_client")],
        capture_output=True, text=True, timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "WARNING" not in output, f"parts of the schema could not be generated:\n{output}"
    sys.path.insert(0, str(tmp_path))
    try:
        yield lambda name: importlib.import_module(f"annotator_client.{name}" if name else "annotator_client")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == "annotator_client" or n.startswith("annotator_client.")]:
            del sys.modules[name]


def _run_queued_jobs_until(done: threading.Event) -> None:
    """A stand-in worker: executes the queued jobs in this process (no Celery worker in this test)."""
    try:
        while not done.is_set():
            for job_id in Job.objects.filter(state="queued").values_list("pk", flat=True):
                job_execute(job_id=job_id)
            done.wait(0.2)
    finally:
        connections.close_all()


def test_a_client_generated_from_the_schema_drives_upload_annotate_export_and_download(
    transactional_db, world, live_server, generated_client,
) -> None:
    module = generated_client
    models, types = module("models"), module("types")
    api = {name: module(f"api.{name}") for name in (
        "projects.projects_images_create", "images.images_annotations_retrieve", "images.images_annotations_update",
        "projects.projects_exports_create", "jobs.jobs_retrieve", "jobs.jobs_result_retrieve", "datasets.datasets_retrieve",
    )}
    token = Token.objects.create(user=world.users["manager"]).key
    cat = world.labels[0]
    client = module("").AuthenticatedClient(
        base_url=live_server.url, token=token, prefix="Token", raise_on_unexpected_status=True,
    )
    done = threading.Event()
    worker = threading.Thread(target=_run_queued_jobs_until, args=(done,), daemon=True)
    worker.start()
    try:
        with client:
            uploaded = api["projects.projects_images_create"].sync(id=world.project.pk, client=client, body=models.UploadRequest(
                files=[types.File(payload=io.BytesIO(png_bytes(64, 48)), file_name="cat.png", mime_type="image/png")],
            ))
            assert isinstance(uploaded, models.UploadResult), uploaded
            assert uploaded.created_count == 1
            image_id = uploaded.created[0]

            current = api["images.images_annotations_retrieve"].sync(id=image_id, client=client)
            assert isinstance(current, models.AnnotationSetOut) and current.version == 0 and current.annotations == []
            saved = api["images.images_annotations_update"].sync(id=image_id, client=client, body=models.AnnotationSetRequest(
                version=current.version,
                annotations=[{"label": cat.pk, "geometry": polygon_geometry(square(4, 4, 20))}],
            ))
            assert isinstance(saved, models.AnnotationSetOut), saved
            assert saved.version == 1 and [a.bbox for a in saved.annotations] == [[4.0, 4.0, 20.0, 20.0]]

            job = api["projects.projects_exports_create"].sync(id=world.project.pk, client=client, body=models.ExportRequest(
                status="all", name="from-the-generated-client",
            ))
            assert isinstance(job, models.Job), job
            deadline = time.monotonic() + 60
            while job.state not in ("succeeded", "failed", "cancelled") and time.monotonic() < deadline:
                time.sleep(0.2)
                job = api["jobs.jobs_retrieve"].sync(id=job.id, client=client)
            assert job.state == "succeeded", (job.state, job.error)

            download = api["jobs.jobs_result_retrieve"].sync(id=job.id, client=client)
            assert isinstance(download, types.File), download
            archive_bytes = download.payload.read()
            version = api["datasets.datasets_retrieve"].sync(id=job.result["dataset_version"], client=client)
            assert isinstance(version, models.DatasetVersion) and version.name == "from-the-generated-client"
    finally:
        done.set()
        worker.join(timeout=30)

    assert hashlib.sha256(archive_bytes).hexdigest() == version.sha256
    with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
        coco = json.loads(archive.read("annotations/instances_default.json"))
    assert [image["file_name"] for image in coco["images"]] == ["cat.png"]
    assert [(a["bbox"], coco["categories"][a["category_id"] - 1]["name"]) for a in coco["annotations"]] == [([4, 4, 20, 20], "cat")]
