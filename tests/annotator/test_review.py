"""Peer review: the queue, decisions (image and per object), comments, diffs, policy, statistics."""
from __future__ import annotations

import itertools
import threading
import uuid

import pytest
from django.db import close_old_connections, connection

from annotator.annotations.models import Prediction
from annotator.annotations.services import annotations_replace
from annotator.images.models import Image, ImageStatus
from annotator.images.services import image_submit, images_add, queue_next
from annotator.learning.models import ModelVersion
from annotator.review.models import ObjectDecision, ReviewComment, ReviewDecision
from annotator.review.services import review_decide, review_next
from ml.geometry import polygons_to_rle
from tests.factories import MembershipFactory, UserFactory, make_images, png_bytes, polygon_geometry, square


def _annotate(image: Image, user, objects: list[dict]) -> Image:  # type: ignore[no-untyped-def]
    image.refresh_from_db()
    image = annotations_replace(image=image, user=user, base_version=image.version, items=objects).image
    return image


def _obj(label, x: float, y: float, size: float, **extra) -> dict:  # type: ignore[no-untyped-def]
    return {"uid": str(uuid.uuid4()), "label": label.pk, "geometry": polygon_geometry(square(x, y, size)), **extra}


_colors = itertools.count(1)


def _new_image(project, width: int = 200, height: int = 100) -> Image:  # type: ignore[no-untyped-def]
    """A new image with pixels no other test image has (the project refuses duplicates)."""
    k = next(_colors)
    data = png_bytes(width, height, color=(k % 256, (k // 256) % 256, 11))
    return images_add(project=project, sources=[(f"img{k}.png", lambda: data)]).created[0]


def _submitted_image(world, annotator: str = "annotator", count: int = 2) -> tuple[Image, list[dict]]:  # type: ignore[no-untyped-def]
    """An image annotated and submitted by `annotator`, through the annotate queue."""
    user = world.users[annotator]
    _new_image(world.project)
    image = queue_next(project=world.project, user=user)
    assert image is not None
    objects = [_obj(world.labels[0], 10 + 40 * k, 10, 30) for k in range(count)]
    image = _annotate(image, user, objects)
    image = image_submit(image=image, user=user)
    return image, objects


def _decide(world, persona: str, image: Image, **body) -> object:  # type: ignore[no-untyped-def]
    image.refresh_from_db()
    return world.client(persona).post(f"/api/images/{image.pk}/review/", {"version": image.version, **body}, format="json")


# --------------------------------------------------------------------------------------------
# The queue
# --------------------------------------------------------------------------------------------


def test_review_next_hands_a_submitted_image_to_a_reviewer(world) -> None:
    image, _ = _submitted_image(world)
    response = world.client("reviewer").post(f"/api/projects/{world.project.pk}/review/next/")
    assert response.status_code == 200
    assert response.json()["image"]["id"] == image.pk
    image.refresh_from_db()
    assert image.status == ImageStatus.IN_REVIEW
    assert image.reviewer == world.users["reviewer"]
    # Asking again returns the same image (the one they hold), not a second one.
    again = world.client("reviewer").post(f"/api/projects/{world.project.pk}/review/next/")
    assert again.json()["image"]["id"] == image.pk


def test_reviewer_cannot_review_own_submission(world) -> None:
    # The manager annotates an image and also reviews: the queue must skip their own image.
    image, _ = _submitted_image(world, annotator="manager")
    response = world.client("manager").post(f"/api/projects/{world.project.pk}/review/next/")
    assert response.status_code == 204
    image.refresh_from_db()
    assert image.status == ImageStatus.SUBMITTED
    # Deciding on it directly is refused too, and so is taking it from the image list.
    assert _decide(world, "manager", image, decision="accept").status_code == 403
    assert world.client("manager").post(f"/api/images/{image.pk}/review/take/").status_code == 403
    # Someone else gets it.
    assert world.client("reviewer").post(f"/api/projects/{world.project.pk}/review/next/").json()["image"]["id"] == image.pk


def test_annotators_cannot_use_the_review_queue(world) -> None:
    _submitted_image(world, annotator="annotator2")
    assert world.client("annotator").post(f"/api/projects/{world.project.pk}/review/next/").status_code == 403
    assert world.client("outsider").post(f"/api/projects/{world.project.pk}/review/next/").status_code == 404


def test_release_gives_the_image_back_to_the_queue(world) -> None:
    image, _ = _submitted_image(world)
    world.client("reviewer").post(f"/api/projects/{world.project.pk}/review/next/")
    response = world.client("reviewer").post(f"/api/images/{image.pk}/review/release/")
    assert response.status_code == 200
    image.refresh_from_db()
    assert (image.status, image.reviewer) == (ImageStatus.SUBMITTED, None)


# --------------------------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------------------------


def test_accept_makes_the_image_accepted_with_one_required_accept(world) -> None:
    image, objects = _submitted_image(world)
    world.client("reviewer").post(f"/api/projects/{world.project.pk}/review/next/")
    response = _decide(world, "reviewer", image, decision="accept",
                       objects=[{"uid": o["uid"], "decision": "accept"} for o in objects])
    assert response.status_code == 201, response.json()
    image.refresh_from_db()
    assert image.status == ImageStatus.ACCEPTED
    decision = ReviewDecision.objects.get(image=image)
    assert decision.reviewer == world.users["reviewer"] and decision.annotator == world.users["annotator"]
    assert ObjectDecision.objects.filter(decision=decision, verdict="accept").count() == 2


def test_reject_resubmit_cycle_keeps_comments_and_per_object_decisions(world) -> None:
    image, objects = _submitted_image(world)
    world.client("reviewer").post(f"/api/projects/{world.project.pk}/review/next/")
    bad, good = objects
    response = _decide(
        world, "reviewer", image, decision="reject", comment="The first nut is cut off.",
        objects=[{"uid": bad["uid"], "decision": "reject", "comment": "Include the shell."},
                 {"uid": good["uid"], "decision": "accept"}],
        comments=[{"text": "Missing object here", "x": 150.0, "y": 50.0}],
    )
    assert response.status_code == 201, response.json()
    image.refresh_from_db()
    # Back in the annotator's queue, still theirs.
    assert image.status == ImageStatus.REJECTED
    assert image.assignee == world.users["annotator"]
    assert queue_next(project=world.project, user=world.users["annotator"]).pk == image.pk

    # The annotator sees the comments and verdicts in the editor's review state.
    state = world.client("annotator").get(f"/api/images/{image.pk}/review/").json()
    assert state["status"] == "rejected"
    texts = {c["text"]: c for c in state["comments"]}
    assert texts["Missing object here"]["x"] == 150.0
    assert texts["Include the shell."]["uid"] == bad["uid"]
    verdicts = {o["uid"]: o["decision"] for o in state["decisions"][0]["objects"]}
    assert verdicts == {bad["uid"]: "reject", good["uid"]: "accept"}
    assert state["decisions"][0]["comment"] == "The first nut is cut off."

    # The annotator fixes the object, resolves the comment, resubmits: back to review.
    fixed = [{**bad, "geometry": polygon_geometry(square(8, 8, 34))}, good]
    image = _annotate(image, world.users["annotator"], fixed)
    comment_id = texts["Include the shell."]["id"]
    assert world.client("annotator").patch(f"/api/comments/{comment_id}/", {"resolved": True}, format="json").status_code == 200
    assert world.client("annotator").post(f"/api/images/{image.pk}/submit/").status_code == 200
    response = world.client("reviewer").post(f"/api/projects/{world.project.pk}/review/next/")
    assert response.json()["image"]["id"] == image.pk
    assert _decide(world, "reviewer", image, decision="accept").status_code == 201
    image.refresh_from_db()
    assert image.status == ImageStatus.ACCEPTED
    # Every decision is kept.
    assert list(ReviewDecision.objects.filter(image=image).order_by("created_at").values_list("decision", flat=True)) == ["reject", "accept"]
    assert ReviewComment.objects.get(pk=comment_id).resolved


def test_accepting_with_a_rejected_object_is_refused(world) -> None:
    image, objects = _submitted_image(world)
    world.client("reviewer").post(f"/api/projects/{world.project.pk}/review/next/")
    response = _decide(world, "reviewer", image, decision="accept", objects=[{"uid": objects[0]["uid"], "decision": "reject"}])
    assert response.status_code == 400
    assert "rejected" in response.json()["detail"]
    assert not ReviewDecision.objects.exists()


def test_rejection_without_a_reason_is_refused(world) -> None:
    image, _ = _submitted_image(world)
    world.client("reviewer").post(f"/api/projects/{world.project.pk}/review/next/")
    response = _decide(world, "reviewer", image, decision="reject")
    assert response.status_code == 400
    image.refresh_from_db()
    assert image.status == ImageStatus.IN_REVIEW


def test_decision_on_a_stale_version_is_a_conflict(world) -> None:
    image, _ = _submitted_image(world)
    world.client("reviewer").post(f"/api/projects/{world.project.pk}/review/next/")
    image.refresh_from_db()
    response = world.client("reviewer").post(f"/api/images/{image.pk}/review/", {"version": image.version - 1, "decision": "accept"}, format="json")
    assert response.status_code == 409
    assert response.json()["current_version"] == image.version


def test_per_object_decision_must_name_an_object_of_the_image(world) -> None:
    image, _ = _submitted_image(world)
    world.client("reviewer").post(f"/api/projects/{world.project.pk}/review/next/")
    response = _decide(world, "reviewer", image, decision="reject", objects=[{"uid": str(uuid.uuid4()), "decision": "reject"}])
    assert response.status_code == 400
    assert "not on this image" in response.json()["detail"]


def test_required_accepts_two_needs_two_distinct_reviewers(world) -> None:
    world.project.required_accepts = 2
    world.project.save()
    second = UserFactory(username="reviewer2")
    MembershipFactory(project=world.project, user=second, role="reviewer")
    image, _ = _submitted_image(world)

    world.client("reviewer").post(f"/api/projects/{world.project.pk}/review/next/")
    response = _decide(world, "reviewer", image, decision="accept")
    assert response.json()["accepts"] == 1
    image.refresh_from_db()
    assert image.status == ImageStatus.SUBMITTED  # waiting for the second reviewer
    # The first reviewer does not get it again, and cannot accept twice.
    assert world.client("reviewer").post(f"/api/projects/{world.project.pk}/review/next/").status_code == 204
    assert _decide(world, "reviewer", image, decision="accept").status_code == 409
    # The annotator never gets it either (not even as a manager would).
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(second)
    assert client.post(f"/api/projects/{world.project.pk}/review/next/").json()["image"]["id"] == image.pk
    image.refresh_from_db()
    response = client.post(f"/api/images/{image.pk}/review/", {"version": image.version, "decision": "accept"}, format="json")
    assert response.status_code == 201
    image.refresh_from_db()
    assert image.status == ImageStatus.ACCEPTED
    assert set(world.client("manager").get(f"/api/images/{image.pk}/review/").json()["accepted_by"]) == {"reviewer", "reviewer2"}


def test_accepts_count_only_for_the_same_version(world) -> None:
    world.project.required_accepts = 2
    world.project.save()
    second = UserFactory(username="reviewer2")
    MembershipFactory(project=world.project, user=second, role="reviewer")
    image, objects = _submitted_image(world)
    review_next(project=world.project, user=world.users["reviewer"])
    image.refresh_from_db()
    review_decide(image=image, user=world.users["reviewer"], decision="accept", version=image.version)
    # The second reviewer corrects a mask, then accepts: that is a new version with one accept.
    assert review_next(project=world.project, user=second).pk == image.pk
    image = _annotate(image, second, [{**objects[0], "geometry": polygon_geometry(square(12, 12, 26))}, objects[1]])
    result = review_decide(image=image, user=second, decision="accept", version=image.version)
    assert result.accepts == 1
    assert result.image.status == ImageStatus.SUBMITTED
    # Now the first reviewer must look again (their accept was for the old version).
    assert review_next(project=world.project, user=world.users["reviewer"]).pk == image.pk
    image.refresh_from_db()
    result = review_decide(image=image, user=world.users["reviewer"], decision="accept", version=image.version)
    assert result.image.status == ImageStatus.ACCEPTED


@pytest.mark.django_db(transaction=True)
def test_concurrent_review_next_never_hands_one_image_to_two_reviewers(world) -> None:
    reviewers = [UserFactory(username=f"rev{k}") for k in range(6)]
    for user in reviewers:
        MembershipFactory(project=world.project, user=user, role="reviewer")
    images = make_images(world.project, 4, width=40, height=30)
    Image.objects.filter(pk__in=[i.pk for i in images]).update(status=ImageStatus.SUBMITTED, assignee=world.users["annotator"])
    results: dict[str, int | None] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(reviewers))

    def take(user) -> None:  # type: ignore[no-untyped-def]
        try:
            barrier.wait()
            image = review_next(project=world.project, user=user)
            results[user.username] = image.pk if image else None
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=take, args=(user,)) for user in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    handed = [pk for pk in results.values() if pk is not None]
    assert len(handed) == len(set(handed)) == 4  # every image once, two reviewers get nothing
    for image in Image.objects.filter(pk__in=handed):
        assert image.status == ImageStatus.IN_REVIEW
        assert results[image.reviewer.username] == image.pk


# --------------------------------------------------------------------------------------------
# Diffs
# --------------------------------------------------------------------------------------------


def test_review_diff_shows_annotator_changes_against_proposals_and_reviewer_changes(world) -> None:
    cat = world.labels[0]
    _new_image(world.project)
    image = queue_next(project=world.project, user=world.users["annotator"])
    model = ModelVersion.objects.create(project=world.project, name="m1", kind="coco")
    predictions = [
        Prediction.objects.create(
            image=image, model_version=model, rank=k, label=cat, class_name="cat", score=0.9 - 0.1 * k,
            rle=polygons_to_rle([{"exterior": square(10 + 60 * k, 10, 30), "holes": []}], width=200, height=100),
            bbox=[10 + 60 * k, 10, 30, 30], area=900,
        )
        for k in range(3)
    ]
    kept = {"uid": str(uuid.uuid4()), "label": cat.pk, "geometry": {"type": "mask", "rle": predictions[0].rle},
            "prediction": predictions[0].pk, "source": "model"}
    reshaped = {"uid": str(uuid.uuid4()), "label": cat.pk, "geometry": polygon_geometry(square(70, 10, 15)),
                "prediction": predictions[1].pk, "source": "model"}
    drawn = _obj(world.labels[1], 150, 60, 20)
    image = _annotate(image, world.users["annotator"], [kept, reshaped, drawn])  # prediction 2 deleted
    image_submit(image=image, user=world.users["annotator"])

    assert review_next(project=world.project, user=world.users["reviewer"]).pk == image.pk
    # The reviewer deletes the drawn object and changes the label of the kept one.
    image = _annotate(image, world.users["reviewer"], [{**kept, "label": world.labels[1].pk}, reshaped])

    diff = world.client("reviewer").get(f"/api/images/{image.pk}/review/").json()["diff"]
    proposals = diff["proposals"]
    assert [a["uid"] for a in proposals["added"]] == [drawn["uid"]]
    assert [r["prediction"] for r in proposals["removed"]] == [predictions[2].pk]
    assert [m["uid"] for m in proposals["modified"]] == [reshaped["uid"]]
    assert proposals["unchanged"] == [kept["uid"]]

    review = diff["review"]
    assert [r["uid"] for r in review["removed"]] == [drawn["uid"]]
    assert review["added"] == []
    assert [(m["uid"], m["changes"]) for m in review["modified"]] == [(kept["uid"], ["label"])]
    assert review["unchanged"] == [reshaped["uid"]]

    image.refresh_from_db()
    review_decide(image=image, user=world.users["reviewer"], decision="accept", version=image.version)
    decision = ReviewDecision.objects.get(image=image)
    assert (decision.objects_added, decision.objects_removed, decision.objects_modified) == (0, 1, 1)


# --------------------------------------------------------------------------------------------
# Comments and statistics
# --------------------------------------------------------------------------------------------


def test_comments_pinned_to_objects_and_points(world) -> None:
    image, objects = _submitted_image(world)
    client = world.client("reviewer")
    pinned = client.post(f"/api/images/{image.pk}/comments/", {"text": "Edge is off", "uid": objects[0]["uid"]}, format="json")
    point = client.post(f"/api/images/{image.pk}/comments/", {"text": "Missed a nut", "x": 5, "y": 6}, format="json")
    assert pinned.status_code == point.status_code == 201
    outside = client.post(f"/api/images/{image.pk}/comments/", {"text": "?", "x": 500, "y": 6}, format="json")
    assert outside.status_code == 400
    both = client.post(f"/api/images/{image.pk}/comments/", {"text": "?", "x": 5, "y": 6, "uid": objects[0]["uid"]}, format="json")
    assert both.status_code == 400
    listed = world.client("annotator").get(f"/api/images/{image.pk}/comments/").json()
    assert [(c["text"], c["uid"], c["x"]) for c in listed] == [("Edge is off", objects[0]["uid"], None), ("Missed a nut", None, 5.0)]
    assert world.client("outsider").get(f"/api/images/{image.pk}/comments/").status_code == 404


def test_review_stats_report_acceptance_changes_iou_and_time(world) -> None:
    reviewer = world.users["reviewer"]
    # annotator: one accepted as submitted, one rejected; annotator2: one accepted after a fix.
    first, _ = _submitted_image(world, "annotator")
    review_next(project=world.project, user=reviewer)
    first.refresh_from_db()
    review_decide(image=first, user=reviewer, decision="accept", version=first.version)
    second, _ = _submitted_image(world, "annotator")
    review_next(project=world.project, user=reviewer)
    second.refresh_from_db()
    review_decide(image=second, user=reviewer, decision="reject", version=second.version, comment="redo")
    third, objects = _submitted_image(world, "annotator2")
    review_next(project=world.project, user=reviewer)
    # square(10,10,30) → square(10,10,15): IoU 225/900 = 0.25
    third = _annotate(third, reviewer, [{**objects[0], "geometry": polygon_geometry(square(10, 10, 15))}, objects[1]])
    review_decide(image=third, user=reviewer, decision="accept", version=third.version)

    response = world.client("manager").get(f"/api/projects/{world.project.pk}/review-stats/")
    assert response.status_code == 200
    stats = response.json()
    rates = {row["annotator"]: row["acceptance_rate"] for row in stats["annotators"]}
    assert rates == {"annotator": 0.5, "annotator2": 1.0}
    assert stats["objects_changed_by_reviewers"] == 1
    # Accepted decisions: first (2 objects, IoU 1), third (IoU 0.25 and 1).
    assert stats["mean_iou_submitted_vs_accepted"] == pytest.approx((1 + 1 + 0.25 + 1) / 4, abs=0.01)
    assert stats["mean_seconds_in_review"] is not None and stats["mean_seconds_in_review"] >= 0
    assert world.client("annotator").get(f"/api/projects/{world.project.pk}/review-stats/").status_code == 403


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------


def test_dashboard_review_button_takes_the_reviewer_to_the_editor_in_review_mode(world, client) -> None:
    image, _ = _submitted_image(world)
    client.force_login(world.users["reviewer"])
    page = client.get(f"/projects/{world.project.pk}/")
    assert b"Review next image" in page.content and b'id="review-stats"' in page.content
    response = client.post(f"/projects/{world.project.pk}/review/next/")
    assert response.status_code == 302 and response["Location"] == f"/images/{image.pk}/edit/?mode=review"
    client.force_login(world.users["annotator"])
    assert b"Review next image" not in client.get(f"/projects/{world.project.pk}/").content
    assert client.post(f"/projects/{world.project.pk}/review/next/").status_code == 403


def test_a_rejection_must_say_what_to_fix(world) -> None:
    image, objects = _submitted_image(world)
    world.client("reviewer").post(f"/api/images/{image.pk}/review/take/")
    silent = _decide(world, "reviewer", image, decision="reject", comment="   ")
    assert silent.status_code == 400 and "Say what must be fixed" in silent.json()["detail"]
    image.refresh_from_db()
    assert image.status == ImageStatus.IN_REVIEW
    pinned = _decide(world, "reviewer", image, decision="reject", comment="", comments=[{"text": "Outline the tail", "uid": objects[0]["uid"]}])
    assert pinned.status_code == 201, pinned.content
