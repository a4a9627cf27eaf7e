"""Ground truth (honeypots): marking accepted images, mixing them into annotators' queues, scoring
the attempts, and keeping the truth out of their reach.

The people: `annotator2` drew the ground-truth images and `reviewer` accepted them (their
authors); `annotator` is the one being checked.
"""
from __future__ import annotations

import io
import json
import random
import zipfile

import pytest

from annotator.annotations.models import Annotation
from annotator.annotations.services import annotations_replace
from annotator.datasets.exports import ExportOptions, export_write
from annotator.groundtruth.models import GroundTruth, GroundTruthAttempt
from annotator.images.models import Image, ImageStatus
from annotator.images.services import image_submit, queue_next
from tests.factories import make_images, polygon_geometry, square


def _accepted_with_objects(world, count: int = 1) -> list[Image]:
    """Images annotator2 drew (a cat and a dog each) and the reviewer accepted."""
    cat, dog = world.labels
    out = []
    for image in make_images(world.project, count, width=100, height=80):
        annotations_replace(image=image, user=world.users["manager"], base_version=0, items=[
            {"label": cat.pk, "geometry": polygon_geometry(square(10, 10, 30))},
            {"label": dog.pk, "geometry": polygon_geometry(square(50, 20, 40))},
        ])
        Image.objects.filter(pk=image.pk).update(
            status=ImageStatus.ACCEPTED, assignee=world.users["annotator2"], reviewer=world.users["reviewer"],
        )
        image.refresh_from_db()
        out.append(image)
    return out


def _mark(world, image: Image):  # type: ignore[no-untyped-def]
    return world.client("manager").post(f"/api/images/{image.pk}/ground-truth/")


def _ground_truth(world, count: int = 1) -> list[Image]:
    images = _accepted_with_objects(world, count)
    for image in images:
        assert _mark(world, image).status_code == 201
        image.refresh_from_db()
    return images


def _rate(world, rate: float) -> None:
    response = world.client("manager").patch(f"/api/projects/{world.project.pk}/", {"ground_truth_rate": rate}, format="json")
    assert response.status_code == 200, response.json()
    world.project.refresh_from_db()


def test_a_manager_marks_an_accepted_image_and_its_objects_are_frozen(world) -> None:
    image = _accepted_with_objects(world)[0]
    assert world.client("annotator").post(f"/api/images/{image.pk}/ground-truth/").status_code == 403
    response = _mark(world, image)
    assert response.status_code == 201
    assert response.json()["object_count"] == 2
    assert (response.json()["annotator"], response.json()["reviewer"]) == ("annotator2", "reviewer")
    truth = GroundTruth.objects.get(image=image)
    assert [obj["label"] for obj in truth.truth] == [label.pk for label in world.labels]
    # Frozen: a manager cannot change it, reopen it or reset it until it is unmarked.
    manager = world.client("manager")
    saved = manager.put(f"/api/images/{image.pk}/annotations/", {"version": image.version, "annotations": []}, format="json")
    assert saved.status_code == 403 and "ground truth" in saved.json()["detail"]
    reopened = manager.patch(f"/api/images/{image.pk}/", {"status": "in_progress"}, format="json")
    assert reopened.status_code == 409 and "ground truth" in reopened.json()["detail"]
    assert Annotation.objects.filter(image=image).count() == 2
    assert _mark(world, image).status_code == 409


def test_only_accepted_images_become_ground_truth(world) -> None:
    image = make_images(world.project, 1)[0]
    response = _mark(world, image)
    assert response.status_code == 409
    assert response.json() == {
        "detail": "The image is new; only accepted images can become ground truth.",
        "code": "invalid_transition", "action": "mark_ground_truth", "status": "new",
    }
    assert not GroundTruth.objects.exists()


def test_the_queue_mixes_ground_truth_in_at_the_projects_rate(world) -> None:
    _ground_truth(world, 40)
    make_images(world.project, 260, width=8, height=8)
    _rate(world, 0.1)
    rng = random.Random(20261202)
    annotator = world.users["annotator"]
    served = 0
    for _ in range(200):
        image = queue_next(project=world.project, user=annotator, rng=rng)
        assert image is not None
        served += image.is_ground_truth
        image_submit(image=image, user=annotator)
    # 200 draws at 10 %: 20 expected; the binomial's standard deviation is about 4.2.
    assert 10 <= served <= 30, served
    assert GroundTruthAttempt.objects.filter(annotator=annotator, status=ImageStatus.SUBMITTED).count() == served
    # Each ground-truth image at most once to them (also a unique constraint).
    assert GroundTruthAttempt.objects.filter(annotator=annotator).values("image").distinct().count() == served


def test_ground_truth_never_goes_to_its_authors_nor_twice_to_anyone(world) -> None:
    _ground_truth(world, 3)
    make_images(world.project, 10, width=8, height=8)
    _rate(world, 1.0)
    for author in ("annotator2", "reviewer"):  # who drew them, who accepted them (made an annotator here)
        world.project.memberships.filter(user=world.users[author]).update(role="annotator")
        image = queue_next(project=world.project, user=world.users[author], rng=random.Random(1))
        assert image is not None and not image.is_ground_truth, author
    annotator = world.users["annotator"]
    seen = []
    for _ in range(5):
        image = queue_next(project=world.project, user=annotator, rng=random.Random(1))
        seen.append(image.is_ground_truth)
        image_submit(image=image, user=annotator)
    assert seen == [True, True, True, False, False]  # the three once each, then ordinary work


def test_to_the_annotator_a_ground_truth_image_looks_like_any_other(world) -> None:
    truth_image = _ground_truth(world, 1)[0]
    make_images(world.project, 1, width=8, height=8)
    client = world.client("annotator")

    _rate(world, 1.0)
    served = client.post(f"/api/projects/{world.project.pk}/queue/next/").json()["image"]
    _rate(world, 0.0)
    ordinary = world.client("annotator2").post(f"/api/projects/{world.project.pk}/queue/next/").json()["image"]
    assert served["id"] == truth_image.pk
    assert set(served) == set(ordinary)
    for key in ("status", "assignee", "reviewer", "version", "submitted_at"):
        mine = {"assignee": "annotator"}.get(key, ordinary[key])
        theirs = {"assignee": "annotator2"}.get(key, ordinary[key])
        assert (served[key], ordinary[key]) == (mine, theirs), key
    assert client.get(f"/api/images/{truth_image.pk}/").json()["status"] == "in_progress"
    listed = {row["id"]: row for row in client.get(f"/api/projects/{world.project.pk}/images/").json()["results"]}
    assert listed[truth_image.pk]["status"] == "in_progress" and listed[truth_image.pk]["assignee"] == "annotator"
    # The editor opens an empty set to draw on, editable, with no history of the truth.
    assert client.get(f"/api/images/{truth_image.pk}/annotations/").json() == {"image": truth_image.pk, "version": 0, "annotations": []}
    assert client.get(f"/api/images/{truth_image.pk}/access/").json()["can_edit"] is True
    assert client.get(f"/api/images/{truth_image.pk}/revisions/").json() == []
    assert client.get(f"/api/images/{truth_image.pk}/revisions/1/").status_code == 404
    # Others still see the image as it is.
    assert world.client("manager").get(f"/api/images/{truth_image.pk}/").json()["status"] == "accepted"


def test_an_attempt_never_overwrites_the_truth_and_is_scored_on_submission(world) -> None:
    truth_image = _ground_truth(world, 1)[0]
    before = list(Annotation.objects.filter(image=truth_image).values_list("uid", "label_id", "polygons"))
    _rate(world, 1.0)
    client = world.client("annotator")
    client.post(f"/api/projects/{world.project.pk}/queue/next/")
    cat, dog = world.labels
    drawn = [  # the cat right, the dog drawn as a cat, and a cat that is not there
        {"label": cat.pk, "geometry": polygon_geometry(square(10, 10, 30))},
        {"label": cat.pk, "geometry": polygon_geometry(square(50, 20, 40))},
        {"label": cat.pk, "geometry": polygon_geometry(square(80, 0, 10))},
    ]
    saved = client.put(f"/api/images/{truth_image.pk}/annotations/", {"version": 0, "annotations": drawn}, format="json")
    assert saved.status_code == 200 and saved.json()["version"] == 1
    stale = client.put(f"/api/images/{truth_image.pk}/annotations/", {"version": 0, "annotations": []}, format="json")
    assert stale.status_code == 409 and stale.json()["current_version"] == 1
    assert len(client.get(f"/api/images/{truth_image.pk}/annotations/").json()["annotations"]) == 3

    submitted = client.post(f"/api/images/{truth_image.pk}/submit/")
    assert submitted.status_code == 200
    assert (submitted.json()["image"]["status"], submitted.json()["image"]["assignee"]) == ("submitted", "annotator")
    assert list(Annotation.objects.filter(image=truth_image).values_list("uid", "label_id", "polygons")) == before
    truth_image.refresh_from_db()
    assert (truth_image.status, truth_image.is_ground_truth) == (ImageStatus.ACCEPTED, True)
    # Submitted: read-only for them, like any submitted image; a second submission is refused.
    assert client.put(f"/api/images/{truth_image.pk}/annotations/", {"version": 1, "annotations": []}, format="json").status_code == 403
    again = client.post(f"/api/images/{truth_image.pk}/submit/")
    assert again.status_code == 409 and again.json()["status"] == "submitted"

    attempt = world.client("manager").get(f"/api/projects/{world.project.pk}/ground-truth/attempts/").json()[0]
    assert attempt["annotator"] == "annotator" and attempt["status"] == "submitted"
    assert attempt["precision"] == pytest.approx(1 / 3) and attempt["recall"] == pytest.approx(1 / 2)
    assert attempt["mean_iou"] == pytest.approx(1.0)
    kinds = sorted(c["kind"] for c in attempt["scores"]["conflicts"])
    assert kinds == ["extra", "wrong_label"]


@pytest.mark.parametrize("feedback", [True, False])
def test_with_feedback_on_the_annotator_sees_their_score_on_submission_and_otherwise_nothing(world, feedback: bool) -> None:
    truth_image = _ground_truth(world, 1)[0]
    _rate(world, 1.0)
    response = world.client("manager").patch(f"/api/projects/{world.project.pk}/", {"ground_truth_feedback": feedback}, format="json")
    assert response.status_code == 200 and response.json()["ground_truth_feedback"] is feedback
    client = world.client("annotator")
    assert client.post(f"/api/projects/{world.project.pk}/queue/next/").json()["image"]["id"] == truth_image.pk
    cat, dog = world.labels
    drawn = [  # the cat right, the dog drawn as a cat
        {"label": cat.pk, "geometry": polygon_geometry(square(10, 10, 30))},
        {"label": cat.pk, "geometry": polygon_geometry(square(50, 20, 40))},
    ]
    assert client.put(f"/api/images/{truth_image.pk}/annotations/", {"version": 0, "annotations": drawn}, format="json").status_code == 200
    submitted = client.post(f"/api/images/{truth_image.pk}/submit/")
    assert submitted.status_code == 200
    if not feedback:
        assert set(submitted.json()) == {"image"}  # nothing tells them it was ground truth
        return
    shown = submitted.json()["feedback"]
    assert (shown["precision"], shown["recall"], shown["f1"], shown["mean_iou"]) == (0.5, 0.5, 0.5, pytest.approx(1.0))
    assert shown["conflicts"] == [{"kind": "wrong_label", "attempt": _drawn_uid(client, truth_image, 1), "iou": pytest.approx(1.0),
                                   "truth_label": "dog", "attempt_label": "cat"}]


def test_the_feedback_setting_is_a_boolean(world) -> None:
    response = world.client("manager").patch(f"/api/projects/{world.project.pk}/", {"ground_truth_feedback": "sometimes"}, format="json")
    assert response.status_code == 400 and "ground_truth_feedback" in response.json()["detail"]
    world.project.refresh_from_db()
    assert world.project.ground_truth_feedback is False


def test_the_settings_page_turns_the_feedback_on_and_off(world, client) -> None:
    client.force_login(world.users["manager"])
    assert 'name="ground_truth_feedback"' in client.get(f"/projects/{world.project.pk}/edit/").content.decode()
    form = {"name": world.project.name, "required_accepts": 1, "queue_order": "priority", "break_reminder_minutes": 90}
    for sent, stored in (({"ground_truth_feedback": "on"}, True), ({}, False)):  # an unticked box is not sent
        assert client.post(f"/projects/{world.project.pk}/edit/", form | sent).status_code == 302
        world.project.refresh_from_db()
        assert world.project.ground_truth_feedback is stored


def _drawn_uid(client, image: Image, index: int) -> str:  # type: ignore[no-untyped-def]
    return client.get(f"/api/images/{image.pk}/annotations/").json()["annotations"][index]["uid"]


def test_the_report_gives_each_annotator_and_label_their_numbers(world) -> None:
    truth_image = _ground_truth(world, 1)[0]
    _rate(world, 1.0)
    cat, dog = world.labels
    client = world.client("annotator")
    client.post(f"/api/projects/{world.project.pk}/queue/next/")
    drawn = [{"label": cat.pk, "geometry": polygon_geometry(square(10, 10, 30))},
             {"label": cat.pk, "geometry": polygon_geometry(square(50, 20, 40))}]
    client.put(f"/api/images/{truth_image.pk}/annotations/", {"version": 0, "annotations": drawn}, format="json")
    client.post(f"/api/images/{truth_image.pk}/submit/")

    assert world.client("annotator").get(f"/api/projects/{world.project.pk}/quality/ground-truth/").status_code == 403
    report = world.client("manager").get(f"/api/projects/{world.project.pk}/quality/ground-truth/").json()
    assert (report["ground_truth_images"], report["attempts"]) == (1, 1)
    [person] = report["annotators"]
    assert (person["username"], person["tp"], person["fp"], person["fn"]) == ("annotator", 1, 1, 1)
    assert person["f1"] == pytest.approx(0.5) and person["mean_iou"] == pytest.approx(1.0)
    labels = {row["name"]: row for row in report["labels"]}
    assert (labels["cat"]["tp"], labels["cat"]["fp"], labels["cat"]["fn"]) == (1, 1, 0)
    assert (labels["dog"]["tp"], labels["dog"]["recall"]) == (0, 0.0)
    assert report["confusion"] == {str(cat.pk): {str(cat.pk): 1}, str(dog.pk): {str(cat.pk): 1}}
    assert [c["kind"] for c in report["conflicts"]] == ["wrong_label"]
    assert report["conflicts"][0]["image"] == truth_image.pk


def test_attempts_never_enter_exports(world) -> None:
    truth_image = _ground_truth(world, 1)[0]
    _rate(world, 1.0)
    client = world.client("annotator")
    client.post(f"/api/projects/{world.project.pk}/queue/next/")
    drawn = [{"label": world.labels[0].pk, "geometry": polygon_geometry(square(1, 1, 5))}]
    client.put(f"/api/images/{truth_image.pk}/annotations/", {"version": 0, "annotations": drawn}, format="json")
    client.post(f"/api/images/{truth_image.pk}/submit/")
    out = io.BytesIO()
    export_write(project=world.project, options=ExportOptions.from_dict({"format": "coco"}), out=out)
    with zipfile.ZipFile(out) as archive:
        coco = json.loads(archive.read(next(n for n in archive.namelist() if n.endswith(".json") and "manifest" not in n)))
    assert len(coco["images"]) == 1  # accepted images only: the ground truth itself
    assert len(coco["annotations"]) == 2  # the truth's cat and dog, not the attempt's square


def test_unmarking_drops_unfinished_attempts_and_keeps_scored_ones(world) -> None:
    first, second = _ground_truth(world, 2)
    _rate(world, 1.0)
    annotator = world.users["annotator"]
    image_submit(image=queue_next(project=world.project, user=annotator, rng=random.Random(3)), user=annotator)
    queue_next(project=world.project, user=annotator, rng=random.Random(3))  # the second, left unfinished
    for image in (first, second):
        assert world.client("manager").delete(f"/api/images/{image.pk}/ground-truth/").status_code == 204
    assert list(GroundTruthAttempt.objects.values_list("image_id", "status")) == [(first.pk, "submitted")]
    assert not Image.objects.filter(is_ground_truth=True).exists() and not GroundTruth.objects.exists()
    again = world.client("manager").delete(f"/api/images/{first.pk}/ground-truth/")
    assert again.status_code == 409 and again.json()["detail"] == "The image is not ground truth."


def test_giving_back_an_attempt_drops_it_and_says_new(world) -> None:
    truth_image = _ground_truth(world, 1)[0]
    _rate(world, 1.0)
    client = world.client("annotator")
    client.post(f"/api/projects/{world.project.pk}/queue/next/")
    response = client.post(f"/api/images/{truth_image.pk}/release/")
    assert response.status_code == 200
    assert (response.json()["image"]["status"], response.json()["image"]["assignee"]) == ("new", None)
    assert not GroundTruthAttempt.objects.exists()


@pytest.mark.parametrize("rate", [-0.1, 1.5, "nan", "often"])
def test_the_rate_is_a_share_from_0_to_1(world, rate: object) -> None:
    response = world.client("manager").patch(f"/api/projects/{world.project.pk}/", {"ground_truth_rate": rate}, format="json")
    assert response.status_code == 400
    assert "ground_truth_rate" in response.json()["detail"]


def test_an_attempt_lacking_a_required_attribute_is_refused_as_any_submission(world) -> None:
    truth_image = _ground_truth(world, 1)[0]
    cat = world.labels[0]
    cat.attributes_schema = {"colour": {"type": "string", "choices": ["red", "black"], "required": True}}
    cat.save()
    _rate(world, 1.0)
    client = world.client("annotator")
    client.post(f"/api/projects/{world.project.pk}/queue/next/")
    drawn = [{"label": cat.pk, "geometry": polygon_geometry(square(10, 10, 30))}]
    assert client.put(f"/api/images/{truth_image.pk}/annotations/", {"version": 0, "annotations": drawn}, format="json").status_code == 200
    refused = client.post(f"/api/images/{truth_image.pk}/submit/")
    assert refused.status_code == 400
    assert refused.json()["objects"][0]["missing"] == ["colour"] and refused.json()["objects"][0]["label"] == "cat"
    assert GroundTruthAttempt.objects.get().status == ImageStatus.IN_PROGRESS
    drawn[0]["attributes"] = {"colour": "black"}
    assert client.put(f"/api/images/{truth_image.pk}/annotations/", {"version": 1, "annotations": drawn}, format="json").status_code == 200
    assert client.post(f"/api/images/{truth_image.pk}/submit/").status_code == 200


def test_the_image_list_page_shows_the_attempt_as_their_work(world, client) -> None:
    truth_image = _ground_truth(world, 1)[0]
    _rate(world, 1.0)
    world.client("annotator").post(f"/api/projects/{world.project.pk}/queue/next/")
    client.force_login(world.users["annotator"])
    page = client.get(f"/projects/{world.project.pk}/images/").content.decode()
    tile = page[page.index(f"/images/{truth_image.pk}/edit/"):][:900]
    assert "s-in_progress" in tile and "annotator" in tile and "s-accepted" not in tile
    client.force_login(world.users["manager"])
    page = client.get(f"/projects/{world.project.pk}/images/").content.decode()
    assert "s-accepted" in page[page.index(f"/images/{truth_image.pk}/edit/"):][:900]
    truth_image.refresh_from_db()
    assert truth_image.status == ImageStatus.ACCEPTED  # the copy shown was never saved


def test_filtered_image_lists_show_the_attempt_as_the_annotator_sees_it(world) -> None:
    truth_image = _ground_truth(world, 1)[0]
    ordinary = make_images(world.project, 1, width=8, height=8)[0]
    _rate(world, 1.0)
    client = world.client("annotator")
    assert client.post(f"/api/projects/{world.project.pk}/queue/next/").json()["image"]["id"] == truth_image.pk
    url = f"/api/projects/{world.project.pk}/images/"

    def ids(who: str, **query: str) -> list[int]:
        page = world.client(who).get(url, query).json()
        assert page["count"] == len(page["results"])
        return [row["id"] for row in page["results"]]

    assert ids("annotator", status="in_progress") == [truth_image.pk]
    assert ids("annotator", status="in_progress,submitted") == [truth_image.pk]
    assert ids("annotator", assignee="annotator") == [truth_image.pk]
    assert ids("annotator", status="accepted") == [] and ids("annotator", assignee="annotator2") == []
    assert ids("annotator", status="new") == [ordinary.pk]
    neighbours = client.get(f"/api/images/{ordinary.pk}/neighbours/", {"status": "in_progress"}).json()
    assert (neighbours["previous"], neighbours["count"]) == (truth_image.pk, 1)
    # Everyone else sees the image as it is: accepted, drawn by annotator2.
    assert ids("manager", status="accepted") == [truth_image.pk] and ids("manager", status="in_progress") == []
    assert ids("annotator2", assignee="annotator2") == [truth_image.pk]
    client.post(f"/api/images/{truth_image.pk}/submit/")
    assert ids("annotator", status="submitted") == [truth_image.pk] and ids("annotator", status="in_progress") == []


def test_an_annotator_who_was_not_handed_a_ground_truth_image_cannot_read_its_objects(world) -> None:
    truth_image, other = _ground_truth(world, 2)
    annotator = world.client("annotator")
    for url in (f"/api/images/{truth_image.pk}/annotations/", f"/api/images/{truth_image.pk}/revisions/",
                f"/api/images/{truth_image.pk}/revisions/1/"):
        response = annotator.get(url)
        assert response.status_code == 403, url
        assert "ground-truth image" in response.json()["detail"] and "queue" in response.json()["detail"]
    # Its authors, reviewers and managers see the truth.
    for who in ("annotator2", "reviewer", "manager"):
        assert len(world.client(who).get(f"/api/images/{truth_image.pk}/annotations/").json()["annotations"]) == 2, who
    # Once the queue hands it over, the annotator sees their own (empty) attempt.
    _rate(world, 1.0)
    annotator.post(f"/api/projects/{world.project.pk}/queue/next/")
    assert annotator.get(f"/api/images/{truth_image.pk}/annotations/").json()["annotations"] == []
    # Unmarked, it is an ordinary accepted image again.
    assert annotator.get(f"/api/images/{other.pk}/annotations/").status_code == 403
    assert world.client("manager").delete(f"/api/images/{other.pk}/ground-truth/").status_code in (200, 204)
    assert len(annotator.get(f"/api/images/{other.pk}/annotations/").json()["annotations"]) == 2
