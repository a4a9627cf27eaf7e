"""Model-assisted annotation: assists on real images, pre-annotation, training, evaluation, model versions, commands."""
from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from PIL import Image as PILImage

from annotator.annotations.models import Prediction
from annotator.annotations.services import annotations_replace
from annotator.core.errors import DomainError
from annotator.images.models import Image, ImageStatus
from annotator.images.services import images_add
from annotator.jobs.models import Job, JobKind, JobState
from annotator.jobs.services import JobContext
from annotator.learning import services
from annotator.learning.models import ModelKind, ModelVersion
from annotator.learning.params import PreannotateParams, TrainParams
from annotator.learning.pixels import rgb_cache
from annotator.learning.selectors import model_version_corrections
from ml.geometry import from_coco_segmentation, geometry_to_mask, mask_iou, mask_to_rle, rle_to_mask
from ml.models.maskrcnn import build_model, clear_model_cache, save_checkpoint
from ml.synthetic import generate_dataset
from tests.datasets import FRUITS  # the real sample photos (see shared/datasets/PROVENANCE.md)
from tests.factories import LabelFactory, ProjectFactory, make_images


def tiny_checkpoint(path: Path, class_names: list[str], class_bias: list[float], *, size: int = 96, proposals: int = 3) -> Path:
    """A tiny 'small'-arch Mask R-CNN whose output is predictable without training.

    Zero class weights and fixed biases give every detection the same class scores (softmax of
    [0, *class_bias]); a large mask bias makes each mask fill its box. With few proposals and room
    for all their detections, every class shows up on every image.
    """
    torch.manual_seed(0)
    kwargs = {"min_size": size, "max_size": size, "box_score_thresh": 0.0, "rpn_post_nms_top_n_test": proposals,
              "box_detections_per_img": proposals * len(class_names)}
    model = build_model("small", len(class_names), **kwargs)
    with torch.no_grad():
        scores = model.roi_heads.box_predictor.cls_score
        scores.weight.zero_()
        scores.bias.copy_(torch.tensor([0.0, *class_bias]))
        logits = model.roi_heads.mask_predictor.mask_fcn_logits
        logits.weight.zero_()
        logits.bias.fill_(4.0)
    return save_checkpoint(path, model=model, arch="small", class_names=class_names, config={"model_kwargs": kwargs})


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def fresh_caches():
    clear_model_cache()
    rgb_cache.clear()
    # On the shared 2-core test machines, torch's spinning thread pool is several times slower
    # with two threads than with one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    clear_model_cache()


@pytest.fixture
def checkpoint() -> Path:
    """Classes date (score ~0.52) and apple (~0.47): only date maps to a project label by default."""
    return tiny_checkpoint(Path(settings.ANNOTATOR_MODEL_DIR) / "tests" / "tiny.pt", ["date", "apple"], [4.0, 3.9])


@pytest.fixture
def fruits(world):
    """The world's project with the fruits_nuts labels and two of its real photos."""
    assert (FRUITS / "trainval.json").is_file(), f"the fruits_nuts sample dataset is not at {FRUITS}"
    project = world.project
    for order, name in enumerate(["date", "fig", "hazelnut"], start=10):
        LabelFactory(project=project, name=name, order=order)
    coco = json.loads((FRUITS / "trainval.json").read_text())
    chosen = coco["images"][:2]
    sources = [(item["file_name"], lambda p=FRUITS / "images" / item["file_name"]: p.read_bytes()) for item in chosen]
    created = images_add(project=project, sources=sources).created
    truth = {
        image.pk: [a for a in coco["annotations"] if a["image_id"] == item["id"]]
        for image, item in zip(created, chosen)
    }
    return project, created, truth


def gt_mask(annotation: dict, image: Image) -> np.ndarray:
    geometry = from_coco_segmentation(annotation["segmentation"], width=image.width, height=image.height)
    return geometry_to_mask(geometry, width=image.width, height=image.height)


def run(job: Job, handler) -> Job:  # type: ignore[no-untyped-def]
    """Run a job's service in this process (the worker path is covered by the integration tests)."""
    result = handler(job=job, ctx=JobContext(job, min_interval=0))
    Job.objects.filter(pk=job.pk).update(state=JobState.SUCCEEDED, result=result)
    job.refresh_from_db()
    return job


# --------------------------------------------------------------------------------------------
# Assists


def test_box_to_mask_finds_the_real_object_inside_its_box(world, fruits):
    _, images, truth = fruits
    image = images[0]
    objects = sorted(truth[image.pk], key=lambda a: -a["area"])[:3]
    for annotation in objects:
        response = world.client("annotator").post(
            "/api/assist/box-to-mask/", {"image": image.pk, "box": annotation["bbox"]}, format="json"
        )
        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["geometry"]["type"] == "mask"
        mask = rle_to_mask(body["geometry"]["rle"])
        assert mask.shape == (image.height, image.width)
        truth_mask = gt_mask(annotation, image)
        x, y, w, h = (int(round(v)) for v in annotation["bbox"])
        plain_box = np.zeros_like(truth_mask)
        plain_box[y : y + h, x : x + w] = True
        # GrabCut must beat the box a person drew by a clear margin, on a real photo.
        assert mask_iou(mask, truth_mask) > 0.85
        assert mask_iou(mask, truth_mask) > mask_iou(plain_box, truth_mask) + 0.1
        assert body["area"] == pytest.approx(mask.sum())


def test_scissors_follow_the_object_outline_between_clicks(world, fruits):
    import cv2

    _, images, truth = fruits
    image = images[0]
    annotation = max(truth[image.pk], key=lambda a: a["area"])
    ring = annotation["segmentation"][0]
    outline = np.asarray(ring, dtype=float).reshape(-1, 2)
    clicks = outline[:: max(1, len(outline) // 6)].tolist()
    response = world.client("reviewer").post(
        "/api/assist/scissors/", {"image": image.pk, "points": clicks, "closed": True}, format="json"
    )
    assert response.status_code == 200, response.json()
    path = np.asarray(response.json()["path"])
    assert len(path) > 3 * len(clicks)  # a dense path, not the clicks joined by straight lines
    filled = np.zeros((image.height, image.width), np.uint8)
    cv2.fillPoly(filled, [np.round(path - 0.5).astype(np.int32)], 1)
    assert mask_iou(filled.astype(bool), gt_mask(annotation, image)) > 0.8


def test_assists_need_view_access_to_the_image(world, fruits):
    _, images, _ = fruits
    body = {"image": images[0].pk, "box": [10, 10, 50, 50]}
    assert world.client("outsider").post("/api/assist/box-to-mask/", body, format="json").status_code == 404
    assert world.client("anonymous").post("/api/assist/box-to-mask/", body, format="json").status_code in (401, 403)
    assert world.client("outsider").post(
        "/api/assist/scissors/", {"image": images[0].pk, "points": [[1, 1], [20, 20]]}, format="json"
    ).status_code == 404


@pytest.mark.parametrize(
    ("url", "body", "reason"),
    [
        ("/api/assist/box-to-mask/", {"box": [10, 10, 0, 40]}, "positive width"),
        ("/api/assist/box-to-mask/", {"box": [5000, 5000, 10, 10]}, "outside the image"),
        ("/api/assist/box-to-mask/", {"box": [1, 2, 3]}, "box"),
        ("/api/assist/scissors/", {"points": [[5, 5]]}, "points"),
        ("/api/assist/scissors/", {"points": [[5, 5], [90000, 5]]}, "outside"),
    ],
)
def test_bad_assist_requests_get_400_with_a_reason(world, image, url, body, reason):
    response = world.client("annotator").post(url, {"image": image.pk, **body}, format="json")
    assert response.status_code == 400
    assert reason in response.json()["detail"]


def test_sam_without_a_configured_model_answers_501_and_says_why(world, image, settings):
    settings.ANNOTATOR_SAM_CHECKPOINT = None
    response = world.client("annotator").post("/api/assist/sam/", {"image": image.pk, "box": [1, 1, 20, 20]}, format="json")
    assert response.status_code == 501
    assert "ANNOTATOR_SAM_CHECKPOINT" in response.json()["detail"]


@pytest.mark.parametrize("family", ["sam1", "sam2.1"])
def test_sam_configured_answers_box_and_click_prompts_with_masks_best_first(world, image, settings, tiny_sam, tiny_sam2, family):
    settings.ANNOTATOR_SAM_CHECKPOINT = str(tiny_sam if family == "sam1" else tiny_sam2)
    client = world.client("annotator")
    for body, count in (
        ({"box": [10, 10, 60, 40]}, 3),  # a lone box is ambiguous: three candidates
        ({"points": [[30, 30]], "labels": [1]}, 3),
        ({"box": [10, 10, 60, 40], "points": [[30, 30], [2, 2]], "labels": [1, 0]}, 1),
    ):
        response = client.post("/api/assist/sam/", {"image": image.pk, **body}, format="json")
        assert response.status_code == 200, response.json()
        answer = response.json()
        assert answer["geometry"]["type"] == "mask" and answer["geometry"]["rle"]["size"] == [100, 200]
        scores = [c["score"] for c in answer["candidates"]]
        assert len(scores) == count and scores == sorted(scores, reverse=True)
        assert answer["candidates"][0]["geometry"] == answer["geometry"] and answer["score"] == scores[0]
    response = client.post("/api/assist/sam/", {"image": image.pk, "points": [[30, 30]]}, format="json")
    assert response.status_code == 400 and "label" in response.json()["detail"]
    response = client.post("/api/assist/sam/", {"image": image.pk, "points": [[500, 30]], "labels": [1]}, format="json")
    assert response.status_code == 400 and "outside" in response.json()["detail"]


def test_sam_with_a_file_that_is_no_sam_checkpoint_answers_501_and_says_why(world, image, settings, tmp_path):
    bogus = tmp_path / "sam_vit_b_01ec64.pth"
    bogus.write_bytes(b"an HTML error page saved under the checkpoint's name")
    settings.ANNOTATOR_SAM_CHECKPOINT = str(bogus)
    response = world.client("annotator").post("/api/assist/sam/", {"image": image.pk, "box": [1, 1, 20, 20]}, format="json")
    assert response.status_code == 501 and "not a readable PyTorch checkpoint" in response.json()["detail"]


def test_editor_page_tells_the_box_tool_whether_sam_is_there(world, image, settings, tiny_sam):
    client = Client()
    client.force_login(world.users["annotator"])
    settings.ANNOTATOR_SAM_CHECKPOINT = None
    assert 'data-sam="1"' not in client.get(f"/images/{image.pk}/edit/").content.decode()
    settings.ANNOTATOR_SAM_CHECKPOINT = str(tiny_sam)
    assert 'data-sam="1"' in client.get(f"/images/{image.pk}/edit/").content.decode()


def test_corrupt_image_gives_a_clear_assist_error(world, image):
    with open(image.file.path, "wb") as handle:
        handle.write(b"definitely not an image")
    response = world.client("annotator").post("/api/assist/box-to-mask/", {"image": image.pk, "box": [1, 1, 20, 20]}, format="json")
    assert response.status_code == 422
    assert image.original_name in response.json()["detail"]


# --------------------------------------------------------------------------------------------
# Pre-annotation


@pytest.fixture
def dated(world):
    """The world's project with a 'date' label and four images."""
    date = LabelFactory(project=world.project, name="Date", order=5)
    images = make_images(world.project, 4, width=120, height=90)
    return date, images


def test_preannotation_stores_mapped_proposals_once_even_when_run_again(world, dated, checkpoint):
    date, images = dated
    annotations_replace(
        image=images[0], user=world.users["manager"], base_version=0,
        items=[{"label": date.pk, "geometry": {"type": "polygons", "polygons": [{"exterior": [[1, 1], [30, 1], [30, 30]], "holes": []}]}}],
    )
    job = services.preannotate_start(project=world.project, user=world.users["manager"],
                                     params=PreannotateParams(model=str(checkpoint), threshold=0.3), allow_any_path=True, enqueue=False)
    job = run(job, services.preannotate)
    result = job.result
    version = ModelVersion.objects.get(pk=result["model_version"])
    assert version.kind == ModelKind.CHECKPOINT and version.class_names == ["date", "apple"]
    # The image with a human annotation is left alone by default.
    assert result["images"] == 3 and result["predicted_images"] == 3 and result["errors"] == []
    rows = Prediction.objects.filter(model_version=version)
    assert rows.count() == result["predictions"] > 0
    assert not rows.filter(image=images[0]).exists()
    # "date" maps to the label "Date" (case-insensitive); "apple" has no label and is dropped.
    assert set(rows.values_list("class_name", flat=True)) == {"date"}
    assert set(rows.values_list("label", flat=True)) == {date.pk}
    assert result["dropped_classes"]["apple"] > 0
    for row in rows:
        mask = rle_to_mask(row.rle)
        assert mask.shape == (90, 120) and mask.sum() == row.area > 0
        assert row.score >= 0.3
    first_ids = set(rows.values_list("pk", flat=True))
    uncertainties = dict(Image.objects.filter(pk__in=[i.pk for i in images[1:]]).values_list("pk", "uncertainty"))
    assert all(0.8 < u <= 1.0 for u in uncertainties.values())  # scores near 0.5: the model is unsure

    again = run(Job.objects.create(kind=JobKind.PREANNOTATE, project=world.project, params=job.params), services.preannotate)
    assert again.result["predictions"] == result["predictions"]
    assert Prediction.objects.filter(model_version=version).count() == result["predictions"]
    assert first_ids.isdisjoint(Prediction.objects.filter(model_version=version).values_list("pk", flat=True))


def test_label_map_renames_model_classes_and_threshold_filters(world, dated, checkpoint):
    date, images = dated
    fig = LabelFactory(project=world.project, name="fig", order=6)
    job = services.preannotate_start(project=world.project, user=None, params=PreannotateParams(
        model=str(checkpoint), threshold=0.45, images=(images[1].pk,), label_map={"apple": "fig", "date": None},
    ), allow_any_path=True, enqueue=False)
    result = run(job, services.preannotate).result
    rows = Prediction.objects.filter(image=images[1])
    assert result["images"] == 1 and rows.count() == result["predictions"] > 0
    assert set(rows.values_list("label", "class_name")) == {(fig.pk, "apple")}
    assert all(r.score >= 0.45 for r in rows)
    assert list(rows.order_by("rank").values_list("rank", flat=True)) == list(range(rows.count()))


def test_a_corrupt_image_is_reported_and_the_others_are_predicted(world, dated, checkpoint):
    _, images = dated
    with open(images[2].file.path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n garbage")
    job = services.preannotate_start(project=world.project, user=None, params=PreannotateParams(
        model=str(checkpoint), threshold=0.3, batch_size=2), allow_any_path=True, enqueue=False)
    result = run(job, services.preannotate).result
    assert result["predicted_images"] == 3
    assert [e["image"] for e in result["errors"]] == [images[2].pk]
    assert result["errors"][0]["file"] == images[2].original_name and result["errors"][0]["reason"]
    assert not Prediction.objects.filter(image=images[2]).exists()
    assert Prediction.objects.filter(image=images[3]).exists()


def test_preannotate_api_starts_a_job_for_managers_only(world, dated, checkpoint, django_capture_on_commit_callbacks, monkeypatch):
    enqueued = []
    monkeypatch.setattr("annotator.jobs.services.job_enqueue", lambda *, job, queue: enqueued.append((job.pk, queue)))
    url = f"/api/projects/{world.project.pk}/preannotate/"
    body = {"model": str(checkpoint), "threshold": 0.4, "batch_size": 2}
    assert world.client("annotator").post(url, body, format="json").status_code == 403
    assert world.client("outsider").post(url, body, format="json").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = world.client("manager").post(url, body, format="json")
    assert response.status_code == 202, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    assert job.kind == JobKind.PREANNOTATE and job.params["threshold"] == 0.4 and job.params["batch_size"] == 2
    assert enqueued == [(job.pk, "ml")]  # its own queue, so GPU machines can run only these


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"threshold": 1.5}, "threshold"),
        ({"batch_size": 0}, "batch_size"),
        ({"model": "active"}, "no active model"),
        ({"model": "/etc/passwd"}, "must lie under the model folder"),
        ({"model": "999999"}, "not a model version of this project"),
        ({"label_map": {"banana": "Date"}}, "no class 'banana'"),
        ({"label_map": {"date": "pumpkin"}}, "'pumpkin' is not a label"),
        ({"images": [999999]}, "not images of this project"),
        ({"label_map": {"date": None}}, "None of the model's classes"),
        ({"nms_iou": 1.5}, "nms_iou"),
        ({"scope": "some"}, "scope"),
    ],
)
def test_bad_preannotation_parameters_get_400_with_a_reason(world, dated, checkpoint, body, reason):
    body = {"model": str(checkpoint), **body}
    response = world.client("manager").post(f"/api/projects/{world.project.pk}/preannotate/", body, format="json")
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert not Job.objects.exists()


def test_coco_model_is_registered_once_and_fails_with_instructions_without_weights(world, dated, settings, monkeypatch):
    settings.ANNOTATOR_COCO_CHECKPOINT = None
    from ml.models import WeightsUnavailable

    def offline(arch):  # type: ignore[no-untyped-def]
        raise WeightsUnavailable("could not load pretrained COCO weights (no network)")

    monkeypatch.setattr("ml.models.maskrcnn.coco_state_dict", offline)
    LabelFactory(project=world.project, name="person", order=9)
    job = services.preannotate_start(project=world.project, user=None, params=PreannotateParams(model="coco"), enqueue=False)
    services.preannotate_start(project=world.project, user=None, params=PreannotateParams(model="coco"), enqueue=False)
    version = ModelVersion.objects.get(project=world.project, kind=ModelKind.COCO)
    assert "person" in version.class_names and len(version.class_names) == 90
    with pytest.raises(DomainError, match="ANNOTATOR_COCO_CHECKPOINT"):
        services.preannotate(job=job, ctx=JobContext(job))


def test_a_failed_coco_preannotation_leaves_no_model_to_activate(world, dated, settings, monkeypatch):
    settings.ANNOTATOR_COCO_CHECKPOINT = None
    from ml.models import WeightsUnavailable

    def offline(arch):  # type: ignore[no-untyped-def]
        raise WeightsUnavailable("could not load pretrained COCO weights (no network)")

    monkeypatch.setattr("ml.models.maskrcnn.coco_state_dict", offline)
    job = services.preannotate_start(project=world.project, user=None, params=PreannotateParams(model="coco"), enqueue=False)
    with pytest.raises(DomainError):
        services.preannotate(job=job, ctx=JobContext(job))
    assert not ModelVersion.objects.filter(project=world.project, kind=ModelKind.COCO).exists()
    client = Client()
    client.force_login(world.users["manager"])
    page = client.get(f"/projects/{world.project.pk}/models/").content.decode()
    versions = page.split('data-testid="model-versions"', 1)[1].split("</table>", 1)[0]
    assert "COCO Mask R-CNN" not in versions and 'value="activate"' not in versions and 'value="evaluate"' not in versions


# --------------------------------------------------------------------------------------------
# Model versions, training, evaluation, corrections


def test_activation_is_for_managers_and_keeps_one_active_model(world, checkpoint):
    a = ModelVersion.objects.create(project=world.project, name="a", kind=ModelKind.CHECKPOINT, checkpoint=str(checkpoint))
    b = ModelVersion.objects.create(project=world.project, name="b", kind=ModelKind.CHECKPOINT, checkpoint=str(checkpoint))
    assert world.client("annotator").post(f"/api/models/{a.pk}/activate/").status_code == 403
    assert world.client("outsider").post(f"/api/models/{a.pk}/activate/").status_code == 404
    assert world.client("manager").post(f"/api/models/{a.pk}/activate/").status_code == 200
    assert world.client("manager").post(f"/api/models/{b.pk}/activate/").status_code == 200
    assert list(ModelVersion.objects.filter(is_active=True).values_list("name", flat=True)) == ["b"]
    listing = world.client("annotator").get(f"/api/projects/{world.project.pk}/models/").json()
    assert [(v["name"], v["is_active"]) for v in listing] == [("b", True), ("a", False)]
    assert world.client("outsider").get(f"/api/projects/{world.project.pk}/models/").status_code == 404


def test_training_needs_accepted_images(world, dated):
    response = world.client("manager").post(f"/api/projects/{world.project.pk}/train/", {"epochs": 1}, format="json")
    assert response.status_code == 400
    assert "at least 2 accepted images" in response.json()["detail"]
    assert world.client("annotator").post(f"/api/projects/{world.project.pk}/train/", {}, format="json").status_code == 403


@pytest.fixture
def accepted_shapes(world):
    """Five accepted synthetic images whose annotations are the exact shape masks."""
    project = world.project
    labels = {name: LabelFactory(project=project, name=name, order=20 + i) for i, name in enumerate(["disc", "rectangle"])}
    samples = generate_dataset(5, seed=3, size=96, classes=list(labels), objects=(1, 3))
    sources = [(f"shape{i}.png", lambda data=png(s.image): data) for i, s in enumerate(samples)]
    images = images_add(project=project, sources=sources).created
    for image, sample in zip(images, samples):
        items = [{"label": labels[name].pk, "geometry": {"type": "mask", "rle": mask_to_rle(mask)}} for name, mask in sample.objects]
        annotations_replace(image=image, user=world.users["manager"], base_version=0, items=items)
    Image.objects.filter(pk__in=[i.pk for i in images]).update(status=ImageStatus.ACCEPTED)
    return images


def test_training_stores_a_version_with_metrics_curve_and_checkpoint_then_evaluates(world, accepted_shapes):
    response = world.client("manager").post(
        f"/api/projects/{world.project.pk}/train/", {"epochs": 2, "held_out": 0.2, "batch_size": 2, "min_size": 96}, format="json"
    )
    assert response.status_code == 202, response.json()
    job = run(Job.objects.get(pk=response.json()["id"]), services.model_train)
    version = ModelVersion.objects.get(pk=job.result["model_version"])
    assert version.kind == ModelKind.TRAINED and version.arch == "small"
    assert Path(version.checkpoint).is_file() and Path(version.checkpoint).is_relative_to(settings.ANNOTATOR_MODEL_DIR)
    assert version.is_active  # the project had no active model yet
    assert [e["epoch"] for e in version.curve] == [1, 2]
    metrics = version.metrics
    assert metrics["train_images"] == 4 and metrics["held_out_images"] == 1
    assert 0.0 <= metrics["mask_AP"] <= 1.0
    assert set(metrics["per_class"]) == set(version.class_names)
    assert len(metrics["pr_curve"]) == 101
    assert sorted(version.params["train_images"] + version.params["held_out_images"]) == sorted(i.pk for i in accepted_shapes)
    assert job.progress_done == job.progress_total > 0
    # Each box engine was measured on the held-out objects, next to the plain box.
    assists = metrics["assists"]
    assert set(assists) == {"box", "grabcut", "shape", "model"}
    assert all(0.0 <= a["mean_iou"] <= 1.0 and a["objects"] == assists["box"]["objects"] > 0 for a in assists.values())
    # The shape learned from the training images lies beside the checkpoint, and the box tool offers it.
    assert Path(version.checkpoint).with_suffix(".shape.npz").is_file()
    engines = world.client("annotator").get(f"/api/projects/{world.project.pk}/box-engines/").json()
    assert engines["available"] == ["grabcut", "shape", "model"] and engines["model_version"] == version.pk
    assert engines["scores"] == {name: assists[name]["mean_iou"] for name in ("grabcut", "shape", "model")}
    assert engines["best"] == max(engines["scores"], key=engines["scores"].get)
    assert engines["names"]["shape"] == "Learned shape"
    image = accepted_shapes[0]
    label = world.project.labels.get(name="disc")
    shaped = world.client("annotator").post(
        "/api/assist/box-to-mask/", {"image": image.pk, "box": [10, 10, 30, 30], "engine": "shape", "label": label.pk}, format="json",
    )
    assert shaped.status_code == 200 and shaped.json()["engine"] == "shape", shaped.json()
    assert 0 < shaped.json()["area"] <= 30 * 30

    response = world.client("manager").post(f"/api/models/{version.pk}/evaluate/", {}, format="json")
    assert response.status_code == 202, response.json()
    evaluation = run(Job.objects.get(pk=response.json()["id"]), services.model_evaluate)
    version.refresh_from_db()
    assert version.metrics["images"] == 1 == evaluation.result["metrics"]["images"]
    assert version.metrics["job"] == evaluation.pk
    assert version.metrics["evaluated_on"] == "accepted images not used for training"

    # The next round continues from the active version instead of starting from scratch.
    again = services.train_start(project=world.project, user=None, params=TrainParams(epochs=1, min_size=96), enqueue=False)
    second = ModelVersion.objects.get(pk=run(again, services.model_train).result["model_version"])
    assert second.params["init_from"] == version.checkpoint
    assert second.params["model_kwargs"] == {"min_size": 96, "max_size": 160}
    assert not second.is_active  # a later version waits for a manager

    page = world.client("reviewer")
    page.force_login(world.users["reviewer"])
    html = page.get(f"/projects/{world.project.pk}/models/").content.decode()
    assert version.name in html and "<svg" in html and "Precision" in html


def test_training_leaves_out_an_unreadable_accepted_image_and_says_which(world, accepted_shapes):
    broken = accepted_shapes[2]
    with open(broken.file.path, "wb") as handle:
        handle.write(b"truncated")
    job = services.train_start(project=world.project, user=None, params=TrainParams(
        epochs=1, batch_size=2, min_size=96, held_out=0.25), enqueue=False)
    job = run(job, services.model_train)
    assert [e["file"] for e in job.result["errors"]] == [broken.original_name]
    version = ModelVersion.objects.get(pk=job.result["model_version"])
    used = version.params["train_images"] + version.params["held_out_images"]
    assert sorted(used) == sorted(i.pk for i in accepted_shapes if i.pk != broken.pk)
    assert version.metrics["train_images"] == 3 and version.metrics["held_out_images"] == 1


def test_training_the_resnet50_model_fine_tunes_from_the_configured_coco_checkpoint(world, accepted_shapes, settings, tmp_path):
    """The GPU configuration's path, on a CPU: COCO weights from the checkpoint setting, new class heads."""
    from ml.models.maskrcnn import build_model

    torch.manual_seed(0)
    coco = build_model("maskrcnn_resnet50_fpn", 90).state_dict()  # torchvision's layout: 90 classes + background
    settings.ANNOTATOR_COCO_CHECKPOINT = str(tmp_path / "maskrcnn_resnet50_fpn_coco.pth")
    torch.save(coco, settings.ANNOTATOR_COCO_CHECKPOINT)

    job = services.train_start(project=world.project, user=None, params=TrainParams(
        arch="maskrcnn_resnet50_fpn", epochs=1, batch_size=2, min_size=64, held_out=0.2), enqueue=False)
    version = ModelVersion.objects.get(pk=run(job, services.model_train).result["model_version"])
    assert version.arch == "maskrcnn_resnet50_fpn" and version.params["init_from"] == settings.ANNOTATOR_COCO_CHECKPOINT
    trained = torch.load(version.checkpoint, weights_only=True)
    state = trained["state_dict"]
    # The frozen stem comes from COCO as is; the class heads were rebuilt for the project's labels.
    assert torch.equal(state["backbone.body.conv1.weight"], coco["backbone.body.conv1.weight"])
    assert state["roi_heads.box_predictor.cls_score.weight"].shape[0] == len(version.class_names) + 1
    assert coco["roi_heads.box_predictor.cls_score.weight"].shape[0] == 91
    assert version.metrics["train_images"] == 4 and "mask_AP" in version.metrics


def test_correction_stats_compare_proposals_with_what_people_accepted(world, checkpoint):
    label = LabelFactory(project=world.project, name="thing", order=7)
    version = ModelVersion.objects.create(project=world.project, name="m", kind=ModelKind.CHECKPOINT, checkpoint=str(checkpoint))
    images = make_images(world.project, 2, width=40, height=40)

    def box(x0: int, y0: int, x1: int, y1: int) -> dict:
        mask = np.zeros((40, 40), bool)
        mask[y0:y1, x0:x1] = True
        return mask_to_rle(mask)

    predictions = []
    for image in images:
        for rank, rle in enumerate([box(0, 0, 10, 10), box(20, 20, 30, 30)]):
            predictions.append(Prediction.objects.create(
                image=image, model_version=version, rank=rank, label=label, class_name="thing", score=0.9, rle=rle,
                bbox=[0, 0, 10, 10], area=100,
            ))
    # Image 1, through the editor's links: one proposal kept as is, one redrawn smaller, one object added.
    annotations_replace(image=images[0], user=None, base_version=0, items=[
        {"label": label.pk, "geometry": {"type": "mask", "rle": box(0, 0, 10, 10)}, "prediction": predictions[0].pk, "source": "model"},
        {"label": label.pk, "geometry": {"type": "mask", "rle": box(20, 20, 30, 25)}, "prediction": predictions[1].pk, "source": "model"},
        {"label": label.pk, "geometry": {"type": "mask", "rle": box(0, 30, 5, 35)}},
    ])
    # Image 2, without links: one proposal deleted, the other kept unchanged (found by IoU matching).
    annotations_replace(image=images[1], user=None, base_version=0, items=[
        {"label": label.pk, "geometry": {"type": "mask", "rle": box(0, 0, 10, 10)}},
    ])
    Image.objects.filter(pk__in=[i.pk for i in images]).update(status=ImageStatus.ACCEPTED)

    stats = model_version_corrections(version)
    assert stats["images"] == 2 and stats["proposals"] == 4 and stats["accepted"] == 4
    assert (stats["unchanged"], stats["edited"], stats["deleted"], stats["added"]) == (2, 1, 1, 1)
    assert stats["unchanged_share"] == 0.5
    assert stats["mean_iou"] == pytest.approx((1 + 0.5 + 1) / 3)
    detail = world.client("annotator").get(f"/api/models/{version.pk}/").json()
    assert detail["corrections"]["unchanged_share"] == 0.5


@pytest.mark.parametrize(("device", "threads", "cores", "overlaps"), [
    ("cpu", 2, 2, False),  # torch takes every core: the stages take turns with the model
    ("cpu", 1, 2, True),
    ("cpu", 4, 16, True),
    ("cuda", 8, 8, True),  # the model is on a GPU: the CPU is free for decoding and storing
])
def test_the_pipeline_stages_run_beside_the_model_only_where_it_leaves_cpu_free(monkeypatch, device, threads, cores, overlaps):
    from annotator.learning.services import preannotation

    monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
    monkeypatch.setattr(preannotation, "available_cores", lambda: cores)
    segmenter = type("Segmenter", (), {"device": torch.device(device)})()
    assert preannotation.pipeline_overlaps(segmenter) is overlaps  # type: ignore[arg-type]


def test_the_stages_in_turn_or_beside_the_model_store_the_same_proposals_in_groups(
    transactional_db, world, dated, checkpoint, monkeypatch,
):
    """Outside a transaction (as a worker runs it), storing goes to its own thread when the stages overlap."""
    from annotator.learning.services import preannotation

    monkeypatch.setattr(preannotation, "SAVE_IMAGES", 2)  # four images: two groups stored
    stored = []
    replace = preannotation.predictions_replace
    monkeypatch.setattr(preannotation, "predictions_replace", lambda **kw: stored.append(len(kw["items"])) or replace(**kw))
    params = PreannotateParams(model=str(checkpoint), threshold=0.3, batch_size=1, scope="all")
    first = services.preannotate_start(project=world.project, user=None, params=params, allow_any_path=True, enqueue=False)
    found = {}
    for overlap in (False, True):
        monkeypatch.setattr(preannotation, "PIPELINE_OVERLAP", overlap)
        stored.clear()
        job = run(Job.objects.create(kind=JobKind.PREANNOTATE, project=world.project, params=first.params), services.preannotate)
        assert stored == [2, 2] and job.result["predicted_images"] == 4 and job.progress_done == 4
        found[overlap] = sorted(Prediction.objects.filter(image__project=world.project).values_list(
            "image_id", "rank", "label_id", "score", "rle", "bbox", "area"), key=repr)
    assert found[False] == found[True] and found[False]


# --------------------------------------------------------------------------------------------
# Management commands


def test_preannotate_command_runs_and_reports(transactional_db, world, dated, checkpoint):
    out = io.StringIO()
    call_command("preannotate", "--project", world.project.name, "--model", str(checkpoint), "--threshold", "0.3",
                 "--here", stdout=out)
    assert "proposals on 4 of 4 images" in out.getvalue()
    assert Prediction.objects.filter(image__project=world.project).exists()


def test_preannotate_command_fails_clearly(transactional_db, world, dated):
    with pytest.raises(CommandError, match="no active model"):
        call_command("preannotate", "--project", world.project.name, "--wait", stdout=io.StringIO())
    with pytest.raises(CommandError, match="No project named"):
        call_command("train_model", "--project", "nope", stdout=io.StringIO())


def test_failed_job_makes_the_waiting_command_fail(transactional_db, world, dated, checkpoint):
    checkpoint_copy = Path(settings.ANNOTATOR_MODEL_DIR) / "tests" / "gone.pt"
    checkpoint_copy.write_bytes(checkpoint.read_bytes())
    version = services.model_version_from_checkpoint(project=world.project, path=str(checkpoint_copy), user=None)
    checkpoint_copy.unlink()
    with pytest.raises(CommandError, match="failed: .*checkpoint file not found"):
        call_command("preannotate", "--project", world.project.name, "--model", str(version.pk), "--here",
                     stdout=io.StringIO())


def test_download_weights_fails_fast_offline_and_says_where_to_put_the_file(monkeypatch, tmp_path):
    def offline(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("Name or service not known")

    monkeypatch.setattr(socket, "create_connection", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(CommandError) as error:
        call_command("download_weights", stdout=io.StringIO())
    message = str(error.value)
    assert "ANNOTATOR_COCO_CHECKPOINT=" in message
    assert "maskrcnn_resnet50_fpn_coco" in message and "download.pytorch.org" in message


def test_models_page_starts_jobs_for_managers_and_refuses_others(world, dated, checkpoint, monkeypatch):
    monkeypatch.setattr("annotator.jobs.services.job_enqueue", lambda *, job, queue: None)
    version = services.model_version_from_checkpoint(project=world.project, path=str(checkpoint), user=None)
    url = f"/projects/{world.project.pk}/models/"
    annotator = world.client("annotator")
    annotator.force_login(world.users["annotator"])
    page = annotator.get(url)
    assert page.status_code == 200 and "Start pre-annotation" not in page.content.decode()
    assert annotator.post(url, {"action": "preannotate", "model": str(version.pk), "threshold": 0.5}).status_code == 403

    manager = world.client("manager")
    manager.force_login(world.users["manager"])
    response = manager.post(url, {"action": "preannotate", "model": str(version.pk), "threshold": 0.4, "scope": "all",
                                  "batch_size": 2, "label_map": "apple = cat"})
    assert response.status_code == 302
    job = Job.objects.get(kind=JobKind.PREANNOTATE)
    assert job.params["threshold"] == 0.4 and job.params["label_map"] == {"apple": "cat"}
    # A business-rule failure comes back as a message on the page, not an error page.
    response = manager.post(url, {"action": "train", "held_out": 20}, follow=True)
    assert "at least 2 accepted images" in response.content.decode()
    assert manager.post(url, {"action": "activate", "version": version.pk}).status_code == 302
    version.refresh_from_db()
    assert version.is_active
    outsider = world.client("outsider")
    outsider.force_login(world.users["outsider"])
    assert outsider.get(url).status_code == 404


# --------------------------------------------------------------------------------------------
# Duplicate proposals


def duplicating_checkpoint(path: Path, *, proposals: int = 40) -> Path:
    """A one-class ('date') tiny model without the RPN's and the box head's own NMS: it proposes
    overlapping boxes of one object, each with a full-box mask, all scoring ~0.98."""
    torch.manual_seed(0)
    kwargs = {"min_size": 96, "max_size": 96, "box_score_thresh": 0.0, "rpn_post_nms_top_n_test": proposals,
              "rpn_nms_thresh": 1.0, "box_nms_thresh": 1.0, "box_detections_per_img": proposals}
    model = build_model("small", 1, **kwargs)
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.weight.zero_()
        model.roi_heads.box_predictor.cls_score.bias.copy_(torch.tensor([0.0, 4.0]))
        model.roi_heads.mask_predictor.mask_fcn_logits.weight.zero_()
        model.roi_heads.mask_predictor.mask_fcn_logits.bias.fill_(4.0)
    return save_checkpoint(path, model=model, arch="small", class_names=["date"], config={"model_kwargs": kwargs})


def test_preannotation_suppresses_duplicate_proposals_and_says_how_many(world, dated):
    _, images = dated
    checkpoint = duplicating_checkpoint(Path(settings.ANNOTATOR_MODEL_DIR) / "tests" / "duplicates.pt")

    def preannotate(nms_iou: float) -> dict:
        params = PreannotateParams(model=str(checkpoint), threshold=0.5, scope="all", nms_iou=nms_iou)
        return run(services.preannotate_start(project=world.project, user=None, params=params, enqueue=False), services.preannotate).result

    everything = preannotate(1.0)
    assert everything["suppressed"] == 0 and everything["predictions"] == 40 * len(images)
    result = preannotate(0.5)
    assert result["nms_iou"] == 0.5 and result["suppressed"] > 0
    assert result["predictions"] == everything["predictions"] - result["suppressed"]
    assert f"{result['suppressed']} duplicates suppressed" in result["summary"]
    for image in images:
        rows = list(Prediction.objects.filter(image=image).order_by("rank"))
        masks = [rle_to_mask(row.rle) for row in rows]
        ious = [mask_iou(a, b) for i, a in enumerate(masks) for b in masks[i + 1 :]]
        assert ious and max(ious) <= 0.5  # no two stored proposals are one object
        assert [row.score for row in rows] == sorted((row.score for row in rows), reverse=True)


def test_preannotation_defaults_to_suppressing_duplicates(world, dated, checkpoint):
    job = services.preannotate_start(project=world.project, user=None, params=PreannotateParams(model=str(checkpoint)),
                                     allow_any_path=True, enqueue=False)
    assert job.params["nms_iou"] == 0.5
    manager = Client()
    manager.force_login(world.users["manager"])
    page = manager.get(f"/projects/{world.project.pk}/models/").content.decode()
    assert 'name="nms_iou"' in page and "Duplicate overlap" in page


def test_models_page_reads_corrections_in_a_fixed_number_of_queries(world, checkpoint):
    label = LabelFactory(project=world.project, name="thing", order=7)
    manager = Client()
    manager.force_login(world.users["manager"])
    url = f"/projects/{world.project.pk}/models/"

    def add_version(name: str) -> None:
        version = ModelVersion.objects.create(project=world.project, name=name, kind=ModelKind.CHECKPOINT, checkpoint=str(checkpoint))
        for image in make_images(world.project, 3, width=20, height=20):
            mask = np.zeros((20, 20), bool)
            mask[2:9, 2:9] = True
            prediction = Prediction.objects.create(image=image, model_version=version, rank=0, label=label, class_name="thing",
                                                   score=0.9, rle=mask_to_rle(mask), bbox=[2, 2, 7, 7], area=49)
            annotations_replace(image=image, user=None, base_version=0, items=[
                {"label": label.pk, "geometry": {"type": "mask", "rle": mask_to_rle(mask)}, "prediction": prediction.pk},
            ])
            Image.objects.filter(pk=image.pk).update(status=ImageStatus.ACCEPTED)

    def queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            response = manager.get(url)
        assert response.status_code == 200 and 'data-testid="corrections"' in response.content.decode()
        return len(captured)

    add_version("one")
    one = queries()
    for name in ("two", "three", "four"):
        add_version(name)
    assert queries() == one  # four versions on twelve images: not one query more


# --------------------------------------------------------------------------------------------
# Box engines


def test_box_tool_uses_grabcut_until_the_project_has_a_model(world, image):
    client = world.client("annotator")
    engines = client.get(f"/api/projects/{world.project.pk}/box-engines/").json()
    assert engines["available"] == ["grabcut"] and engines["best"] == "grabcut" and engines["scores"] == {"grabcut": None}
    body = {"image": image.pk, "box": [10, 10, 60, 40]}
    response = client.post("/api/assist/box-to-mask/", body, format="json")
    assert response.status_code == 200 and response.json()["engine"] == "grabcut"
    response = client.post("/api/assist/box-to-mask/", {**body, "engine": "model"}, format="json")
    assert response.status_code == 400 and "no active trained model" in response.json()["detail"]
    response = client.post("/api/assist/box-to-mask/", {**body, "engine": "shape"}, format="json")
    assert response.status_code == 400 and "no shape has been learned" in response.json()["detail"]
    response = client.post("/api/assist/box-to-mask/", {**body, "engine": "magic"}, format="json")
    assert response.status_code == 400 and "engine" in response.json()["detail"]
    assert world.client("outsider").get(f"/api/projects/{world.project.pk}/box-engines/").status_code == 404


def test_box_tool_defaults_to_the_best_measured_engine_and_runs_the_project_model_on_the_box(world, image, checkpoint):
    date = LabelFactory(project=world.project, name="date", order=5)
    measured = {"box": {"mean_iou": 0.7, "objects": 12}, "grabcut": {"mean_iou": 0.66, "objects": 12},
                "model": {"mean_iou": 0.81, "objects": 12}}
    version = ModelVersion.objects.create(project=world.project, name="v1", kind=ModelKind.TRAINED, checkpoint=str(checkpoint),
                                          class_names=["date", "apple"], metrics={"assists": measured})
    services.model_version_activate(version=version)
    client = world.client("annotator")
    engines = client.get(f"/api/projects/{world.project.pk}/box-engines/").json()
    assert engines["best"] == "model" and engines["scores"] == {"grabcut": 0.66, "model": 0.81}
    assert engines["box"] == 0.7 and engines["objects"] == 12 and engines["names"]["model"] == "Project model"

    box = [30, 20, 80, 50]
    response = client.post("/api/assist/box-to-mask/", {"image": image.pk, "box": box, "label": date.pk}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["engine"] == "model"
    # The tiny model's mask head fills whatever box it is given: its answer is the box.
    mask = rle_to_mask(body["geometry"]["rle"]) if body["geometry"]["type"] == "mask" else geometry_to_mask(body["geometry"], width=200, height=100)
    drawn = np.zeros((100, 200), bool)
    drawn[20:70, 30:110] = True
    assert mask_iou(mask, drawn) > 0.85
    # Clicks refine with GrabCut, the engine that can use them; a chosen engine is used as asked.
    clicked = client.post("/api/assist/box-to-mask/", {"image": image.pk, "box": box, "foreground": [[60, 40]]}, format="json")
    assert clicked.status_code == 200 and clicked.json()["engine"] == "grabcut"
    chosen = client.post("/api/assist/box-to-mask/", {"image": image.pk, "box": box, "engine": "grabcut"}, format="json")
    assert chosen.status_code == 200 and chosen.json()["engine"] == "grabcut"
    other = LabelFactory(project=ProjectFactory(), name="date")
    response = client.post("/api/assist/box-to-mask/", {"image": image.pk, "box": box, "label": other.pk}, format="json")
    assert response.status_code == 400 and "not a label of this project" in response.json()["detail"]
