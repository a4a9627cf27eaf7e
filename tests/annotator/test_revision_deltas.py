"""Revisions stored as deltas between snapshots: every revision reads back exactly as it was saved.

The oracle is what a save returns (``SavedAnnotations.rows``, in the order saved): before deltas,
that list was stored whole as the revision, so each revision must read back as that list.
"""
from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotator.annotations import revisions
from annotator.annotations.models import Annotation, Revision, RevisionAction
from annotator.annotations.selectors import annotation_to_dict, annotations_of, revision_objects, revision_objects_at
from annotator.annotations.services import annotations_replace, revision_restore
from annotator.backups.services import BackupOptions, RestoreOptions, backup_write, restore
from annotator.core.errors import DomainError
from annotator.images.models import Image
from annotator.images.services import images_add
from annotator.learning.models import ModelKind, ModelVersion
from tests.factories import make_images, png_bytes, polygon_geometry, square


def _as_stored(rows: list[Annotation]) -> list[dict[str, Any]]:
    """The set as a full snapshot held it (through JSON, as the database gives it back)."""
    return orjson.loads(orjson.dumps([annotation_to_dict(row) for row in rows]))


def _item(label: int, x: float, y: float = 10, size: float = 20, **extra: Any) -> dict[str, Any]:
    return {"uid": str(uuid.uuid4()), "label": label, "geometry": polygon_geometry(square(x, y, size)), **extra}


def _editable(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the editor sends back of a set it loaded (the fields a person can change)."""
    keys = ("uid", "label", "geometry", "z_order", "source", "score", "model_version", "prediction", "attributes")
    return orjson.loads(orjson.dumps([{k: obj[k] for k in keys} for obj in objects]))


def _save(image: Image, user: Any, items: list[dict[str, Any]], **kwargs: Any) -> tuple[Image, list[dict[str, Any]]]:
    saved = annotations_replace(image=image, user=user, base_version=image.version, items=items, **kwargs)
    return saved.image, _as_stored(saved.rows)


# One step of an editing session, drawn by hypothesis and applied to the set the editor holds.
edit_steps = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 150), st.integers(1, 3)),
        st.tuples(st.just("move_vertex"), st.integers(0, 99), st.integers(-3, 3)),
        st.tuples(st.just("remove"), st.integers(0, 99), st.just(0)),
        st.tuples(st.just("relabel"), st.integers(0, 99), st.just(0)),
        st.tuples(st.just("raise"), st.integers(0, 99), st.integers(1, 5)),
        st.tuples(st.just("reorder"), st.integers(0, 99), st.just(0)),
        st.tuples(st.just("nothing"), st.just(0), st.just(0)),
        st.tuples(st.just("restore"), st.integers(0, 99), st.just(0)),
    ),
    min_size=1,
    max_size=30,
)


_examples = itertools.count()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=edit_steps)
def test_every_revision_of_a_random_editing_session_reads_back_exactly(world, monkeypatch, steps) -> None:
    # Snapshots every 4 versions, so that a session of 30 saves crosses several of them.
    monkeypatch.setattr(revisions, "SNAPSHOT_EVERY", 4)
    cat, dog = (label.pk for label in world.labels)
    user = world.users["annotator"]
    n = next(_examples)
    image = images_add(project=world.project, sources=[(f"{n}.png", lambda: png_bytes(200, 100, color=(n % 256, n // 256, 9)))]).created[0]
    image, held = _save(image, user, [_item(cat, 10)])
    expected = {1: held}
    for kind, which, amount in steps:
        items = _editable(held)
        if kind == "restore":
            version = which % image.version + 1
            saved = revision_restore(image=image, version=version, user=user, base_version=image.version)
            image, held = saved.image, _as_stored(saved.rows)
            expected[image.version] = held
            continue
        index = which % len(items) if items else None
        if kind == "add" or index is None:
            items += [_item(dog, which % 150, 10 + 10 * k, 15) for k in range(amount)]
        elif kind == "move_vertex":
            ring = items[index]["geometry"]["polygons"][0]["exterior"]
            ring[abs(amount) % len(ring)][0] = min(200, max(0, ring[abs(amount) % len(ring)][0] + amount))
        elif kind == "remove":
            del items[index]
        elif kind == "relabel":
            items[index]["label"] = dog if items[index]["label"] == cat else cat
        elif kind == "raise":
            items[index]["z_order"] += amount
        elif kind == "reorder":
            items = items[index:] + items[:index]
        try:
            image, held = _save(image, user, items)
        except DomainError:
            continue  # a geometry the moves made unusable: refused, and no revision was written
        expected[image.version] = held

    stored = {r.version: r for r in Revision.objects.filter(image=image)}
    assert sorted(stored) == sorted(expected) == list(range(1, image.version + 1))
    for version, objects in expected.items():
        assert revision_objects(stored[version]) == objects, f"revision {version}"
        row = stored[version]
        assert (row.annotations is None) == (row.delta is not None)
        if row.action != RevisionAction.SAVE or version % 4 == 1:
            assert row.annotations is not None, f"revision {version} ({row.action}) should be a snapshot"
    # And the last revision is what the database holds now.
    current = {a["uid"]: a for a in _as_stored(list(annotations_of(image)))}
    assert {a["uid"]: a for a in expected[image.version]} == current


def test_an_autosave_that_moves_one_vertex_stores_that_object_only(world, image) -> None:
    cat = world.labels[0].pk
    user = world.users["annotator"]
    items = [_item(cat, 5 + (k % 10) * 19, 5 + (k // 10) * 9, 8) for k in range(100)]
    image, first = _save(image, user, items)
    items = _editable(first)
    items[42]["geometry"]["polygons"][0]["exterior"][1][0] += 0.5
    image, second = _save(image, user, items)

    snapshot, delta = Revision.objects.get(image=image, version=1), Revision.objects.get(image=image, version=2)
    assert snapshot.annotations == first and snapshot.delta is None
    assert delta.annotations is None
    assert [obj["uid"] for obj in delta.delta["changed"]] == [items[42]["uid"]]
    assert delta.delta["added"] == [] and delta.delta["removed"] == []
    assert len(orjson.dumps(delta.delta)) * 5 < len(orjson.dumps(snapshot.annotations))
    assert revision_objects(delta) == second
    assert delta.summary == {"added": 0, "removed": 0, "changed": 1} and delta.object_count == 100


def test_a_snapshot_every_twenty_versions_and_for_restores(world, image) -> None:
    cat = world.labels[0].pk
    user = world.users["annotator"]
    image, held = _save(image, user, [_item(cat, 10)])
    expected = {1: held}
    for step in range(44):
        items = _editable(held)
        items[0]["geometry"]["polygons"][0]["exterior"][0][0] = 10 + step % 7
        if step % 10 == 3:
            items.append(_item(cat, 100 + step))
        image, held = _save(image, user, items)
        expected[image.version] = held
    saved = revision_restore(image=image, version=30, user=user, base_version=image.version)
    expected[saved.image.version] = _as_stored(saved.rows)

    snapshots = Revision.objects.filter(image=image, annotations__isnull=False).values_list("version", flat=True)
    assert sorted(snapshots) == [1, 21, 41, 46]
    for version, objects in expected.items():
        assert revision_objects_at(image, version) == objects
    assert revision_objects_at(image, 0) == [] and revision_objects_at(image, 99) is None


def test_history_api_shows_and_restores_a_delta_revision(world, image) -> None:
    cat, dog = (label.pk for label in world.labels)
    client = world.client("annotator")
    first = client.put(f"/api/images/{image.pk}/annotations/", {"version": 0, "annotations": [_item(cat, 10), _item(dog, 50)]}, format="json")
    kept, dropped = first.data["annotations"]
    moved = _editable([kept])[0]
    moved["geometry"]["polygons"][0]["exterior"][0] = [12, 11]
    second = client.put(f"/api/images/{image.pk}/annotations/", {"version": 1, "annotations": [moved]}, format="json")
    assert second.status_code == 200
    client.put(f"/api/images/{image.pk}/annotations/", {"version": 2, "annotations": []}, format="json")
    assert Revision.objects.get(image=image, version=2).delta is not None

    shown = client.get(f"/api/images/{image.pk}/revisions/2/").data
    assert shown["annotations"] == orjson.loads(orjson.dumps(second.data["annotations"]))
    listed = client.get(f"/api/images/{image.pk}/revisions/").data
    assert [(r["version"], r["object_count"], r["summary"]) for r in listed] == [
        (3, 0, {"added": 0, "removed": 1, "changed": 0}),
        (2, 1, {"added": 0, "removed": 1, "changed": 1}),
        (1, 2, {"added": 2, "removed": 0, "changed": 0}),
    ]

    restored = client.post(f"/api/images/{image.pk}/revisions/2/restore/", {"version": 3}, format="json")
    assert restored.status_code == 200 and restored.data["version"] == 4
    assert [(a["uid"], a["geometry"]) for a in restored.data["annotations"]] == [(kept["uid"], second.data["annotations"][0]["geometry"])]
    assert dropped["uid"] not in {str(u) for u in Annotation.objects.filter(image=image).values_list("uid", flat=True)}
    # The conflict check is unchanged: restoring on top of a stale version is refused.
    stale = client.post(f"/api/images/{image.pk}/revisions/1/restore/", {"version": 3}, format="json")
    assert stale.status_code == 409 and stale.data["current_version"] == 4


def test_a_history_with_a_missing_revision_goes_on_with_a_snapshot(world, image) -> None:
    """A delta needs the revision before it: without it (history cut short by hand), the save is stored whole."""
    cat = world.labels[0].pk
    user = world.users["annotator"]
    image, held = _save(image, user, [_item(cat, 10)])
    image, held = _save(image, user, [*_editable(held), _item(cat, 60)])
    Revision.objects.filter(image=image, version=2).delete()
    image, held = _save(image, user, _editable(held)[:1])
    third = Revision.objects.get(image=image, version=3)
    assert third.annotations == held and third.delta is None


def test_an_object_whose_model_was_deleted_reads_back_as_the_database_holds_it(world, image) -> None:
    """Deleting a model version clears the objects' reference (SET NULL) without a save: the next revision says so."""
    cat = world.labels[0].pk
    user = world.users["annotator"]
    model = ModelVersion.objects.create(project=world.project, name="m", kind=ModelKind.TRAINED, checkpoint="", class_names=["cat"])
    image, held = _save(image, user, [_item(cat, 10, source="model", score=0.9, model_version=model.pk), _item(cat, 60)])
    stale_copy = _editable(held)
    model.delete()
    stale_copy[1]["geometry"]["polygons"][0]["exterior"][0] = [61, 10]
    image, held = _save(image, user, stale_copy)  # the editor still sends the model's id it loaded
    assert Revision.objects.get(image=image, version=2).delta is not None
    assert revision_objects_at(image, 2) == held
    assert held[0]["model_version"] is None


@pytest.fixture
def long_history(world) -> Image:
    """An image with 45 saves (snapshots at 1, 21 and 41), a restore, and a second image saved in between."""
    cat, dog = (label.pk for label in world.labels)
    user = world.users["annotator"]
    image, other = make_images(world.project, 2, width=200, height=100)
    image, held = _save(image, user, [_item(cat, 10), _item(dog, 50, 40)])
    other, _ = _save(other, user, [_item(dog, 5)])
    for step in range(44):
        items = _editable(held)
        items[step % len(items)]["geometry"]["polygons"][0]["exterior"][2][1] = 30 + step % 5
        if step % 9 == 0:
            items.append(_item(cat, 120, 10 + step, 5))
        if step % 13 == 5:
            items.pop(0)
        image, held = _save(image, user, items)
        if step % 15 == 0:
            other, _ = _save(other, user, [*_editable(revision_objects_at(other, other.version) or []), _item(cat, step)])
    revision_restore(image=image, version=7, user=user, base_version=image.version)
    return image


def _portable(objects: list[dict[str, Any]], label_names: dict[int, str]) -> list[dict[str, Any]]:
    """A set with its label ids as names (a restored project has other ids)."""
    return [{**obj, "label": label_names[obj["label"]]} for obj in objects]


def test_backup_and_restore_keep_every_delta_revision(world, long_history, tmp_path: Path) -> None:
    project = world.project
    path = tmp_path / "p.zip"
    backup_write(project=project, out=path, options=BackupOptions())
    copy = restore(path=path, archive_name=path.name, options=RestoreOptions(name="Copy")).project

    def history(p: Any) -> list[tuple[str, int, list[dict[str, Any]]]]:
        names = dict(p.labels.values_list("pk", "name"))
        rows = Revision.objects.filter(image__project=p).order_by("image__original_name", "version")
        return [(r.image.original_name, r.version, _portable(revision_objects(r), names)) for r in rows]

    original, restored = history(project), history(copy)
    assert len(original) == 46 + 4 and [h[:2] for h in original] == [h[:2] for h in restored]
    for (name, version, before), (_, _, after) in zip(original, restored):
        for a, b in zip(before, after, strict=True):
            assert {k: v for k, v in a.items() if k != "author"} == {k: v for k, v in b.items() if k != "author"}, (name, version)
    # The copy stores them as the original does: deltas between the same snapshots.
    layout = lambda p: [  # noqa: E731
        (version, delta is None)
        for version, delta in Revision.objects.filter(image__project=p).order_by("image__original_name", "version").values_list("version", "delta")
    ]
    assert layout(copy) == layout(project)
    assert sum(1 for _, whole in layout(copy) if not whole) > 40
