"""Optimistic concurrency on an image's annotations, and revisions: nothing a person did is lost."""
from __future__ import annotations

import threading

import pytest
from django.db import connections

from annotator.annotations.models import Annotation, Revision
from tests.factories import make_images, polygon_geometry, square


def _obj(label: int, x: float) -> dict:
    return {"label": label, "geometry": polygon_geometry(square(x, 10, 20))}


def _put(client, image_id: int, annotations: list, version: int):
    return client.put(f"/api/images/{image_id}/annotations/", {"version": version, "annotations": annotations}, format="json")


def test_second_writer_gets_409_with_the_current_version_and_nothing_is_lost(world, image) -> None:
    cat, dog = (label.pk for label in world.labels)
    annotator, manager = world.client("annotator"), world.client("manager")
    # Both open the image at version 0.
    assert annotator.get(f"/api/images/{image.pk}/annotations/").data["version"] == 0
    assert manager.get(f"/api/images/{image.pk}/annotations/").data["version"] == 0

    first = _put(annotator, image.pk, [_obj(cat, 10)], version=0)
    assert first.status_code == 200
    annotator_uid = first.data["annotations"][0]["uid"]

    stale = _put(manager, image.pk, [_obj(dog, 100)], version=0)
    assert stale.status_code == 409
    assert stale.data["current_version"] == 1
    assert stale.data["updated_by"] == "annotator"
    assert "version" in stale.data["detail"]
    # The annotator's work is still there, untouched by the refused save.
    assert [str(a.uid) for a in Annotation.objects.filter(image=image)] == [annotator_uid]

    # The manager reloads, merges, and saves on top of version 1.
    current = manager.get(f"/api/images/{image.pk}/annotations/").data
    merged = _put(manager, image.pk, [*current["annotations"], _obj(dog, 100)], version=current["version"])
    assert merged.status_code == 200
    assert merged.data["version"] == 2
    assert {a["label"] for a in merged.data["annotations"]} == {cat, dog}

    revisions = annotator.get(f"/api/images/{image.pk}/revisions/").data
    assert [(r["version"], r["author"], r["object_count"]) for r in revisions] == [(2, "manager", 2), (1, "annotator", 1)]
    first_revision = annotator.get(f"/api/images/{image.pk}/revisions/1/").data
    assert [a["uid"] for a in first_revision["annotations"]] == [annotator_uid]


def test_restoring_an_earlier_revision_creates_a_new_revision_with_its_content(world, image) -> None:
    cat, dog = (label.pk for label in world.labels)
    client = world.client("annotator")
    v1 = _put(client, image.pk, [_obj(cat, 10)], version=0).data
    _put(client, image.pk, [_obj(dog, 100), _obj(dog, 150)], version=1)

    response = client.post(f"/api/images/{image.pk}/revisions/1/restore/", {"version": 2}, format="json")
    assert response.status_code == 200
    assert response.data["version"] == 3
    assert [(a["uid"], a["label"], a["geometry"]) for a in response.data["annotations"]] == [
        (a["uid"], a["label"], a["geometry"]) for a in v1["annotations"]
    ]
    current = client.get(f"/api/images/{image.pk}/annotations/").data
    assert current["version"] == 3 and [a["uid"] for a in current["annotations"]] == [v1["annotations"][0]["uid"]]

    revisions = client.get(f"/api/images/{image.pk}/revisions/").data
    assert [r["version"] for r in revisions] == [3, 2, 1], "the overwritten revision 2 is kept"
    assert revisions[0]["action"] == "restore" and revisions[0]["restored_from"] == 1
    assert client.get(f"/api/images/{image.pk}/revisions/2/").data["object_count"] == 2


def test_restore_based_on_a_stale_version_gets_409_and_changes_nothing(world, image) -> None:
    client = world.client("annotator")
    _put(client, image.pk, [_obj(world.labels[0].pk, 10)], version=0)
    _put(client, image.pk, [], version=1)
    response = client.post(f"/api/images/{image.pk}/revisions/1/restore/", {"version": 1}, format="json")
    assert response.status_code == 409
    assert response.data["current_version"] == 2
    assert Revision.objects.filter(image=image).count() == 2
    assert not Annotation.objects.filter(image=image).exists()


def test_restoring_version_zero_empties_the_image_as_a_new_revision(world, image) -> None:
    client = world.client("annotator")
    _put(client, image.pk, [_obj(world.labels[0].pk, 10)], version=0)
    response = client.post(f"/api/images/{image.pk}/revisions/0/restore/", {"version": 1}, format="json")
    assert response.status_code == 200
    assert response.data == {"image": image.pk, "version": 2, "repaired": [], "annotations": []}
    assert Revision.objects.filter(image=image).count() == 2


def test_restoring_a_revision_that_does_not_exist_is_404(world, image) -> None:
    response = world.client("annotator").post(f"/api/images/{image.pk}/revisions/7/restore/", {"version": 0}, format="json")
    assert response.status_code == 404
    assert "Revision 7" in response.data["detail"]


@pytest.mark.django_db(transaction=True)
def test_simultaneous_saves_on_the_same_version_let_exactly_one_through(world) -> None:
    """Real threads, each with its own database connection, race to save on top of version 0."""
    image = make_images(world.project, 1, width=200, height=100)[0]
    writers = ["annotator", "manager", "admin", "manager", "annotator", "admin"]
    barrier = threading.Barrier(len(writers))
    statuses: list[int] = []
    lock = threading.Lock()

    def save(index: int, persona: str) -> None:
        try:
            client = world.client(persona)
            barrier.wait(timeout=30)
            response = _put(client, image.pk, [_obj(world.labels[0].pk, 10 + index)], version=0)
            with lock:
                statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=save, args=(i, p)) for i, p in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [200] + [409] * (len(writers) - 1)
    image.refresh_from_db()
    assert image.version == 1
    assert Revision.objects.filter(image=image).count() == 1
    assert Annotation.objects.filter(image=image).count() == 1
