"""Immediate feedback on ground truth in the editor: with the project's ground_truth_feedback on,
an annotator who submits a ground-truth image sees their score and its conflicts, then goes on to
the next image; with it off they go straight on, told nothing."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from annotator.groundtruth.models import GroundTruthAttempt
from tests.annotator.test_ground_truth import _ground_truth
from tests.e2e.pages import EditorPage, LoginPage
from tests.factories import make_images

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("feedback", [True, False])
def test_an_annotator_sees_their_score_after_a_check_image_only_with_feedback_on(page, world, feedback: bool) -> None:
    truth_image = _ground_truth(world, 1)[0]  # the truth: a cat at (10, 10) and a dog at (50, 20), 30 and 40 px
    ordinary = make_images(world.project, 1, width=120, height=90)[0]  # (another size: not a duplicate)
    settings = {"ground_truth_rate": 1.0, "ground_truth_feedback": feedback}
    assert world.client("manager").patch(f"/api/projects/{world.project.pk}/", settings, format="json").status_code == 200
    assert world.client("annotator").post(f"/api/projects/{world.project.pk}/queue/next/").json()["image"]["id"] == truth_image.pk

    LoginPage(page).login("annotator")
    editor = EditorPage(page).open(truth_image.pk)
    expect(editor.instance_rows).to_have_count(0)  # their own attempt, empty: the truth is not shown
    editor.choose_label("cat")
    editor.draw_polygon([(50.0, 20.0), (90.0, 20.0), (90.0, 60.0), (50.0, 60.0)])  # the dog, labelled a cat
    editor.wait_saved()
    editor.submit()

    if feedback:
        dialog = page.get_by_test_id("feedback-dialog")
        expect(dialog).to_be_visible()
        expect(dialog.get_by_role("heading")).to_have_text("Your score on this check image")
        expect(page.get_by_test_id("feedback-scores")).to_contain_text("F1 0.00 · precision 0.00 · recall 0.00 · mean IoU 1.00")
        items = page.get_by_test_id("feedback-conflicts").locator("li")
        expect(items).to_have_count(2)
        expect(items.nth(0)).to_contain_text("Wrong label: you labelled a dog as cat")
        expect(items.nth(1)).to_have_text("Missed: a cat you did not draw")
        assert f"/images/{truth_image.pk}/edit/" in page.url  # it waits for them
        page.get_by_test_id("feedback-next").click()
    page.wait_for_url(f"**/images/{ordinary.pk}/edit/")
    expect(page.get_by_test_id("feedback-dialog")).to_have_count(0)
    assert GroundTruthAttempt.objects.get(image=truth_image).status == "submitted"
