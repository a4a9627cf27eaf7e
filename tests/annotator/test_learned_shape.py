"""The project's own learned shape (learning.services.shapes): the job, its triggers, the box tool using it, backups."""
from __future__ import annotations

import itertools
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotator.annotations.services import annotations_replace
from annotator.backups.services import BackupOptions, RestoreOptions, backup_write, restore
from annotator.datasets.imports import ImportOptions, dataset_import
from annotator.images.models import Image, ImageStatus
from annotator.images.services import image_submit, images_add, queue_next
from annotator.jobs.models import Job, JobKind, JobState
from annotator.jobs.services import JobContext
from annotator.learning import services
from annotator.learning.models import ModelKind, ModelVersion, ProjectShape
from annotator.learning.pixels import rgb_cache
from annotator.learning.samples import AcceptedSamples
from annotator.learning.services.assists import project_shape_path, shape_prior_path
from ml.geometry import geometry_to_mask, mask_iou, mask_to_rle
from ml.shape_prior import FORMAT_VERSION, ShapePrior
from ml.synthetic import generate_dataset
from tests.annotator.test_backup import FIXTURES
from tests.annotator.test_learning import png
from tests.datasets import FRUITS
from tests.factories import LabelFactory, png_bytes, polygon_geometry, square


@pytest.fixture(autouse=True)
def fresh_pixels_and_model_folder(settings, tmp_path):
    # Ids come round again from test to test (each test's rows are rolled back): so must the folders named after them.
    settings.ANNOTATOR_MODEL_DIR = tmp_path / "models"
    rgb_cache.clear()
    yield
    rgb_cache.clear()


@pytest.fixture
def enqueued(monkeypatch):
    """The (job, queue) pairs handed to the broker."""
    sent: list[tuple[int, str]] = []
    monkeypatch.setattr("annotator.jobs.services.job_enqueue", lambda *, job, queue: sent.append((job.pk, queue)))
    return sent


@pytest.fixture
def accepted(world):
    """Eight accepted synthetic images (discs and rectangles on textured backgrounds) whose annotations are the exact masks."""
    project = world.project
    labels = {name: LabelFactory(project=project, name=name, order=20 + i) for i, name in enumerate(["disc", "rectangle"])}
    samples = generate_dataset(8, seed=5, size=96, classes=list(labels), objects=(1, 3))
    images = images_add(project=project, sources=[(f"s{i}.png", lambda d=png(s.image): d) for i, s in enumerate(samples)]).created
    for image, sample in zip(images, samples):
        items = [{"label": labels[name].pk, "geometry": {"type": "mask", "rle": mask_to_rle(mask)}} for name, mask in sample.objects]
        annotations_replace(image=image, user=world.users["manager"], base_version=0, items=items)
    Image.objects.filter(pk__in=[i.pk for i in images]).update(status=ImageStatus.ACCEPTED)
    return images, samples


def run(job: Job) -> Job:
    """The job's service in this process (tests/integration/test_shape_job.py runs it on a real worker)."""
    result = services.project_shape_learn(job=job, ctx=JobContext(job, min_interval=0))
    Job.objects.filter(pk=job.pk).update(state=JobState.SUCCEEDED, result=result)
    job.refresh_from_db()
    return job


def _learn(world, django_capture_on_commit_callbacks) -> Job:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        response = world.client("manager").post(f"/api/projects/{world.project.pk}/learn-shape/")
    assert response.status_code == 202, response.json()
    return run(Job.objects.get(pk=response.json()["id"]))


# --------------------------------------------------------------------------------------------
# The job


def test_learning_a_shape_fits_it_on_the_accepted_masks_measures_it_held_out_and_the_box_tool_uses_it(
    world, accepted, enqueued, django_capture_on_commit_callbacks,
):
    images, samples = accepted
    objects = sum(len(s.objects) for s in samples)
    job = _learn(world, django_capture_on_commit_callbacks)

    assert job.kind == JobKind.LEARN_SHAPE and enqueued == [(job.pk, "default")]  # no torch: the default workers run it
    assert job.params == {"accepted_objects": objects, "trigger": "manual"}
    path = project_shape_path(world.project.pk)
    assert path.is_file() and path.is_relative_to(settings.ANNOTATOR_MODEL_DIR)
    assert ShapePrior.load(path).objects == objects
    learned = ProjectShape.objects.get(project=world.project)
    assert (learned.images, learned.object_count, learned.job_id) == (8, objects, job.pk)
    # Measured on images each fold's shape did not learn from: every accepted object, once.
    assists = learned.metrics["assists"]
    assert set(assists) == {"box", "grabcut", "shape"} and learned.metrics["folds"] == 5
    assert all(a["objects"] == objects and 0 < a["mean_iou"] <= 1 for a in assists.values())
    assert job.result["assists"] == assists and job.result["errors"] == []
    assert job.progress_done == job.progress_total > 0

    client = world.client("annotator")
    engines = client.get(f"/api/projects/{world.project.pk}/box-engines/").json()
    assert engines["available"] == ["grabcut", "shape"] and engines["shape_source"] == "project"
    assert engines["scores"] == {"grabcut": assists["grabcut"]["mean_iou"], "shape": assists["shape"]["mean_iou"]}
    assert engines["best"] == max(engines["scores"], key=engines["scores"].get)
    assert engines["box"] == assists["box"]["mean_iou"] and engines["objects"] == objects
    # The shape engine answers a drawn box with the object in it.
    image, sample = images[0], samples[0]
    name, truth = sample.objects[0]
    ys, xs = np.nonzero(truth)
    box = [int(xs.min()), int(ys.min()), int(xs.max() + 1 - xs.min()), int(ys.max() + 1 - ys.min())]
    label = world.project.labels.get(name=name)
    response = client.post("/api/assist/box-to-mask/", {"image": image.pk, "box": box, "engine": "shape", "label": label.pk},
                           format="json")
    assert response.status_code == 200 and response.json()["engine"] == "shape", response.json()
    mask = geometry_to_mask(response.json()["geometry"], width=image.width, height=image.height)
    assert mask_iou(mask, truth) > 0.6
    shown = client.get(f"/api/projects/{world.project.pk}/learn-shape/").json()
    assert shown["object_count"] == objects and shown["metrics"]["assists"] == assists


def test_an_unreadable_accepted_image_is_left_out_and_named(world, accepted):
    images, samples = accepted
    with open(images[3].file.path, "wb") as handle:
        handle.write(b"truncated")
    job = run(services.shape_learn_start(project=world.project, user=None, enqueue=False))
    assert [e["file"] for e in job.result["errors"]] == [images[3].original_name]
    learned = ProjectShape.objects.get(project=world.project)
    assert learned.images == 7 and learned.object_count == sum(len(s.objects) for i, s in enumerate(samples) if i != 3)


def test_learning_again_replaces_the_shape_and_its_figures(world, accepted):
    images, samples = accepted
    run(services.shape_learn_start(project=world.project, user=None, enqueue=False))
    first = ProjectShape.objects.get(project=world.project)
    Image.objects.filter(pk__in=[i.pk for i in images[:3]]).update(status=ImageStatus.SUBMITTED)
    job = run(services.shape_learn_start(project=world.project, user=None, enqueue=False))
    again = ProjectShape.objects.get(project=world.project)
    assert again.pk == first.pk and again.job_id == job.pk and again.images == 5 and again.fitted_at > first.fitted_at
    assert ShapePrior.load(project_shape_path(world.project.pk)).objects == sum(len(s.objects) for s in samples[3:])
    assert not list(project_shape_path(world.project.pk).parent.glob("*.part"))


# --------------------------------------------------------------------------------------------
# Starting it on purpose


def test_learning_a_shape_is_for_managers_and_needs_enough_accepted_objects(world, accepted, enqueued):
    images, _ = accepted
    url = f"/api/projects/{world.project.pk}/learn-shape/"
    assert world.client("annotator").post(url).status_code == 403
    assert world.client("reviewer").post(url).status_code == 403
    assert world.client("outsider").post(url).status_code == 404
    assert world.client("annotator").get(url).status_code == 404  # none learned yet
    Image.objects.filter(pk__in=[i.pk for i in images[1:]]).update(status=ImageStatus.SUBMITTED)
    response = world.client("manager").post(url)
    assert response.status_code == 400
    body = response.json()
    assert "at least 5 accepted objects on 2 or more accepted images" in body["detail"] and body["accepted_images"] == 1
    assert not Job.objects.filter(kind=JobKind.LEARN_SHAPE).exists()
    # One at a time: a second request while one is queued says which job is learning.
    Image.objects.filter(pk__in=[i.pk for i in images]).update(status=ImageStatus.ACCEPTED)
    first = world.client("manager").post(url)
    assert first.status_code == 202
    second = world.client("manager").post(url)
    assert second.status_code == 409 and second.json()["job"] == first.json()["id"]


def test_models_page_learns_the_shape_for_managers_and_shows_its_figures(world, accepted, enqueued):
    page = world.client("manager")
    page.force_login(world.users["manager"])
    url = f"/projects/{world.project.pk}/models/"
    html = page.get(url).content.decode()
    assert "Learn shape now" in html and "No shape learned" in html
    response = page.post(url, {"action": "learn_shape"})
    assert response.status_code == 302
    job = Job.objects.get(kind=JobKind.LEARN_SHAPE, project=world.project)
    run(job)
    html = page.get(url).content.decode()
    learned = ProjectShape.objects.get(project=world.project)
    assert f"Learned from {learned.object_count} accepted objects on 8 images" in html
    assert f"{learned.metrics['assists']['shape']['mean_iou']:.3f}" in html and "The box tool uses this shape" in html
    annotator = world.client("annotator")
    annotator.force_login(world.users["annotator"])
    assert "Learn shape now" not in annotator.get(url).content.decode()
    assert annotator.post(url, {"action": "learn_shape"}).status_code == 403


# --------------------------------------------------------------------------------------------
# Starting it after accepts

_colors = itertools.count(1)


def _submitted(world, objects: int) -> Image:  # type: ignore[no-untyped-def]
    k = next(_colors)
    data = png_bytes(200, 100, color=(k % 256, 40, 90))
    images_add(project=world.project, sources=[(f"acc{k}.png", lambda: data)])
    user = world.users["annotator"]
    image = queue_next(project=world.project, user=user)
    items = [{"uid": str(uuid.uuid4()), "label": world.labels[0].pk, "geometry": polygon_geometry(square(5 + 30 * i, 10, 25))}
             for i in range(objects)]
    image = annotations_replace(image=image, user=user, base_version=image.version, items=items).image
    return image_submit(image=image, user=user)


def _accept(world, image: Image, django_capture_on_commit_callbacks, **body) -> None:  # type: ignore[no-untyped-def]
    reviewer = world.client("reviewer")
    reviewer.post(f"/api/projects/{world.project.pk}/review/next/")
    image.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        response = reviewer.post(f"/api/images/{image.pk}/review/", {"version": image.version, "decision": "accept", **body},
                                 format="json")
    assert response.status_code == 201, response.json()


def _shape_jobs(world) -> list[Job]:  # type: ignore[no-untyped-def]
    return list(Job.objects.filter(project=world.project, kind=JobKind.LEARN_SHAPE).order_by("id"))


def test_accepts_queue_one_shape_job_at_20_objects_and_the_next_when_they_grew_by_a_quarter(
    world, enqueued, django_capture_on_commit_callbacks,
):
    for _ in range(4):
        _accept(world, _submitted(world, 4), django_capture_on_commit_callbacks)
    assert _shape_jobs(world) == []  # 16 accepted objects
    _accept(world, _submitted(world, 4), django_capture_on_commit_callbacks)
    [first] = _shape_jobs(world)
    assert first.params == {"accepted_objects": 20, "accepted_images": 5, "trigger": "accepted"} and first.created_by is None
    assert enqueued == [(first.pk, "default")]
    # The rest of the burst, while it is queued and then running: no second job.
    _accept(world, _submitted(world, 4), django_capture_on_commit_callbacks)
    Job.objects.filter(pk=first.pk).update(state=JobState.RUNNING)
    _accept(world, _submitted(world, 1), django_capture_on_commit_callbacks)
    assert _shape_jobs(world) == [first]
    # Finished (even failed: not retried on every accept), the next one waits for 25 objects.
    Job.objects.filter(pk=first.pk).update(state=JobState.FAILED)
    _accept(world, _submitted(world, 4), django_capture_on_commit_callbacks)  # 20 + 4 + 1 + 4 = 29 >= 25
    jobs = _shape_jobs(world)
    assert len(jobs) == 2 and jobs[1].params["accepted_objects"] == 29
    assert len(enqueued) == 2


def _accepted_empty(world) -> None:  # type: ignore[no-untyped-def]
    data = png_bytes(20, 20, color=(next(_colors) % 256, 1, 2))
    [image] = images_add(project=world.project, sources=[(f"empty{len(data)}-{next(_colors)}.png", lambda: data)]).created
    Image.objects.filter(pk=image.pk).update(status=ImageStatus.ACCEPTED)


def _counts_objects(world) -> bool:  # type: ignore[no-untyped-def]
    """Whether a growth check counted the accepted objects (the scan over the project's annotations)."""
    with CaptureQueriesContext(connection) as queries:
        services.shape_learn_if_grown(project=world.project)
    return any("COUNT(" in q["sql"].upper() and "annotations_annotation" in q["sql"] for q in queries.captured_queries)


def test_accepts_count_the_objects_only_when_the_accepted_images_grew_enough(world, enqueued, django_capture_on_commit_callbacks):
    for _ in range(5):
        _accept(world, _submitted(world, 4), django_capture_on_commit_callbacks)
    [first] = _shape_jobs(world)  # 20 objects on 5 images
    Job.objects.filter(pk=first.pk).update(state=JobState.SUCCEEDED)
    # 6 accepted images: fewer than 5 x 1.25, so the objects (26 now) are not even counted.
    Image.objects.filter(pk=_submitted(world, 6).pk).update(status=ImageStatus.ACCEPTED)
    assert not _counts_objects(world) and _shape_jobs(world) == [first]
    # Accepted images with nothing on them: 7 images are enough to count, and the count finds 26 >= 25.
    _accepted_empty(world)
    assert _counts_objects(world)
    second = _shape_jobs(world)[-1]
    assert second.params == {"accepted_objects": 26, "accepted_images": 7, "trigger": "accepted"}
    Job.objects.filter(pk=second.pk).update(state=JobState.SUCCEEDED)
    # Empty accepted images up to 9 (>= 7 x 1.25): counted once in vain (26 < 33), then not again
    # until the accepted images grew by CHECK_STEP.
    _accepted_empty(world)
    _accepted_empty(world)
    assert _counts_objects(world) and not _counts_objects(world)
    assert _shape_jobs(world)[-1] == second


def test_only_an_accept_that_accepts_the_image_checks_for_growth(world, enqueued, django_capture_on_commit_callbacks):
    for _ in range(4):
        Image.objects.filter(pk=_submitted(world, 6).pk).update(status=ImageStatus.ACCEPTED)  # 24 objects, accepted unreviewed
    rejected = _submitted(world, 1)
    _accept(world, rejected, django_capture_on_commit_callbacks, decision="reject", comment="The outline misses the tail.")
    world.project.required_accepts = 2
    world.project.save()
    partly = _submitted(world, 1)
    _accept(world, partly, django_capture_on_commit_callbacks)
    partly.refresh_from_db()
    assert partly.status != ImageStatus.ACCEPTED and _shape_jobs(world) == []
    world.project.required_accepts = 1
    world.project.save()
    _accept(world, _submitted(world, 1), django_capture_on_commit_callbacks)
    assert [job.params["accepted_objects"] for job in _shape_jobs(world)] == [25]


def _downgrade_to_format_2(world) -> ProjectShape:  # type: ignore[no-untyped-def]
    """The project's shape as an upgrade finds it: learned by older code (format 2: its file refused since)."""
    path = project_shape_path(world.project.pk)
    np.savez_compressed(path, version=np.array(2), weights=np.zeros(27), objects=np.array(3))
    ProjectShape.objects.filter(project=world.project).update(format_version=2)
    return ProjectShape.objects.get(project=world.project)


def test_a_shape_of_an_older_format_is_learned_again_at_the_next_accept_whatever_the_growth(
    world, accepted, enqueued, django_capture_on_commit_callbacks,
):
    learned = run(services.shape_learn_start(project=world.project, user=None, enqueue=False))
    assert ProjectShape.objects.get(project=world.project).format_version == FORMAT_VERSION
    # At its own format nothing has grown enough: an accept queues nothing.
    _accept(world, _submitted(world, 1), django_capture_on_commit_callbacks)
    assert _shape_jobs(world) == [learned]

    _downgrade_to_format_2(world)
    assert services.box_engines(world.project)["shape_source"] is None  # the box tool does without it meanwhile
    _accept(world, _submitted(world, 1), django_capture_on_commit_callbacks)
    again = _shape_jobs(world)[-1]
    assert again != learned and again.params["trigger"] == "format" and enqueued[-1] == (again.pk, "default")
    # Queued or running: the burst's other accepts queue no second one.
    _accept(world, _submitted(world, 1), django_capture_on_commit_callbacks)
    assert _shape_jobs(world)[-1] == again
    run(again)
    shape = ProjectShape.objects.get(project=world.project)
    assert shape.format_version == FORMAT_VERSION and services.box_engines(world.project)["shape_source"] == "project"


def test_a_failed_relearn_of_an_older_shape_is_not_retried_on_every_accept(world, accepted, enqueued, django_capture_on_commit_callbacks):
    run(services.shape_learn_start(project=world.project, user=None, enqueue=False))
    _downgrade_to_format_2(world)
    _accept(world, _submitted(world, 1), django_capture_on_commit_callbacks)
    failed = _shape_jobs(world)[-1]
    Job.objects.filter(pk=failed.pk).update(state=JobState.FAILED)
    _accept(world, _submitted(world, 1), django_capture_on_commit_callbacks)
    assert _shape_jobs(world)[-1] == failed  # back to the growth rule


def test_the_format_is_read_from_the_file_by_the_migration_and_by_restore(world, accepted, tmp_path):
    from importlib import import_module

    from django.apps import apps

    run(services.shape_learn_start(project=world.project, user=None, enqueue=False))
    _downgrade_to_format_2(world)
    ProjectShape.objects.update(format_version=None)
    import_module("annotator.learning.migrations.0003_projectshape_format_version").record_formats(apps, None)
    assert ProjectShape.objects.get(project=world.project).format_version == 2
    project_shape_path(world.project.pk).write_bytes(b"PK\x03\x04 a truncated zip")
    import_module("annotator.learning.migrations.0003_projectshape_format_version").record_formats(apps, None)
    assert ProjectShape.objects.get(project=world.project).format_version is None

    _downgrade_to_format_2(world)
    archive = tmp_path / "old-shape.zip"
    backup_write(project=world.project, out=archive, options=BackupOptions())
    restored = restore(path=archive, archive_name=archive.name, options=RestoreOptions(name="Copy")).project
    assert ProjectShape.objects.get(project=restored).format_version == 2


def test_importing_accepted_photos_queues_one_shape_job_that_learns_them(world, enqueued, django_capture_on_commit_callbacks):
    """fruits_nuts (18 real photos, 165 objects) imported as training data: the shape learns it without a training round."""
    with django_capture_on_commit_callbacks(execute=True):
        result = dataset_import(project=world.project, fmt="coco", path=FRUITS / "trainval.json",
                                options=ImportOptions.from_dict({"status": "accepted"}), user=None)
    assert result["annotation_count"] == 165
    [job] = _shape_jobs(world)
    assert job.params == {"accepted_objects": 165, "accepted_images": 18, "trigger": "accepted"} and enqueued == [(job.pk, "default")]
    run(job)
    learned = ProjectShape.objects.get(project=world.project)
    assists = learned.metrics["assists"]
    assert learned.images == 18 and learned.metrics["folds"] == 5 and assists["shape"]["objects"] == 165
    # Held out on real photos it must beat the plain box by far (bench/assist.py: 0.89 against GrabCut's 0.90).
    assert assists["shape"]["mean_iou"] > 0.8 > assists["box"]["mean_iou"]


# --------------------------------------------------------------------------------------------
# The box tool: the newer shape, files gone or broken


def _version_with_shape(world, accepted, tmp_path: Path) -> ModelVersion:  # type: ignore[no-untyped-def]
    images, _ = accepted
    checkpoint = Path(settings.ANNOTATOR_MODEL_DIR) / f"project-{world.project.pk}" / "train-job-1.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.write_bytes(b"weights")
    ShapePrior.fit(AcceptedSamples(images[:4])).save(shape_prior_path(checkpoint))
    version = ModelVersion.objects.create(
        project=world.project, name="v1", kind=ModelKind.TRAINED, checkpoint=str(checkpoint), class_names=["disc", "rectangle"],
        metrics={"assists": {"box": {"mean_iou": 0.5, "objects": 3}, "grabcut": {"mean_iou": 0.55, "objects": 3},
                             "shape": {"mean_iou": 0.61, "objects": 3}, "model": {"mean_iou": 0.4, "objects": 3}}},
    )
    services.model_version_activate(version=version)
    return version


def test_the_box_tool_uses_the_newer_of_the_projects_shape_and_the_active_versions(world, accepted, tmp_path):
    version = _version_with_shape(world, accepted, tmp_path)
    client = world.client("annotator")
    url = f"/api/projects/{world.project.pk}/box-engines/"
    engines = client.get(url).json()
    assert engines["shape_source"] == "version" and engines["scores"]["shape"] == 0.61 and engines["best"] == "shape"

    run(services.shape_learn_start(project=world.project, user=None, enqueue=False))
    learned = ProjectShape.objects.get(project=world.project)
    engines = client.get(url).json()
    assert engines["shape_source"] == "project"
    assert engines["available"] == ["grabcut", "shape", "model"]
    # Its own figures for the shape and GrabCut; the model's from the version's round.
    assert engines["scores"] == {"grabcut": learned.metrics["assists"]["grabcut"]["mean_iou"],
                                 "shape": learned.metrics["assists"]["shape"]["mean_iou"], "model": 0.4}

    # A newer training round wins again.
    ModelVersion.objects.filter(pk=version.pk).update(created_at=learned.fitted_at + timedelta(minutes=1))
    assert client.get(url).json()["shape_source"] == "version"


def test_a_lost_or_broken_shape_file_is_a_409_that_says_so(world, accepted):
    images, _ = accepted
    run(services.shape_learn_start(project=world.project, user=None, enqueue=False))
    client = world.client("annotator")
    body = {"image": images[0].pk, "box": [10, 10, 30, 30], "engine": "shape"}
    path = project_shape_path(world.project.pk)
    for broken in (b"not a shape", path.read_bytes()[:200]):  # garbage, and a zip cut short
        path.write_bytes(broken)
        response = client.post("/api/assist/box-to-mask/", body, format="json")
        assert response.status_code == 409 and "The project's learned shape cannot be read" in response.json()["detail"]
    # Not offered either: the box tool's default does not answer every box with that 409.
    engines = client.get(f"/api/projects/{world.project.pk}/box-engines/").json()
    assert engines["available"] == ["grabcut"] and engines["shape_source"] is None and engines["best"] == "grabcut"
    path.unlink()
    response = client.post("/api/assist/box-to-mask/", body, format="json")
    assert response.status_code == 409 and "its file is gone" in response.json()["detail"]
    engines = client.get(f"/api/projects/{world.project.pk}/box-engines/").json()
    assert engines["available"] == ["grabcut"] and engines["shape_source"] is None
    # Without any learned shape, asking for it is a 400 that says how to get one.
    ProjectShape.objects.all().delete()
    response = client.post("/api/assist/box-to-mask/", body, format="json")
    assert response.status_code == 400 and "Learn shape now" in response.json()["detail"]


# --------------------------------------------------------------------------------------------
# Backups


def test_backups_carry_the_projects_shape_and_the_versions_and_restore_them_into_the_new_project(world, accepted, tmp_path):
    version = _version_with_shape(world, accepted, tmp_path)
    run(services.shape_learn_start(project=world.project, user=None, enqueue=False))
    learned = ProjectShape.objects.get(project=world.project)
    ModelVersion.objects.filter(pk=version.pk).update(created_at=timezone.now() - timedelta(days=1))
    archive = tmp_path / "with-models.zip"
    backup_write(project=world.project, out=archive, options=BackupOptions(models=True))

    restored = restore(path=archive, archive_name=archive.name, options=RestoreOptions(name="Copy")).project

    copy = ProjectShape.objects.get(project=restored)
    assert (copy.images, copy.object_count, copy.metrics) == (learned.images, learned.object_count, learned.metrics)
    assert copy.fitted_at == learned.fitted_at and copy.job is not None and copy.job.project_id == restored.pk
    assert project_shape_path(restored.pk).read_bytes() == project_shape_path(world.project.pk).read_bytes()
    restored_version = ModelVersion.objects.get(project=restored)
    assert f"project-{restored.pk}" in restored_version.checkpoint
    assert shape_prior_path(restored_version.checkpoint).read_bytes() == shape_prior_path(version.checkpoint).read_bytes()
    engines = services.box_engines(restored)
    assert engines["shape_source"] == "project" and engines["scores"]["shape"] == learned.metrics["assists"]["shape"]["mean_iou"]

    # Without the weights the version's shape stays behind; the project's always goes.
    archive = tmp_path / "rows-only.zip"
    backup_write(project=world.project, out=archive, options=BackupOptions(models=False))
    with zipfile.ZipFile(archive) as opened:
        names = opened.namelist()
    assert "shapes/project.shape.npz" in names and not [n for n in names if n.startswith("models/")]
    bare = restore(path=archive, archive_name=archive.name, options=RestoreOptions(name="Copy 2")).project
    assert project_shape_path(bare.pk).is_file() and ProjectShape.objects.filter(project=bare).exists()


def test_a_restore_that_fails_removes_the_shape_file_it_wrote(world, accepted, tmp_path, monkeypatch):
    run(services.shape_learn_start(project=world.project, user=None, enqueue=False))
    archive = tmp_path / "p.zip"
    backup_write(project=world.project, out=archive, options=BackupOptions())
    before = set(Path(settings.ANNOTATOR_MODEL_DIR).rglob("shape.npz"))
    from annotator.backups import services as backups

    original = backups._restore_local

    def fail_after_writing(*args, **kwargs):  # type: ignore[no-untyped-def]
        original(*args, **kwargs)
        raise OSError("No space left on device")

    monkeypatch.setattr(backups, "_restore_local", fail_after_writing)
    with pytest.raises(OSError, match="No space left"):
        restore(path=archive, archive_name=archive.name, options=RestoreOptions(name="Copy"))
    assert set(Path(settings.ANNOTATOR_MODEL_DIR).rglob("shape.npz")) == before
    assert not ProjectShape.objects.exclude(project=world.project).exists()


def test_an_archive_from_before_learned_shapes_restores_without_one(db):
    fixture = FIXTURES / "project-v1.zip"
    project = restore(path=fixture, archive_name=fixture.name, options=RestoreOptions(name="From v1", create_users=True)).project
    assert not ProjectShape.objects.filter(project=project).exists()
    assert not project_shape_path(project.pk).exists()
    engines = services.box_engines(project)
    assert engines["shape_source"] is None and "shape" not in engines["available"]
