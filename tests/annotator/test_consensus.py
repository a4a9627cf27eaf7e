"""Consensus: N annotators per image, each on their own version; the merge of all N goes to review
with its agreement, lowest agreement first. Everything through the API, as the editor drives it.

The people: `annotator`, `annotator2` and (for N = 3) `annotator3` and `annotator4` draw; the
`reviewer` reviews; the `manager` may draw too (managers annotate), and then must not review it.
"""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from annotator.annotations.models import Annotation, Revision
from annotator.consensus.models import Replica, ReplicaStatus
from annotator.images.models import Image, ImageStatus
from ml import quality
from ml.geometry import polygons_to_mask, rle_to_mask
from tests.factories import MembershipFactory, UserFactory, make_images, polygon_geometry, square

W, H = 100, 80


@pytest.fixture
def drawers(world) -> dict:
    for name in ("annotator3", "annotator4"):
        world.users[name] = UserFactory(username=name)
        MembershipFactory(project=world.project, user=world.users[name], role="annotator")
    return world.users


def _consensus(world, n: int, timeout_hours: int = 24) -> None:
    response = world.client("manager").patch(
        f"/api/projects/{world.project.pk}/",
        {"consensus_annotators": n, "consensus_timeout_hours": timeout_hours}, format="json",
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["consensus_annotators"], response.json()["consensus_timeout_hours"]) == (n, timeout_hours)
    world.project.refresh_from_db()


def _next(world, who: str):  # type: ignore[no-untyped-def]
    response = world.client(who).post(f"/api/projects/{world.project.pk}/queue/next/")
    assert response.status_code in (200, 204), response.content
    return response.json()["image"] if response.status_code == 200 else None


def _load(world, who: str, image_id: int) -> dict:
    response = world.client(who).get(f"/api/images/{image_id}/annotations/")
    assert response.status_code == 200, response.json()
    return response.json()


def _save(world, who: str, image_id: int, version: int, objects: list[tuple[int, list]]):  # type: ignore[no-untyped-def]
    items = [{"label": label, "geometry": polygon_geometry(ring)} for label, ring in objects]
    return world.client(who).put(f"/api/images/{image_id}/annotations/", {"version": version, "annotations": items}, format="json")


def _draw_and_submit(world, who: str, image_id: int, objects: list[tuple[int, list]]) -> None:
    version = _load(world, who, image_id)["version"]
    saved = _save(world, who, image_id, version, objects)
    assert saved.status_code == 200, saved.json()
    submitted = world.client(who).post(f"/api/images/{image_id}/submit/")
    assert submitted.status_code == 200, submitted.json()


def _mask(ring: list) -> np.ndarray:
    return polygons_to_mask([{"exterior": ring, "holes": []}], width=W, height=H)


def test_two_annotators_each_draw_their_own_version_and_the_merge_goes_to_review(world) -> None:
    cat, dog = (label.pk for label in world.labels)
    _consensus(world, 2)
    image = make_images(world.project, 1, width=W, height=H)[0]

    # The same image to two different people, each seeing an empty set of their own.
    first, second = _next(world, "annotator"), _next(world, "annotator2")
    assert first["id"] == second["id"] == image.pk
    assert (first["status"], first["assignee"]) == ("in_progress", "annotator")
    assert _next(world, "manager") is None  # both slots are taken
    assert _load(world, "annotator", image.pk) == {"image": image.pk, "version": 0, "annotations": []}

    # Each saves their own version; a stale version is a 409, and nobody sees the other's objects.
    a = _save(world, "annotator", image.pk, 0, [(cat, square(10, 10, 30)), (dog, square(60, 10, 20))])
    assert a.status_code == 200 and a.json()["version"] == 1
    stale = _save(world, "annotator", image.pk, 0, [])
    assert stale.status_code == 409 and stale.json()["current_version"] == 1
    b = _save(world, "annotator2", image.pk, 0, [(cat, square(12, 10, 30))])
    assert b.status_code == 200 and b.json()["version"] == 1
    assert [o["label"] for o in _load(world, "annotator", image.pk)["annotations"]] == [cat, dog]
    assert [o["label"] for o in _load(world, "annotator2", image.pk)["annotations"]] == [cat]
    assert not Annotation.objects.filter(image=image).exists()  # the image's own set is untouched
    assert world.client("annotator").get(f"/api/images/{image.pk}/revisions/").json() == []

    # The first submission: theirs is submitted, the image still waits for the other.
    assert world.client("annotator").post(f"/api/images/{image.pk}/submit/").json()["image"]["status"] == "submitted"
    image.refresh_from_db()
    assert (image.status, image.replicas_open, image.agreement) == (ImageStatus.IN_PROGRESS, True, None)
    assert world.client("reviewer").post(f"/api/projects/{world.project.pk}/review/next/").status_code == 204
    assert _save(world, "annotator", image.pk, 1, []).status_code == 403  # submitted: no more changes (as any image)

    # The second: the merge is the image's set (a "consensus" revision) and it goes to review.
    assert world.client("annotator2").post(f"/api/images/{image.pk}/submit/").status_code == 200
    image.refresh_from_db()
    assert image.status == ImageStatus.SUBMITTED and not image.replicas_open and image.submitted_at is not None
    revision = Revision.objects.get(image=image, version=image.version)
    assert revision.action == "consensus" and revision.author is None
    rows = list(Annotation.objects.filter(image=image))
    assert [r.label_id for r in rows] == [cat]  # the dog only one of two drew: no majority
    merged = rle_to_mask(rows[0].geometry["rle"])
    assert (merged == (_mask(square(10, 10, 30)) & _mask(square(12, 10, 30)))).all()  # both agree on these pixels
    versions = [r.drawn for r in Replica.objects.filter(image=image).order_by("submitted_at")]
    expected = quality.agreement(versions, W, H)["score"]
    assert image.agreement == pytest.approx(expected) and 0.3 < image.agreement < 0.5  # one match, one lone object

    # The reviewer sees both versions, the merge with its per-object agreement, and takes it.
    assert world.client("annotator").get(f"/api/images/{image.pk}/consensus/").status_code == 403
    consensus = world.client("reviewer").get(f"/api/images/{image.pk}/consensus/").json()
    assert [(v["annotator"], v["status"], len(v["annotations"])) for v in consensus["versions"]] == [
        ("annotator", "submitted", 2), ("annotator2", "submitted", 1),
    ]
    assert consensus["complete"] and consensus["agreement"] == pytest.approx(expected)
    assert sorted(c["found_by"] for c in consensus["clusters"]) == [0.5, 1.0]
    assert [(m["label"], m["support"]) for m in consensus["merge"]] == [(cat, 2)]
    assert consensus["merge"][0]["agreement"] == pytest.approx(consensus["merge"][0]["mean_iou"])
    taken = world.client("reviewer").post(f"/api/projects/{world.project.pk}/review/next/")
    assert taken.status_code == 200 and taken.json()["image"]["id"] == image.pk


def test_an_annotator_never_gets_the_same_image_twice(world) -> None:
    _consensus(world, 2)
    one, two = make_images(world.project, 2, width=W, height=H)
    assert _next(world, "annotator")["id"] == one.pk
    assert _next(world, "annotator")["id"] == one.pk  # their unfinished version first, not a second slot
    _draw_and_submit(world, "annotator", one.pk, [])
    # `one` still has a free slot, but not for them.
    assert _next(world, "annotator")["id"] == two.pk
    _draw_and_submit(world, "annotator", two.pk, [])
    assert _next(world, "annotator") is None
    assert _next(world, "annotator2")["id"] == one.pk  # images under way are finished first
    assert Replica.objects.filter(annotator=world.users["annotator"]).count() == 2


def test_three_annotators_and_one_who_never_finishes_is_replaced_after_the_timeout(world, drawers) -> None:
    cat, dog = (label.pk for label in world.labels)
    _consensus(world, 3, timeout_hours=2)
    image = make_images(world.project, 1, width=W, height=H)[0]
    for who in ("annotator", "annotator2", "annotator3"):
        assert _next(world, who)["id"] == image.pk
    assert _next(world, "annotator4") is None
    _save(world, "annotator3", image.pk, 0, [(dog, square(5, 5, 10))])

    # annotator3 walks away: three hours after they took it, their slot is free for annotator4.
    Replica.objects.filter(annotator=drawers["annotator3"]).update(claimed_at=timezone.now() - timedelta(hours=3))
    assert _next(world, "annotator4")["id"] == image.pk
    late = Replica.objects.get(annotator=drawers["annotator3"])
    assert late.status == ReplicaStatus.ABANDONED
    refused = _save(world, "annotator3", image.pk, 1, [])
    assert refused.status_code == 409 and "ran out" in refused.json()["detail"]
    assert world.client("annotator3").post(f"/api/images/{image.pk}/submit/").status_code == 409
    assert _next(world, "annotator3") is None  # never handed back to them

    # Two of three agree on the cat, one drew a dog elsewhere: the merge keeps the cat.
    _draw_and_submit(world, "annotator", image.pk, [(cat, square(10, 10, 30))])
    _draw_and_submit(world, "annotator2", image.pk, [(cat, square(11, 11, 30))])
    image.refresh_from_db()
    assert image.status == ImageStatus.IN_PROGRESS  # two of three in
    _draw_and_submit(world, "annotator4", image.pk, [(dog, square(60, 40, 15))])
    image.refresh_from_db()
    assert image.status == ImageStatus.SUBMITTED
    rows = list(Annotation.objects.filter(image=image))
    assert [r.label_id for r in rows] == [cat]
    votes = _mask(square(10, 10, 30)).astype(int) + _mask(square(11, 11, 30)).astype(int)
    assert (rle_to_mask(rows[0].geometry["rle"]) == (votes * 2 > 2)).all()  # both of the two who drew it
    consensus = world.client("manager").get(f"/api/images/{image.pk}/consensus/").json()
    assert [v["status"] for v in consensus["versions"]] == ["submitted", "submitted", "submitted", "abandoned"]
    assert len(consensus["pairs"]) == 3


def test_reviewers_get_the_least_agreed_image_first(world) -> None:
    cat, _ = (label.pk for label in world.labels)
    _consensus(world, 2)
    agreed, disputed = make_images(world.project, 2, width=W, height=H)
    for who in ("annotator", "annotator2"):
        assert _next(world, who)["id"] == agreed.pk
        _draw_and_submit(world, who, agreed.pk, [(cat, square(10, 10, 30))])
    for who, ring in (("annotator", square(10, 10, 30)), ("annotator2", square(20, 15, 30))):
        assert _next(world, who)["id"] == disputed.pk
        _draw_and_submit(world, who, disputed.pk, [(cat, ring)])
    agreed.refresh_from_db()
    disputed.refresh_from_db()
    assert agreed.agreement == pytest.approx(1.0) and disputed.agreement < 0.5
    assert agreed.submitted_at < disputed.submitted_at  # waiting longer, and still second
    taken = world.client("reviewer").post(f"/api/projects/{world.project.pk}/review/next/")
    assert taken.json()["image"]["id"] == disputed.pk
    assert taken.json()["image"]["agreement"] == pytest.approx(disputed.agreement)


def test_whoever_drew_a_version_does_not_review_the_merge(world) -> None:
    _consensus(world, 2)
    image = make_images(world.project, 1, width=W, height=H)[0]
    for who in ("manager", "annotator"):
        assert _next(world, who)["id"] == image.pk
        _draw_and_submit(world, who, image.pk, [])
    manager = world.client("manager")
    assert manager.post(f"/api/projects/{world.project.pk}/review/next/").status_code == 204
    taken = manager.post(f"/api/images/{image.pk}/review/take/")
    assert taken.status_code == 403 and "versions" in taken.json()["detail"]


def test_a_version_given_back_frees_its_slot(world) -> None:
    _consensus(world, 2)
    image = make_images(world.project, 1, width=W, height=H)[0]
    for who in ("annotator", "annotator2"):
        assert _next(world, who)["id"] == image.pk
    released = world.client("annotator2").post(f"/api/images/{image.pk}/release/")
    assert released.status_code == 200 and released.json()["image"]["status"] == "new"
    assert not Replica.objects.filter(annotator=world.users["annotator2"]).exists()
    assert _next(world, "manager")["id"] == image.pk


def test_a_version_lacking_a_required_attribute_is_refused_as_any_submission(world) -> None:
    cat = world.labels[0]
    cat.attributes_schema = {"colour": {"type": "string", "choices": ["red", "black"], "required": True}}
    cat.save()
    _consensus(world, 2)
    image = make_images(world.project, 1, width=W, height=H)[0]
    assert _next(world, "annotator")["id"] == image.pk
    drawn = [{"label": cat.pk, "geometry": polygon_geometry(square(10, 10, 30))}]
    client = world.client("annotator")
    assert client.put(f"/api/images/{image.pk}/annotations/", {"version": 0, "annotations": drawn}, format="json").status_code == 200
    refused = client.post(f"/api/images/{image.pk}/submit/")
    assert refused.status_code == 400
    assert refused.json()["objects"][0]["missing"] == ["colour"] and refused.json()["objects"][0]["label"] == "cat"
    assert Replica.objects.get().status == ReplicaStatus.IN_PROGRESS
    drawn[0]["attributes"] = {"colour": "black"}
    assert client.put(f"/api/images/{image.pk}/annotations/", {"version": 1, "annotations": drawn}, format="json").status_code == 200
    assert client.post(f"/api/images/{image.pk}/submit/").status_code == 200
    assert Replica.objects.get().status == ReplicaStatus.SUBMITTED


def test_nobody_changes_the_image_itself_while_versions_are_drawn(world) -> None:
    _consensus(world, 2)
    image = make_images(world.project, 1, width=W, height=H)[0]
    assert _next(world, "annotator")["id"] == image.pk
    # The manager holds no version: their save would be on the image's own set, which waits.
    saved = _save(world, "manager", image.pk, 0, [])
    assert saved.status_code == 403 and "when all of them have submitted" in saved.json()["detail"]
    reset = world.client("manager").patch(f"/api/images/{image.pk}/", {"status": "new"}, format="json")
    assert reset.status_code == 409


def test_with_one_annotator_per_image_nothing_changes(world) -> None:
    image = make_images(world.project, 1, width=W, height=H)[0]
    got = _next(world, "annotator")
    assert got["id"] == image.pk and got["agreement"] is None
    _draw_and_submit(world, "annotator", image.pk, [(world.labels[0].pk, square(10, 10, 30))])
    image.refresh_from_db()
    assert (image.status, image.assignee, image.replicas_open, image.agreement) == (
        ImageStatus.SUBMITTED, world.users["annotator"], False, None,
    )
    assert not Replica.objects.exists()
    assert Revision.objects.get(image=image, version=1).action == "save"


def test_the_consensus_settings_are_checked(world) -> None:
    manager = world.client("manager")
    for body in ({"consensus_annotators": 0}, {"consensus_annotators": 11}, {"consensus_timeout_hours": 0}):
        response = manager.patch(f"/api/projects/{world.project.pk}/", body, format="json")
        assert response.status_code == 400, body
    world.project.refresh_from_db()
    assert (world.project.consensus_annotators, world.project.consensus_timeout_hours) == (1, 24)
    assert Image.objects.count() == 0


def test_the_settings_page_sets_annotators_per_image(world) -> None:
    from django.test import Client

    client = Client()
    client.force_login(world.users["manager"])
    page = client.get(f"/projects/{world.project.pk}/edit/").content.decode()
    assert 'name="consensus_annotators"' in page and 'name="consensus_timeout_hours"' in page
    response = client.post(f"/projects/{world.project.pk}/edit/", {
        "name": world.project.name, "required_accepts": 1, "queue_order": "priority", "break_reminder_minutes": 90,
        "consensus_annotators": 3, "consensus_timeout_hours": 6,
    })
    assert response.status_code == 302
    world.project.refresh_from_db()
    assert (world.project.consensus_annotators, world.project.consensus_timeout_hours) == (3, 6)


def test_a_backup_carries_the_consensus_settings_versions_and_agreement(world, tmp_path) -> None:
    from annotator.backups.services import BackupOptions, RestoreOptions, backup_write, restore
    from tests.backup_helpers import add_consensus, assert_same_content, project_content

    complete, collecting = add_consensus(world)
    path = tmp_path / "project.zip"
    backup_write(project=world.project, out=path, options=BackupOptions())
    restored = restore(path=path, archive_name=path.name, options=RestoreOptions(name="Copy")).project
    assert (restored.consensus_annotators, restored.consensus_timeout_hours) == (2, 5)
    assert_same_content(project_content(world.project), project_content(restored))
    # The copy goes on where the original stood: annotator2's slot on the collecting image is still free,
    # and annotator is handed their own version back, not a second one.
    copy = Image.objects.get(project=restored, checksum=collecting.checksum)
    assert copy.replicas_open and copy.agreement is None
    assert Image.objects.get(project=restored, checksum=complete.checksum).agreement == complete.agreement
    world.project = restored
    assert _next(world, "annotator2")["id"] == copy.pk
    mine = _load(world, "annotator", copy.pk)
    assert [o["label"] for o in mine["annotations"]] == [restored.labels.get(name="dog").pk]


def test_a_new_image_is_not_drawn_as_itself_outside_the_queue(world) -> None:
    _consensus(world, 2)
    image = make_images(world.project, 1, width=W, height=H)[0]
    for who in ("annotator", "manager"):
        saved = _save(world, who, image.pk, 0, [(world.labels[0].pk, square(10, 10, 30))])
        assert saved.status_code == 403 and "from your queue" in saved.json()["detail"], who
    submitted = world.client("annotator").post(f"/api/images/{image.pk}/submit/")
    assert submitted.status_code == 409 and "own version" in submitted.json()["detail"]
    image.refresh_from_db()
    assert (image.status, image.assignee, image.version) == (ImageStatus.NEW, None, 0)
    assert _next(world, "annotator")["id"] == image.pk  # the queue still hands it out as a version


@pytest.mark.django_db(transaction=True)
def test_annotators_asking_at_once_fill_every_slot_and_never_one_twice(world) -> None:
    from collections import Counter

    from annotator.projects.models import Membership
    from tests.annotator.test_queue import _race

    crowd = [f"crowd{i}" for i in range(8)]
    for name in crowd:
        world.users[name] = UserFactory(username=name)
        Membership.objects.create(project=world.project, user=world.users[name], role="annotator")
    _consensus(world, 3)
    images = make_images(world.project, 2, width=W, height=H)

    def take(name: str) -> tuple[str, int | None]:
        image = _next(world, name)
        return name, image["id"] if image else None

    results = _race(world, crowd, take)
    handed = Counter(image_id for _, image_id in results if image_id is not None)
    assert handed == {images[0].pk: 3, images[1].pk: 3}, handed  # six slots, six people, two told "empty"
    for name, image_id in results:
        if image_id is not None:
            assert Replica.objects.get(image_id=image_id, annotator__username=name).status == ReplicaStatus.IN_PROGRESS


def test_filtered_image_lists_show_each_annotator_their_own_version(world, drawers) -> None:
    from annotator.consensus.services import replicas_expire

    cat = world.labels[0].pk
    _consensus(world, 2, timeout_hours=2)
    drawn, walked_away = make_images(world.project, 2, width=W, height=H)
    for who in ("annotator", "annotator2"):
        assert _next(world, who)["id"] == drawn.pk
    _draw_and_submit(world, "annotator2", drawn.pk, [(cat, square(10, 10, 30))])  # annotator's is still in progress
    assert _next(world, "annotator3")["id"] == walked_away.pk
    Replica.objects.filter(annotator=drawers["annotator3"]).update(claimed_at=timezone.now() - timedelta(hours=3))
    assert replicas_expire(project=world.project) == 1
    url = f"/api/projects/{world.project.pk}/images/"

    def ids(who: str, **query: str) -> list[int]:
        page = world.client(who).get(url, query).json()
        assert page["count"] == len(page["results"])
        return [row["id"] for row in page["results"]]

    # Each sees the image collecting versions as their own version stands: in progress, submitted, theirs.
    assert drawn.pk in ids("annotator", status="in_progress") and ids("annotator", assignee="annotator") == [drawn.pk]
    assert ids("annotator2", status="submitted") == [drawn.pk] and drawn.pk not in ids("annotator2", status="in_progress")
    assert ids("annotator2", assignee="annotator2") == [drawn.pk] and drawn.pk not in ids("annotator2", assignee="none")
    neighbours = world.client("annotator2").get(f"/api/images/{walked_away.pk}/neighbours/", {"status": "submitted"}).json()
    assert (neighbours["previous"], neighbours["count"]) == (drawn.pk, 1)
    # A version abandoned: the image is new and nobody's to them, as the list's row shows it.
    assert ids("annotator3", status="new") == [walked_away.pk] and walked_away.pk in ids("annotator3", assignee="none")
    assert ids("annotator3", assignee="annotator3") == [] and walked_away.pk not in ids("annotator3", status="in_progress")
    rows = world.client("annotator3").get(url, {"status": "new"}).json()["results"]
    assert [(r["status"], r["assignee"]) for r in rows] == [("new", None)]
    # Everyone else sees the images as they are: collecting versions, nobody's.
    assert ids("manager", status="in_progress") == [drawn.pk, walked_away.pk] and ids("manager", status="submitted") == []
    assert ids("manager", assignee="annotator") == []
    # The page shows the tiles the same way (copies, never saved).
    client = world.client("annotator2")
    client.force_login(world.users["annotator2"])
    page = client.get(f"/projects/{world.project.pk}/images/", {"status": "submitted"}).content.decode()
    tile = page[page.index(f"/images/{drawn.pk}/edit/"):][:900]
    assert "s-submitted" in tile and "annotator2" in tile and f"/images/{walked_away.pk}/edit/" not in page
    drawn.refresh_from_db()
    assert drawn.status == ImageStatus.IN_PROGRESS and drawn.assignee is None
