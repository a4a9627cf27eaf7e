"""SAM in the editor, in a real browser against the real backend with a tiny SAM 2.1: box and click
prompts, and cycling through the candidate masks with one key."""
from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import expect

from annotator.annotations.models import Annotation
from ml.geometry import rle_to_mask
from tests.e2e.pages import EditorPage, LoginPage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_editor(page, image) -> EditorPage:  # type: ignore[no-untyped-def]
    LoginPage(page).login("annotator")
    return EditorPage(page).open(image.pk)


def saved_mask(image) -> np.ndarray:  # type: ignore[no-untyped-def]
    return rle_to_mask(Annotation.objects.get(image=image).rle)


def test_c_swaps_the_sam_object_for_the_next_candidate_and_back(page, image, settings, tiny_sam2):
    settings.ANNOTATOR_SAM_CHECKPOINT = str(tiny_sam2)
    editor = open_editor(page, image)

    with page.expect_response(lambda r: r.url.endswith("/api/assist/sam/")) as answer:
        editor.box_to_mask((40, 20), (120, 70))
    candidates = answer.value.json()["candidates"]
    assert len(candidates) == 3
    masks = [rle_to_mask(c["geometry"]["rle"]) for c in candidates]
    editor.wait_saved()
    assert np.array_equal(saved_mask(image), masks[0]), "the best candidate first"
    expect(editor.status_message).to_contain_text("next of 3 candidates")

    # The seeded random model's candidates on this image are different, non-empty masks.
    assert all(c["area"] > 0 for c in candidates) and not np.array_equal(masks[0], masks[1])

    editor.next_candidate()
    expect(editor.status_message).to_contain_text("Candidate 2 of 3")
    editor.wait_saved()
    assert np.array_equal(saved_mask(image), masks[1])
    editor.next_candidate()
    editor.next_candidate()  # round to the first again
    editor.wait_saved()
    assert np.array_equal(saved_mask(image), masks[0])
    assert Annotation.objects.filter(image=image).count() == 1, "cycling replaces the object, it adds none"


def test_with_sam_a_lone_click_segments_the_object_under_it(page, image, settings, tiny_sam2):
    settings.ANNOTATOR_SAM_CHECKPOINT = str(tiny_sam2)
    editor = open_editor(page, image)

    with page.expect_request(lambda r: r.url.endswith("/api/assist/sam/")) as request:
        editor.sam_click((80, 45))
    body = request.value.post_data_json
    assert "box" not in body and body["labels"] == [1] and len(body["points"]) == 1
    response = request.value.response()
    assert response is not None and response.status == 200
    best = response.json()
    assert best["area"] > 0 and len(best["candidates"]) == 3
    editor.wait_saved()
    assert np.array_equal(saved_mask(image), rle_to_mask(best["geometry"]["rle"]))
