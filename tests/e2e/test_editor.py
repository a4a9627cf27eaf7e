"""The annotation editor in a real browser against the real backend: draw, edit, paint, undo, proposals,
concurrent saves, permissions, submit, and the review mode."""
from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import expect

from annotator.annotations.models import Annotation, Prediction, Revision
from annotator.annotations.selectors import revision_objects
from annotator.images.models import Image, ImageStatus
from annotator.learning.models import ModelVersion
from annotator.review.models import ReviewComment, ReviewDecision
from ml.geometry import mask_to_rle, rle_to_mask
from tests.e2e.pages import EditorPage, LoginPage, ReviewPanel
from tests.factories import ProjectFactory, make_images, square

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


SQUARE = [(20.0, 20.0), (80.0, 20.0), (80.0, 80.0), (20.0, 80.0)]


def seed_square(world, image, persona: str = "annotator") -> dict:
    """Save one 60x60 square on `image` through the API, as `persona` would from another client."""
    response = world.client(persona).put(
        f"/api/images/{image.pk}/annotations/",
        {"version": image.version, "annotations": [{"label": world.labels[0].pk, "geometry": {"type": "polygons", "polygons": [{"exterior": square(20, 20, 60), "holes": []}]}}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    image.refresh_from_db()
    return response.json()


def api_annotations(world, image, persona: str = "annotator") -> list[dict]:
    response = world.client(persona).get(f"/api/images/{image.pk}/annotations/")
    assert response.status_code == 200
    return response.json()["annotations"]


def open_editor(page, image, persona: str = "annotator", mode: str | None = None) -> EditorPage:
    LoginPage(page).login(persona)
    return EditorPage(page).open(image.pk, mode=mode)


def ring_close(actual: list[list[float]], expected: list[tuple[float, float]], tol: float = 0.6) -> bool:
    """Same ring up to a rotation of the start vertex and `tol` pixels per coordinate."""
    if len(actual) != len(expected):
        return False
    arr, exp = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    return any(np.allclose(np.roll(arr, k, axis=0), exp, atol=tol) or np.allclose(np.roll(arr[::-1], k, axis=0), exp, atol=tol) for k in range(len(arr)))


def test_drawn_polygon_is_saved_and_shown_after_reload(page, world, image):
    editor = open_editor(page, image)

    editor.draw_polygon(SQUARE)
    editor.wait_saved()

    rows = Annotation.objects.filter(image=image)
    assert rows.count() == 1
    saved = rows.get()
    assert saved.kind == "polygons" and saved.source == "manual" and saved.label_id == world.labels[0].pk
    assert ring_close(saved.polygons[0]["exterior"], SQUARE)
    assert saved.area == pytest.approx(3600, rel=0.03)
    (from_api,) = api_annotations(world, image)
    assert from_api["uid"] == str(saved.uid)

    editor.reload()
    expect(editor.instance_rows).to_have_count(1)
    expect(editor.instance_rows.first).to_have_attribute("data-uid", str(saved.uid))
    (shown,) = editor.annotations()
    assert ring_close(shown["geometry"]["polygons"][0]["exterior"], SQUARE)


def test_dragging_a_vertex_saves_the_moved_vertex(page, world, image):
    seed_square(world, image)
    editor = open_editor(page, image)

    editor.select_at((50, 50))
    editor.drag_vertex((80, 20), (95, 8))
    editor.wait_saved()

    exterior = Annotation.objects.get(image=image).polygons[0]["exterior"]
    assert ring_close(exterior, [(20, 20), (95, 8), (80, 80), (20, 80)])
    assert Image.objects.get(pk=image.pk).version == 2


def test_cutting_a_hole_saves_a_polygon_with_a_hole(page, world, image):
    seed_square(world, image)
    editor = open_editor(page, image)

    editor.select_at((30, 30))
    editor.cut_hole([(40, 40), (60, 40), (60, 60), (40, 60)])
    editor.wait_saved()

    (part,) = Annotation.objects.get(image=image).polygons
    assert len(part["holes"]) == 1
    assert ring_close(part["holes"][0], [(40, 40), (60, 40), (60, 60), (40, 60)])
    assert Annotation.objects.get(image=image).area == pytest.approx(3600 - 400, rel=0.03)


def test_brush_stroke_saves_a_mask_object(page, world, image):
    editor = open_editor(page, image)

    editor.paint([(110, 50), (180, 50)], size=10)
    editor.wait_saved()

    saved = Annotation.objects.get(image=image)
    assert saved.kind == "mask" and saved.rle["counts"]
    mask = rle_to_mask(saved.rle)
    assert mask.shape == (100, 200)
    # A 70 px stroke, 10 px wide, with round ends.
    assert 600 < mask.sum() < 900
    assert mask[50, 145] and not mask[50, 50] and not mask[20, 145]
    assert saved.area == mask.sum()


@pytest.mark.parametrize("with_sam", [False, True], ids=["grabcut", "sam"])
def test_box_to_mask_saves_the_servers_mask_from_grabcut_or_sam(page, world, image, settings, tiny_sam, with_sam):
    settings.ANNOTATOR_SAM_CHECKPOINT = str(tiny_sam) if with_sam else None
    editor = open_editor(page, image)

    with page.expect_response(lambda r: "/api/assist/" in r.url) as answer:
        editor.box_to_mask((40, 20), (120, 70))
    assert answer.value.url.endswith("/api/assist/sam/" if with_sam else "/api/assist/box-to-mask/")
    assert answer.value.status == 200
    editor.wait_saved()

    saved = Annotation.objects.get(image=image)
    assert saved.kind == "mask" and saved.label_id == world.labels[0].pk
    mask = rle_to_mask(saved.rle)
    assert mask.shape == (100, 200) and mask.sum() == saved.area > 0
    assert np.array_equal(mask, rle_to_mask(answer.value.json()["geometry"]["rle"]))
    if not with_sam:
        # A plain colour has no edges to cut along: GrabCut finds nothing and the answer is the
        # ellipse inscribed in the box, the shape prior that beats the box on real photos (the
        # dragged box lands within a pixel or so of the intended one).
        assert not mask[:, :38].any() and not mask[:, 122:].any() and not mask[:18].any() and not mask[72:].any()
        assert mask[45, 80] and not mask[21, 41] and not mask[68, 118], "the centre, not the corners"
        assert 0.9 * np.pi * 40 * 25 <= mask.sum() <= 1.1 * np.pi * 41 * 26


def test_undo_and_redo_are_saved(page, world, image):
    editor = open_editor(page, image)
    editor.draw_polygon(SQUARE)
    editor.wait_saved()
    (uid,) = [a["uid"] for a in editor.annotations()]

    editor.undo()
    editor.wait_saved()
    expect(editor.instance_rows).to_have_count(0)
    assert not Annotation.objects.filter(image=image).exists()

    editor.redo()
    editor.wait_saved()
    expect(editor.instance_rows).to_have_count(1)
    assert [str(u) for u in Annotation.objects.filter(image=image).values_list("uid", flat=True)] == [uid]
    assert list(Revision.objects.filter(image=image).order_by("version").values_list("object_count", flat=True)) == [1, 0, 1]


def test_accepting_a_model_proposal_remembers_the_model(page, world, image):
    model = ModelVersion.objects.create(project=world.project, name="round 1", kind="trained")
    mask = np.zeros((100, 200), dtype=np.uint8)
    mask[30:70, 120:180] = 1
    prediction = Prediction.objects.create(
        image=image, model_version=model, rank=0, label=world.labels[1], class_name="dog", score=0.87,
        rle=mask_to_rle(mask), bbox=[120, 30, 60, 40], area=2400,
    )
    editor = open_editor(page, image)
    expect(editor.proposal_rows).to_have_count(1)

    editor.accept_proposal(prediction.pk)
    editor.wait_saved()

    saved = Annotation.objects.get(image=image)
    assert saved.source == "model"
    assert saved.prediction_id == prediction.pk and saved.model_version_id == model.pk
    assert saved.score == pytest.approx(0.87)
    assert saved.label_id == world.labels[1].pk
    assert saved.area == 2400
    expect(editor.proposal_rows).to_have_count(0)
    expect(editor.instance_rows.first.get_by_test_id("instance-source")).to_contain_text("model 0.87")


def _conflict(page, world, image) -> tuple[EditorPage, dict]:
    """The annotator edits while the manager saves the same image from another client."""
    editor = open_editor(page, image)
    editor.draw_polygon(SQUARE)
    editor.wait_saved()
    theirs = world.client("manager").put(
        f"/api/images/{image.pk}/annotations/",
        {"version": editor.version(), "annotations": [{"label": world.labels[1].pk, "geometry": {"type": "polygons", "polygons": [{"exterior": square(120, 10, 30), "holes": []}]}}]},
        format="json",
    ).json()
    editor.draw_polygon([(30, 85), (60, 85), (45, 95)])
    expect(editor.conflict_dialog).to_be_visible()
    expect(editor.conflict_dialog).to_contain_text("manager")
    expect(editor.save_state).to_have_attribute("data-state", "conflict")
    return editor, theirs


def test_concurrent_save_shows_conflict_and_load_theirs_shows_their_version(page, world, image):
    editor, theirs = _conflict(page, world, image)

    page.get_by_test_id("conflict-load-theirs").click()

    expect(editor.conflict_dialog).to_have_count(0)
    expect(editor.instance_rows).to_have_count(1)
    assert [a["uid"] for a in editor.annotations()] == [theirs["annotations"][0]["uid"]]
    expect(editor.save_state).to_have_attribute("data-state", "saved")
    assert Image.objects.get(pk=image.pk).version == theirs["version"]


def test_concurrent_save_keep_mine_overwrites_with_a_new_version_and_keeps_theirs(page, world, image):
    editor, theirs = _conflict(page, world, image)

    page.get_by_test_id("conflict-keep-mine").click()
    editor.wait_saved()

    image.refresh_from_db()
    assert image.version == theirs["version"] + 1
    mine = {str(u) for u in Annotation.objects.filter(image=image).values_list("uid", flat=True)}
    assert mine == {a["uid"] for a in editor.annotations()} and len(mine) == 2
    # Nothing is silently lost: their save is still a revision that can be restored.
    revisions = {r.version: r for r in Revision.objects.filter(image=image)}
    assert [a["uid"] for a in revision_objects(revisions[theirs["version"]])] == [theirs["annotations"][0]["uid"]]
    assert {a["uid"] for a in revision_objects(revisions[image.version])} == mine


def test_annotator_cannot_open_an_image_of_another_project(page, world):
    other = make_images(ProjectFactory(), 1)[0]
    LoginPage(page).login("annotator")

    response = page.goto(f"/images/{other.pk}/edit/")

    assert response.status == 404
    assert world.client("annotator").get(f"/api/images/{other.pk}/annotations/").status_code == 404


def test_submit_sends_the_image_to_review_and_opens_the_next_one(page, world):
    first, second = make_images(world.project, 2, width=200, height=100)
    editor = open_editor(page, first)
    editor.draw_polygon(SQUARE)

    editor.submit()

    page.wait_for_url(f"**/images/{second.pk}/edit/")
    editor.wait_ready()
    first.refresh_from_db()
    assert first.status == ImageStatus.SUBMITTED
    assert Annotation.objects.filter(image=first).count() == 1
    assert Image.objects.get(pk=second.pk).assignee.username == "annotator"


# ---------------------------------------------------------------------------------------------- review


def submitted_image(world, *, count: int = 1) -> list:
    """Images the annotator drew a square on and submitted for review."""
    images = make_images(world.project, count, width=200, height=100)
    for image in images:
        seed_square(world, image)
        assert world.client("annotator").post(f"/api/images/{image.pk}/submit/").status_code == 200
    return images


def login_as(page, persona: str) -> None:
    page.context.clear_cookies()
    LoginPage(page).login(persona)


def test_reviewer_accepts_an_image_and_opens_the_next_for_review(page, world):
    first, second = submitted_image(world, count=2)
    uid = str(Annotation.objects.get(image=first).uid)
    login_as(page, "reviewer")
    review = ReviewPanel(EditorPage(page).open(first.pk, mode="review"))
    expect(review.panel).to_be_visible()
    expect(page.get_by_test_id("btn-submit")).to_have_count(0)

    review.object_verdict(uid, "accept")
    review.accept()

    decision = ReviewDecision.objects.get(image=first)
    assert decision.decision == "accept" and decision.reviewer.username == "reviewer" and decision.annotator.username == "annotator"
    assert list(decision.object_decisions.values_list("annotation_uid", "verdict")) == [(Annotation.objects.get(image=first).uid, "accept")]
    assert Image.objects.get(pk=first.pk).status == ImageStatus.ACCEPTED

    review.review_next()
    page.wait_for_url(f"**/images/{second.pk}/edit/?mode=review")
    EditorPage(page).wait_ready()
    second.refresh_from_db()
    assert second.status == ImageStatus.IN_REVIEW and second.reviewer.username == "reviewer"


def test_rejection_with_a_pinned_comment_reaches_the_annotator_who_resubmits(page, world):
    (image,) = submitted_image(world)
    uid = str(Annotation.objects.get(image=image).uid)
    login_as(page, "reviewer")
    editor = EditorPage(page).open(image.pk, mode="review")
    review = ReviewPanel(editor)

    review.pin_comment((50, 50), "The outline misses the stem")
    review.pin_comment((150, 50), "A fig was left out here")
    review.object_verdict(uid, "reject")
    review.reject("Please fix the outline and add the fig")

    decision = ReviewDecision.objects.get(image=image)
    assert decision.decision == "reject" and decision.comment == "Please fix the outline and add the fig"
    assert [(str(o.annotation_uid), o.verdict) for o in decision.object_decisions.all()] == [(uid, "reject")]
    comments = {c.text: c for c in ReviewComment.objects.filter(image=image)}
    assert str(comments["The outline misses the stem"].annotation_uid) == uid
    assert (comments["A fig was left out here"].x, comments["A fig was left out here"].y) == (pytest.approx(150, abs=1), pytest.approx(50, abs=1))
    assert all(c.decision_id == decision.pk for c in comments.values())
    assert Image.objects.get(pk=image.pk).status == ImageStatus.REJECTED

    login_as(page, "annotator")
    editor.open(image.pk)
    feedback = ReviewPanel(editor)
    expect(feedback.panel).to_have_attribute("data-mode", "annotate")
    expect(page.get_by_test_id("review-last-comment")).to_have_text("Please fix the outline and add the fig")
    expect(feedback.comments).to_have_count(2)
    expect(feedback.comments.filter(has_text="The outline misses the stem")).to_have_attribute("data-uid", uid)
    expect(editor.instance_rows.first).to_have_attribute("data-verdict", "reject")

    feedback.resolve("The outline misses the stem")
    editor.select_at((50, 50))
    editor.drag_vertex((20, 80), (12, 92))
    editor.wait_saved()
    editor.submit()

    expect(page.get_by_test_id("queue-empty-dialog")).to_be_visible()
    image.refresh_from_db()
    assert image.status == ImageStatus.SUBMITTED
    assert ReviewComment.objects.get(text="The outline misses the stem").resolved
    # Back in the review queue for the next reviewer.
    response = world.client("reviewer").post(f"/api/projects/{world.project.pk}/review/next/")
    assert response.status_code == 200 and response.json()["image"]["id"] == image.pk


def test_diff_highlights_changes_against_the_submission_and_the_model(page, world):
    (image,) = make_images(world.project, 1, width=200, height=100)
    model = ModelVersion.objects.create(project=world.project, name="round 1", kind="trained")
    predictions = []
    for rank, (x0, score) in enumerate([(10, 0.9), (120, 0.8)]):
        mask = np.zeros((100, 200), dtype=np.uint8)
        mask[10:40, x0:x0 + 30] = 1
        predictions.append(Prediction.objects.create(
            image=image, model_version=model, rank=rank, label=world.labels[0], class_name="cat", score=score,
            rle=mask_to_rle(mask), bbox=[x0, 10, 30, 30], area=900,
        ))
    kept = predictions[0]
    client = world.client("annotator")
    # The annotator kept the first proposal as it was, ignored the second, and drew a square.
    assert client.put(f"/api/images/{image.pk}/annotations/", {"version": 0, "annotations": [
        {"label": world.labels[0].pk, "geometry": kept.geometry, "source": "model", "score": kept.score, "prediction": kept.pk, "model_version": model.pk},
        {"label": world.labels[1].pk, "geometry": {"type": "polygons", "polygons": [{"exterior": square(60, 50, 40), "holes": []}]}},
    ]}, format="json").status_code == 200
    assert client.post(f"/api/images/{image.pk}/submit/").status_code == 200
    login_as(page, "reviewer")
    editor = EditorPage(page).open(image.pk, mode="review")
    review = ReviewPanel(editor)

    review.diff("model")
    review.expect_diff(added=1, modified=0, removed=1)
    drawn = Annotation.objects.get(image=image, source="manual").uid
    expect(editor.page.locator(f'[data-testid="instance-row"][data-uid="{drawn}"]')).to_have_attribute("data-diff", "added")
    expect(page.get_by_test_id("diff-removed-row")).to_have_attribute("data-prediction-id", str(predictions[1].pk))

    # The reviewer deletes the drawn square and outlines something new.
    review.diff("submitted")
    review.expect_diff(added=0, modified=0, removed=0)
    editor.select_at((80, 70))
    editor.delete_selected()
    editor.draw_polygon([(150, 60), (190, 60), (170, 95)])
    review.expect_diff(added=1, modified=0, removed=1)
    expect(page.get_by_test_id("diff-removed-row")).to_have_attribute("data-uid", str(drawn))
    editor.wait_saved()
    assert Image.objects.get(pk=image.pk).version == 2
