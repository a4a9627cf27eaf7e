"""The annotate queue: "give me the next image" is atomic, ordered, and respects assignments.

The race tests use real threads, each with its own database connection, against whichever
database the suite runs on (PostgreSQL in CI: row locks with SKIP LOCKED; SQLite: IMMEDIATE
transactions serialize the writers).
"""
from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connections

from annotator.images.models import Image, ImageStatus
from annotator.projects.models import Membership
from tests.factories import UserFactory, make_images


def _next(client, project_id: int):
    return client.post(f"/api/projects/{project_id}/queue/next/")


def _race(world, usernames: list[str], work) -> list:  # type: ignore[no-untyped-def]
    """Run `work(username)` in one thread per user, all released at once; the list of their results."""
    barrier = threading.Barrier(len(usernames))
    results: list = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(username: str) -> None:
        try:
            barrier.wait(timeout=30)
            out = work(username)
            with lock:
                results.append(out)
        except BaseException as exc:  # surfaced by the assertion below, not lost in the thread
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(name,)) for name in usernames]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    return results


@pytest.fixture
def crowd(world) -> list[str]:
    """Eight annotators in the project (persona clients authenticate them by name)."""
    names = [f"crowd{i}" for i in range(8)]
    for name in names:
        world.users[name] = UserFactory(username=name)
        Membership.objects.create(project=world.project, user=world.users[name], role="annotator")
    return names


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_requests_never_hand_one_image_to_two_people(world, crowd) -> None:
    images = make_images(world.project, 5)

    def take(name: str) -> tuple[str, int | None]:
        response = _next(world.client(name), world.project.pk)
        assert response.status_code in (200, 204), response.status_code
        return name, response.data["image"]["id"] if response.status_code == 200 else None

    results = _race(world, crowd, take)
    handed = [image_id for _, image_id in results if image_id is not None]
    assert len(handed) == len(images), "every image was handed out, the others got 'queue empty'"
    assert len(set(handed)) == len(handed), f"an image went to two people: {Counter(handed)}"
    for name, image_id in results:
        if image_id is not None:
            assert Image.objects.get(pk=image_id).assignee.username == name


@pytest.mark.django_db(transaction=True)
def test_annotators_working_through_the_queue_concurrently_each_get_distinct_images(world, crowd) -> None:
    images = make_images(world.project, 24)

    def work_through(name: str) -> list[int]:
        client = world.client(name)
        taken: list[int] = []
        while True:
            response = _next(client, world.project.pk)
            if response.status_code == 204:
                return taken
            assert response.status_code == 200, response.status_code
            image_id = response.data["image"]["id"]
            taken.append(image_id)
            submitted = client.post(f"/api/images/{image_id}/submit/")
            assert submitted.status_code == 200, submitted.data

    per_person = _race(world, crowd, work_through)
    handed = [image_id for taken in per_person for image_id in taken]
    assert sorted(handed) == sorted(image.pk for image in images), f"duplicates: {Counter(handed).most_common(3)}"
    assert set(Image.objects.filter(project=world.project).values_list("status", flat=True)) == {ImageStatus.SUBMITTED}


def test_an_annotator_gets_their_unfinished_image_back_first(world) -> None:
    make_images(world.project, 3)
    client = world.client("annotator")
    first = _next(client, world.project.pk).data["image"]["id"]
    assert _next(client, world.project.pk).data["image"]["id"] == first
    assert Image.objects.filter(assignee=world.users["annotator"]).count() == 1


def test_the_queue_hands_out_higher_priority_first_then_upload_order(world) -> None:
    low, high, also_low = make_images(world.project, 3)
    high.priority = 10
    high.save()
    assert _next(world.client("annotator"), world.project.pk).data["image"]["id"] == high.pk
    assert _next(world.client("annotator2"), world.project.pk).data["image"]["id"] == low.pk


def test_an_image_the_manager_assigned_goes_only_to_its_assignee(world) -> None:
    reserved, free = make_images(world.project, 2)
    response = world.client("manager").patch(f"/api/images/{reserved.pk}/", {"assignee": "annotator2"}, format="json")
    assert response.status_code == 200
    assert _next(world.client("annotator"), world.project.pk).data["image"]["id"] == free.pk
    # The other annotator's queue starts with the image the manager gave them.
    assert _next(world.client("annotator2"), world.project.pk).data["image"]["id"] == reserved.pk
    reserved.refresh_from_db()
    assert reserved.status == ImageStatus.IN_PROGRESS


def test_empty_queue_answers_204(world) -> None:
    assert _next(world.client("annotator"), world.project.pk).status_code == 204


def test_rejected_image_returns_to_its_annotator(world) -> None:
    image = make_images(world.project, 2)[0]
    image.assignee = world.users["annotator"]
    image.status = ImageStatus.REJECTED
    image.save()
    assert _next(world.client("annotator"), world.project.pk).data["image"]["id"] == image.pk


def test_reviewer_cannot_take_from_the_annotate_queue(world) -> None:
    make_images(world.project, 1)
    response = _next(world.client("reviewer"), world.project.pk)
    assert response.status_code == 403
    assert not Image.objects.filter(assignee__isnull=False).exists()
