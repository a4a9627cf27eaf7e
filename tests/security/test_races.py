"""Races: what happens when the same request arrives several times at once.

Real threads, each with its own database connection, released together by a barrier, against the
suite's database (PostgreSQL in CI). The clock is pinned where a collision needs the same second.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone
from django.utils.text import slugify

from annotator.core.errors import DomainError
from annotator.datasets.models import DatasetVersion
from annotator.datasets.services import ExportOptions, dataset_export
from annotator.images.models import Image, ImageStatus
from annotator.jobs.models import Job
from annotator.jobs.services import job_execute
from tests.factories import make_images


def _all_at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(k)` for k in range(count), one thread each, released together; their results."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[k] = work(k)
        except BaseException as exc:  # surfaced by the assertion below, not lost in the thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert not errors, errors
    return results


@pytest.fixture
def same_second(monkeypatch) -> datetime:
    """Every clock read returns the same instant: the exports below all start 'in the same second'."""
    instant = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    monkeypatch.setattr(timezone, "now", lambda: instant)
    return instant


# --------------------------------------------------------------------------------------------
# The annotate and review queues: one person, one image, however many tabs ask at once
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_one_annotator_asking_for_the_next_image_four_times_at_once_gets_one_image(world) -> None:
    make_images(world.project, 6)
    client = world.client("annotator")

    def ask(_k: int) -> int:
        response = client.post(f"/api/projects/{world.project.pk}/queue/next/")
        assert response.status_code == 200, response.status_code
        return response.data["image"]["id"]

    handed = _all_at_once(6, ask)
    assert len(set(handed)) == 1, f"one person was handed {len(set(handed))} images: {handed}"
    held = Image.objects.filter(assignee=world.users["annotator"])
    assert [(image.pk, image.status) for image in held] == [(handed[0], ImageStatus.IN_PROGRESS)]
    assert Image.objects.filter(project=world.project, status=ImageStatus.NEW, assignee__isnull=True).count() == 5


@pytest.mark.django_db(transaction=True)
def test_an_admin_outside_the_project_asking_four_times_at_once_also_gets_one_image(world) -> None:
    """Admins need no membership: the serialization cannot rest on a membership row."""
    make_images(world.project, 6)
    client = world.client("admin")

    def ask(_k: int) -> int:
        response = client.post(f"/api/projects/{world.project.pk}/queue/next/")
        assert response.status_code == 200, response.status_code
        return response.data["image"]["id"]

    handed = _all_at_once(4, ask)
    assert len(set(handed)) == 1, handed
    assert Image.objects.filter(assignee=world.users["admin"]).count() == 1


@pytest.mark.django_db(transaction=True)
def test_one_reviewer_asking_for_the_next_review_four_times_at_once_gets_one_image(world) -> None:
    images = make_images(world.project, 5)
    Image.objects.filter(pk__in=[i.pk for i in images]).update(
        status=ImageStatus.SUBMITTED, assignee=world.users["annotator"], submitted_at=timezone.now()
    )
    client = world.client("reviewer")

    def ask(_k: int) -> int:
        response = client.post(f"/api/projects/{world.project.pk}/review/next/")
        assert response.status_code == 200, response.status_code
        return response.json()["image"]["id"]

    handed = _all_at_once(4, ask)
    assert len(set(handed)) == 1, f"one reviewer was handed {len(set(handed))} images: {handed}"
    assert Image.objects.filter(reviewer=world.users["reviewer"], status=ImageStatus.IN_REVIEW).count() == 1


# --------------------------------------------------------------------------------------------
# Exports: default names are unique however many start in the same second
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_unnamed_exports_started_in_the_same_second_both_succeed(world, same_second) -> None:
    manager = world.client("manager")
    job_ids = []
    for fmt in ("coco", "coco", "coco"):
        response = manager.post(f"/api/projects/{world.project.pk}/exports/", {"format": fmt}, format="json")
        assert response.status_code == 202, response.json()
        job_ids.append(response.json()["id"])

    _all_at_once(len(job_ids), lambda k: job_execute(job_id=job_ids[k]))

    jobs = list(Job.objects.filter(pk__in=job_ids))
    assert [(job.state, job.error) for job in jobs] == [("succeeded", "")] * len(jobs)
    names = sorted(DatasetVersion.objects.filter(project=world.project).values_list("name", flat=True))
    assert len(set(names)) == len(job_ids), names
    assert all(name.startswith(f"{slugify(world.project.name)}-coco-20300102-030405") for name in names), names
    # Each job points at its own version.
    assert len({job.result["dataset_version"] for job in jobs}) == len(jobs)


def test_an_unnamed_export_outside_a_job_in_the_same_second_gets_its_own_name(world, same_second) -> None:
    options = ExportOptions.from_dict({"format": "voc", "status": "all"})
    first = dataset_export(project=world.project, options=options)
    second = dataset_export(project=world.project, options=options)
    assert first.name != second.name
    assert second.name.startswith(first.name)


def test_an_explicit_name_already_taken_is_still_refused_not_renamed(world) -> None:
    options = ExportOptions.from_dict({"format": "coco", "status": "all"})
    dataset_export(project=world.project, options=options, name="v1")
    with pytest.raises(DomainError, match="already exists"):
        dataset_export(project=world.project, options=options, name="v1")
    assert list(DatasetVersion.objects.values_list("name", flat=True)) == ["v1"]
