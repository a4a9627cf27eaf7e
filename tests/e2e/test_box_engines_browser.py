"""The box tool's engine in a real browser: the project's best measured engine by default, shown and chosen in the toolbar."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from annotator.annotations.models import Annotation
from annotator.learning.models import ModelKind, ModelVersion
from annotator.learning.services import model_version_activate
from ml.geometry import rle_to_mask
from tests.annotator.test_learning import tiny_checkpoint
from tests.e2e.pages import EditorPage, LoginPage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_box_tool_uses_the_project_model_when_it_measured_best_and_grabcut_when_chosen(page, world, image, settings):
    settings.ANNOTATOR_SAM_CHECKPOINT = None
    checkpoint = tiny_checkpoint(Path(settings.ANNOTATOR_MODEL_DIR) / "e2e" / "engines.pt", ["cat", "dog"], [4.0, 3.9])
    measured = {"box": {"mean_iou": 0.70, "objects": 9}, "grabcut": {"mean_iou": 0.64, "objects": 9},
                "model": {"mean_iou": 0.83, "objects": 9}}
    version = ModelVersion.objects.create(project=world.project, name="v1", kind=ModelKind.TRAINED, checkpoint=str(checkpoint),
                                          class_names=["cat", "dog"], metrics={"assists": measured})
    model_version_activate(version=version)
    LoginPage(page).login("annotator")
    editor = EditorPage(page).open(image.pk)

    engine = editor.box_engine()
    expect(engine).to_be_visible()
    expect(engine.locator("option:checked")).to_have_text("Auto: Project model")
    expect(engine.locator("option")).to_have_text(["Auto: Project model", "GrabCut · IoU 0.64", "Project model · IoU 0.83"])

    with page.expect_response(lambda r: "/api/assist/box-to-mask/" in r.url) as answer:
        editor.box_to_mask((40, 20), (120, 70))
    sent = json.loads(answer.value.request.post_data or "{}")
    assert sent["engine"] == "model" and sent["label"] == world.labels[0].pk
    assert answer.value.status == 200 and answer.value.json()["engine"] == "model"
    editor.wait_saved()
    # The tiny model's mask head fills the box it is given; GrabCut on a plain image answers the box's ellipse.
    mask = rle_to_mask(Annotation.objects.get(image=image).rle)
    assert mask[22, 42] and mask[68, 118], "the box's corners: the model's answer, not an ellipse"

    page.keyboard.press("Enter")
    editor.choose_box_engine("grabcut")
    with page.expect_response(lambda r: "/api/assist/box-to-mask/" in r.url) as answer:
        editor.box_to_mask((130, 20), (190, 80))
    assert json.loads(answer.value.request.post_data or "{}")["engine"] == "grabcut"
    assert answer.value.json()["engine"] == "grabcut"
    editor.wait_saved()
    assert Annotation.objects.filter(image=image).count() == 2
    masks = [rle_to_mask(a.rle) for a in Annotation.objects.filter(image=image).order_by("id")]
    assert not masks[1][21, 131], "GrabCut's ellipse leaves the corner out"
    assert np.logical_and(masks[0], masks[1]).sum() == 0
