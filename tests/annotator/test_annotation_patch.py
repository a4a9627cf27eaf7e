"""PATCH of an image's annotations: what an autosave after one edit sends (the changed objects,
the removed uids, the order of the whole set) has exactly the outcome of a PUT of the whole set —
the same rows, revisions, checks, refusals and conflicts — and a patch that does not fit the set
is refused with a reason, nothing changed.
"""
from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from django.apps import apps
from django.db import connection

from annotator.annotations.models import Annotation, Revision
from annotator.annotations.selectors import revision_objects
from annotator.images.models import ImageStatus
from tests.factories import make_images, polygon_geometry, square

URL = "/api/images/{}/annotations/"


def _object(label: int, x: float, y: float = 10, size: float = 20, **extra: Any) -> dict[str, Any]:
    return {"uid": str(uuid.uuid4()), "label": label, "geometry": polygon_geometry(square(x, y, size)), **extra}


def _put(client, image, objects: list, version: int):  # type: ignore[no-untyped-def]
    return client.put(URL.format(image.pk), {"version": version, "annotations": objects}, format="json")


def _patch(client, image, version: int, **body: Any):  # type: ignore[no-untyped-def]
    return client.patch(URL.format(image.pk), {"version": version, **body}, format="json")


def _state(image) -> tuple[int, list[dict], list[tuple]]:  # type: ignore[no-untyped-def]
    """What a save leaves: the version, the current set as the API gives it, and every revision whole."""
    image.refresh_from_db()
    current = sorted(
        ({k: v for k, v in o.items() if k not in ("created_at", "updated_at")} for o in _api_set(image)), key=lambda o: o["uid"],
    )
    revisions = [
        (r.version, r.action, r.object_count, r.summary, [_comparable(o) for o in revision_objects(r)])
        for r in Revision.objects.filter(image=image).order_by("version")
    ]
    return image.version, current, revisions


def _api_set(image) -> list[dict]:  # type: ignore[no-untyped-def]
    from annotator.annotations.selectors import annotation_to_dict, annotations_of

    return [annotation_to_dict(a) for a in annotations_of(image)]


def _comparable(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("created_at", "updated_at")}


@pytest.fixture
def started(world, image):  # type: ignore[no-untyped-def]
    """The image (200x100) with three objects saved whole by the annotator: version 1."""
    cat, dog = (label.pk for label in world.labels)
    objects = [_object(cat, 10), _object(dog, 60), _object(cat, 110)]
    assert _put(world.client("annotator"), image, objects, 0).status_code == 200
    return objects


def test_a_patch_of_one_object_saves_it_and_the_rest_stays_as_it_was(world, image, started) -> None:
    moved = {**started[1], "geometry": polygon_geometry(square(62, 12, 20))}
    response = _patch(world.client("annotator"), image, 1, changed=[moved], order=[o["uid"] for o in started])
    assert response.status_code == 200, response.json()
    assert response.json()["version"] == 2 and response.json()["repaired"] == []
    assert [o["uid"] for o in response.json()["annotations"]] == [o["uid"] for o in started]
    rows = {str(a.uid): a for a in Annotation.objects.filter(image=image)}
    assert rows[moved["uid"]].bbox == [62, 12, 20, 20]
    assert rows[started[0]["uid"]].bbox == [10, 10, 20, 20]
    revision = Revision.objects.get(image=image, version=2)
    assert revision.summary == {"added": 0, "removed": 0, "changed": 1}
    assert revision.annotations is None and [o["uid"] for o in revision.delta["changed"]] == [moved["uid"]]
    image.refresh_from_db()
    assert image.status == ImageStatus.IN_PROGRESS


def test_a_patch_adds_removes_and_reorders_and_without_an_order_new_objects_come_last(world, image, started) -> None:
    cat = world.labels[0].pk
    client = world.client("annotator")
    added, unnamed = _object(cat, 150, 50), {"label": cat, "geometry": polygon_geometry(square(40, 60, 10))}
    order = [added["uid"], started[2]["uid"], started[0]["uid"]]
    response = _patch(client, image, 1, changed=[added, unnamed], removed=[started[1]["uid"]], order=order)
    assert response.status_code == 200, response.json()
    got = [o["uid"] for o in response.json()["annotations"]]
    assert got[:3] == order and len(got) == 4  # the object sent without a uid is new, and last
    assert Revision.objects.get(image=image, version=2).summary == {"added": 2, "removed": 1, "changed": 0}
    assert [o["uid"] for o in revision_objects(Revision.objects.get(image=image, version=2))] == got
    # No order: the stored objects in their order, then the new ones.
    later = _object(cat, 170, 70, 10)
    response = _patch(client, image, 2, changed=[later])
    assert response.status_code == 200, response.json()
    assert len(response.json()["annotations"]) == 5 and response.json()["annotations"][-1]["uid"] == later["uid"]


def test_patches_and_puts_of_the_same_edits_leave_the_same_rows_and_revisions(world) -> None:
    """Random edits (move, relabel, add, delete, reorder) saved one way on one image and the other
    way on another: the sets and every revision read back are the same (uids shared on purpose)."""
    cat, dog = (label.pk for label in world.labels)
    by_put, by_patch = make_images(world.project, 2, width=200, height=100)
    client, rng = world.client("annotator"), random.Random(7)
    objects = [_object(cat, 10), _object(dog, 60), _object(cat, 110)]
    assert _put(client, by_put, objects, 0).status_code == 200
    assert _put(client, by_patch, objects, 0).status_code == 200
    for version in range(1, 31):  # past a snapshot (every 20 versions)
        before = {o["uid"]: o for o in objects}
        move = rng.choice(["move", "relabel", "add", "delete", "reorder"]) if objects else "add"
        if move == "move":
            k = rng.randrange(len(objects))
            objects[k] = {**objects[k], "geometry": polygon_geometry(square(rng.uniform(0, 150), rng.uniform(0, 60), 20))}
        elif move == "relabel":
            k = rng.randrange(len(objects))
            objects[k] = {**objects[k], "label": dog if objects[k]["label"] == cat else cat}
        elif move == "add":
            objects.insert(rng.randrange(len(objects) + 1), _object(cat, rng.uniform(0, 150), rng.uniform(0, 60)))
        elif move == "delete":
            objects.pop(rng.randrange(len(objects)))
        else:
            rng.shuffle(objects)
        changed = [o for o in objects if before.get(o["uid"]) != o]
        removed = [uid for uid in before if uid not in {o["uid"] for o in objects}]
        assert _put(client, by_put, objects, version).status_code == 200
        response = _patch(client, by_patch, version, changed=changed, removed=removed, order=[o["uid"] for o in objects])
        assert response.status_code == 200, response.json()
    put_state, patch_state = _state(by_put), _state(by_patch)
    assert patch_state == put_state
    assert put_state[0] == 31 and any(r[0] == 21 for r in put_state[2])


def _refused(response, image, text: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 400, response.content
    assert text in str(response.json()["detail"])
    image.refresh_from_db()
    assert image.version == 1 and Revision.objects.filter(image=image).count() == 1


@pytest.mark.parametrize(
    "case",
    ["remove unknown", "changed and removed", "order leaves one out", "order lists an unknown", "order twice", "bad uid", "not lists"],
)
def test_a_patch_that_does_not_fit_the_set_is_refused_and_nothing_changes(world, image, started, case: str) -> None:
    uids = [o["uid"] for o in started]
    stranger = str(uuid.uuid4())
    body, text = {
        "remove unknown": ({"removed": [stranger]}, "has no such object"),
        "changed and removed": ({"changed": [started[0]], "removed": [uids[0]]}, "both changed and removed"),
        "order leaves one out": ({"order": uids[:2]}, "order leaves out object"),
        "order lists an unknown": ({"order": [*uids, stranger]}, "neither sent nor stored"),
        "order twice": ({"order": [*uids, uids[0]]}, "appears twice"),
        "bad uid": ({"removed": ["not-a-uid"]}, "is not an object id"),
        "not lists": ({"order": {"a": 1}}, "list"),
    }[case]
    response = _patch(world.client("annotator"), image, 1, **body)
    _refused(response, image, text)
    if case != "not lists":  # that one is malformed, refused by the request's own check
        assert response.json()["code"] == "patch_mismatch"  # the editor then sends the whole set


def test_a_refused_object_is_named_by_its_place_in_the_patch_and_a_repair_too(world, image, started) -> None:
    cat = world.labels[0].pk
    client = world.client("annotator")
    outside = {**_object(cat, 10), "geometry": polygon_geometry([[250, 10], [260, 10], [260, 60]])}
    response = _patch(client, image, 1, changed=[_object(cat, 50, 50), outside])
    _refused(response, image, "entirely outside")
    assert response.json()["object"]["index"] == 1 and response.json()["object"]["uid"] == outside["uid"]
    # A vertex a hair outside the image is repaired, and the repair names the object's place in the patch.
    spill = {**started[2], "geometry": polygon_geometry([[180, 10], [200.4, 10], [200.4, 40], [180, 40]])}
    response = _patch(client, image, 1, changed=[_object(cat, 50, 50), spill])
    assert response.status_code == 200, response.json()
    (repair,) = response.json()["repaired"]
    assert (repair["uid"], repair["index"]) == (spill["uid"], 1)
    assert max(x for x, _ in repair["geometry"]["polygons"][0]["exterior"]) <= 200


def test_the_per_image_vertex_limit_counts_the_objects_a_patch_does_not_send(world, image, started, settings) -> None:
    settings.ANNOTATOR_MAX_VERTICES_PER_IMAGE = 14  # three squares stored: 12 points
    cat = world.labels[0].pk
    response = _patch(world.client("annotator"), image, 1, changed=[_object(cat, 50, 50)])
    _refused(response, image, "16 points in all; the limit is 14")
    # Replacing a stored square by another counts 12, and is fine.
    moved = {**started[0], "geometry": polygon_geometry(square(12, 12, 20))}
    assert _patch(world.client("annotator"), image, 1, changed=[moved]).status_code == 200


def test_a_stale_patch_is_a_conflict_and_whoever_may_not_save_may_not_patch(world, image, started) -> None:
    moved = {**started[0], "geometry": polygon_geometry(square(12, 12, 20))}
    stale = _patch(world.client("annotator"), image, 0, changed=[moved])
    assert stale.status_code == 409 and stale.json()["current_version"] == 1
    for who, status in (("reviewer", 403), ("outsider", 404), ("anonymous", 401)):
        assert _patch(world.client(who), image, 1, changed=[moved]).status_code == status, who
    image.refresh_from_db()
    assert image.version == 1


def test_a_patch_with_return_minimal_answers_the_version_only(world, image, started) -> None:
    moved = {**started[0], "geometry": polygon_geometry(square(12, 12, 20))}
    response = world.client("annotator").patch(
        URL.format(image.pk), {"version": 1, "changed": [moved]}, format="json", HTTP_PREFER="return=minimal",
    )
    assert response.status_code == 200 and response["Preference-Applied"] == "return=minimal"
    assert response.json() == {"image": image.pk, "version": 2, "repaired": []}


def test_a_person_patches_their_own_consensus_version_as_they_would_put_it(world) -> None:
    cat = world.labels[0].pk
    manager = world.client("manager")
    assert manager.patch(f"/api/projects/{world.project.pk}/", {"consensus_annotators": 2}, format="json").status_code == 200
    image = make_images(world.project, 1, width=200, height=100)[0]
    client = world.client("annotator")
    assert client.post(f"/api/projects/{world.project.pk}/queue/next/").json()["image"]["id"] == image.pk
    first, second = _object(cat, 10), _object(cat, 60)
    assert _patch(client, image, 0, changed=[first, second]).status_code == 200
    response = _patch(client, image, 1, changed=[{**second, "label": world.labels[1].pk}], removed=[first["uid"]])
    assert response.status_code == 200, response.json()
    assert [(o["uid"], o["label"]) for o in response.json()["annotations"]] == [(second["uid"], world.labels[1].pk)]
    assert not Annotation.objects.filter(image=image).exists()  # the image's own set is untouched
    assert _patch(client, image, 1, changed=[first]).status_code == 409
    assert _patch(client, image, 2, removed=[first["uid"]]).status_code == 400


def test_the_vertex_counts_of_objects_saved_before_are_filled_in_by_the_migration(world, image, started) -> None:
    Annotation.objects.filter(image=image).update(vertices=0)
    module = __import__("annotator.annotations.migrations.0004_annotation_vertices", fromlist=["count_vertices"])
    module.count_vertices(apps, connection.schema_editor())
    assert list(Annotation.objects.filter(image=image).values_list("vertices", flat=True)) == [4, 4, 4]


def test_an_object_someone_else_changes_keeps_its_author_and_creation_time(world, image, started) -> None:
    """A changed object is written again: it keeps who created it and when (in its row, in the
    API and in the revision), and only its update time moves."""
    first = {str(a.uid): a for a in Annotation.objects.filter(image=image)}
    moved = {**started[1], "geometry": polygon_geometry(square(62, 12, 20))}
    manager = world.client("manager")
    response = _patch(manager, image, 1, changed=[moved], order=[o["uid"] for o in started])
    assert response.status_code == 200, response.json()
    renamed = {**started[0], "label": world.labels[1].pk}
    response = _put(manager, image, [renamed, moved], 2)  # a whole set: one changed, one removed
    assert response.status_code == 200, response.json()
    annotator = world.users["annotator"].pk
    for uid in (moved["uid"], renamed["uid"]):
        row = Annotation.objects.get(image=image, uid=uid)
        assert (row.author_id, row.created_at) == (annotator, first[uid].created_at)
        assert row.updated_at > first[uid].updated_at
        shown = next(o for o in response.json()["annotations"] if o["uid"] == uid)
        assert (shown["author"], shown["created_at"]) == (annotator, first[uid].created_at.isoformat())
    delta = Revision.objects.get(image=image, version=2).delta
    assert [(o["author"], o["created_at"]) for o in delta["changed"]] == [(annotator, first[moved["uid"]].created_at.isoformat())]
    assert not Annotation.objects.filter(image=image, uid=started[2]["uid"]).exists()


def test_an_autosave_reads_the_callers_role_with_the_image(world, image, started) -> None:
    """The access check of a save asks no query of its own: the role comes with the image row."""
    from django.test.utils import CaptureQueriesContext

    moved = {**started[1], "geometry": polygon_geometry(square(62, 12, 20))}
    with CaptureQueriesContext(connection) as captured:
        response = _patch(world.client("annotator"), image, 1, changed=[moved], order=[o["uid"] for o in started])
    assert response.status_code == 200, response.json()
    sql = [q["sql"] for q in captured.captured_queries]
    assert not [s for s in sql if s.startswith('SELECT "projects_membership"')], sql
    assert sum('"images_image"' in s and s.startswith("SELECT") for s in sql) == 2, sql  # the access check's read, the lock
