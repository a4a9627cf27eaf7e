"""The kept per-(project, status, assignee, reviewer) image counts always equal a fresh count.

Whatever writes an image's status (queue, submit, review, a manager's edit, a bulk insert, an
`update()`, deletes), from several connections at once: the triggers keep ImageCount right.
"""
from __future__ import annotations

import random
import threading

import pytest
from django.db import connections, transaction
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce

from annotator.core.errors import DomainError
from annotator.images.models import Image, ImageCount, ImageStatus
from annotator.images.selectors import image_status_counts, images_count
from annotator.images.services import image_counts_compact, image_delete, image_submit, image_update, queue_next
from annotator.projects.selectors import project_stats
from annotator.review.services import review_next
from tests.factories import MembershipFactory, ProjectFactory, UserFactory, make_images


def _kept(project) -> dict[tuple[str, int, int], int]:  # type: ignore[no-untyped-def]
    rows = (
        ImageCount.objects.filter(project=project).order_by().values_list("status", "assignee_pk", "reviewer_pk")
        .annotate(n=Sum("count"))
    )
    return {(status, a, r): n for status, a, r, n in rows if n}


def _counted(project) -> dict[tuple[str, int, int], int]:  # type: ignore[no-untyped-def]
    rows = (
        Image.objects.filter(project=project).order_by()
        .values_list("status", Coalesce("assignee_id", 0), Coalesce("reviewer_id", 0))
        .annotate(n=Count("id"))
    )
    return {(status, a, r): n for status, a, r, n in rows}


@pytest.mark.django_db
def test_counts_follow_every_kind_of_image_write():
    project, other = ProjectFactory(), ProjectFactory()
    annotator, reviewer, manager = UserFactory(), UserFactory(), UserFactory()
    for user, role in ((annotator, "annotator"), (reviewer, "reviewer"), (manager, "manager")):
        MembershipFactory(project=project, user=user, role=role)
    images = make_images(project, 6)
    make_images(other, 2)

    with transaction.atomic():
        taken = queue_next(project=project, user=annotator)
        image_submit(image=taken, user=annotator)
    review_next(project=project, user=reviewer)
    image_update(image=images[5], user=manager, reviewer=reviewer)
    Image.objects.filter(pk=images[5].pk).update(status=ImageStatus.ACCEPTED)
    Image.objects.filter(pk=images[4].pk).update(status=ImageStatus.REJECTED, assignee=annotator)
    image_delete(image=images[3])
    Image.objects.bulk_create([Image(project=project, file="x.png", original_name="x.png", width=1, height=1, checksum="x")])

    assert _kept(project) == _counted(project)
    assert _kept(other) == _counted(other)
    image_counts_compact()
    assert ImageCount.objects.filter(project=project).count() == len(_counted(project))
    assert _kept(project) == _counted(project)
    assert image_status_counts(project) == {
        "new": 3, "in_progress": 0, "submitted": 0, "in_review": 1, "accepted": 1, "rejected": 1}
    assert images_count(project, status="new,rejected") == 4
    assert images_count(project, assignee=annotator.username) == 2
    assert images_count(project, reviewer=reviewer.username) == 2
    stats = project_stats(project)
    assert stats["total"] == 6
    person = {p["username"]: p for p in stats["people"]}
    assert person[annotator.username] == {"username": annotator.username, "assigned": 2, "in_progress": 1,
                                          "submitted": 1, "accepted": 0, "reviewed": 0}
    assert person[reviewer.username]["reviewed"] == 2


@pytest.mark.django_db
def test_deleting_a_project_leaves_no_counts_behind():
    project = ProjectFactory()
    make_images(project, 3)

    project.delete()

    assert not ImageCount.objects.filter(project_id=project.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_counts_stay_exact_under_concurrent_opposite_transitions():
    project = ProjectFactory()
    people = [MembershipFactory(project=project, role="manager").user for _ in range(6)]  # annotate and review
    ids = [image.pk for image in make_images(project, 40)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(people))

    def work(index: int) -> None:
        rng = random.Random(index)
        user = people[index]
        try:
            barrier.wait(timeout=30)
            for _ in range(25):
                move = rng.random()
                if move < 0.4:
                    with transaction.atomic():
                        image = queue_next(project=project, user=user)
                    if image is not None and rng.random() < 0.5:
                        try:
                            with transaction.atomic():
                                image_submit(image=image, user=user)
                        except DomainError:
                            pass  # a manager's edit took it back meanwhile: refused, as it should be
                elif move < 0.6:
                    review_next(project=project, user=user)
                elif move < 0.7:
                    image_counts_compact(project_id=project.pk)
                else:
                    # A manager's bulk edits in both directions: A → B in one thread while
                    # another moves B → A takes the same two counter rows in opposite order.
                    chosen = rng.sample(ids, 5)
                    status = rng.choice([ImageStatus.NEW, ImageStatus.SUBMITTED, ImageStatus.ACCEPTED])
                    with transaction.atomic():
                        Image.objects.filter(pk__in=chosen).update(status=status, assignee=None, reviewer=None)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(people))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)

    assert not errors, errors
    assert _kept(project) == _counted(project)
    assert sum(image_status_counts(project).values()) == 40
