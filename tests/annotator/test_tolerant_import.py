"""Real datasets with hand-drawn imprecision import whole: repaired, reported, exported faithfully.

COCO's own 2017 ground truth (coco_tinycoco) and labelme's hand-drawn outlines cross themselves
by fractions of a pixel and spill over the border.  Each such object is repaired and named in the
import report; every object is kept; the COCO export matches a rasterisation of the original
outline (what labelme's converter, CVAT and pycocotools make of it) at mask IoU >= 0.95.
"""
from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from django.core.management import call_command
from pycocotools.coco import COCO

from annotator.annotations.models import Annotation
from annotator.datasets.services import ExportOptions, ImportOptions, dataset_import, export_write
from annotator.images.models import Image, ImageStatus
from annotator.projects.models import Project
from tests.datasets import DATASETS
from tests.factories import ProjectFactory

TINYCOCO = DATASETS / "coco_tinycoco"
FRUITS_LABELME = DATASETS / "fruits_nuts" / "images"

pytestmark = pytest.mark.django_db


def _import(project: Project, fmt: str, path: Path, **options: Any) -> dict[str, Any]:
    return dataset_import(project=project, fmt=fmt, path=path, options=ImportOptions.from_dict(options), user=None)


def _export_coco(project: Project, tmp_path: Path) -> COCO:
    Image.objects.filter(project=project).update(status=ImageStatus.ACCEPTED)
    out = tmp_path / "export.zip"
    with open(out, "wb") as fh:
        export_write(project=project, options=ExportOptions.from_dict({"format": "coco"}), out=fh)
    with zipfile.ZipFile(out) as archive:
        data = json.loads(archive.read("annotations/instances_default.json"))
    coco = COCO()
    coco.dataset = data
    coco.createIndex()
    return coco


def _original_rle(segmentation: Any, height: int, width: int) -> dict[str, Any]:
    """The original outline rasterised the way pycocotools (and so COCO training code) does it."""
    if isinstance(segmentation, dict):
        return mask_utils.frPyObjects(segmentation, height, width) if isinstance(segmentation["counts"], list) else segmentation
    return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))


def test_real_coco_ground_truth_imports_whole_with_a_report_and_exports_faithfully(tmp_path: Path) -> None:
    source = TINYCOCO / "annotations" / "instances_train2017.json"
    truth = json.loads(source.read_text())
    project = ProjectFactory(name="tinycoco")

    report = _import(project, "coco", source, images_dir=str(TINYCOCO / "images" / "train2017"))

    assert report["created_count"] == len(truth["images"])
    assert report["annotation_count"] == len(truth["annotations"]), "no object is dropped"
    # the outline COCO's own file has crossing itself (the one that blocked the import before)
    assert report["repaired_count"] >= 1 and report["repaired_count"] == len(report["repairs"])
    assert any("annotation 22328" in line and "crossed itself" in line for line in report["repairs"])
    assert all(line.startswith("instances_train2017.json: annotation ") for line in report["repairs"])

    exported = _export_coco(project, tmp_path)
    sizes = {img["id"]: (img["height"], img["width"]) for img in truth["images"]}
    by_name = {img["file_name"]: img["id"] for img in truth["images"]}
    worst = 1.0
    for image in exported.dataset["images"]:
        source_id = by_name[image["file_name"]]
        height, width = sizes[source_id]
        originals = sorted((a for a in truth["annotations"] if a["image_id"] == source_id), key=lambda a: a["id"])
        ours = sorted(exported.imgToAnns[image["id"]], key=lambda a: a["id"])
        assert len(ours) == len(originals)
        for theirs in originals:
            mine = next(a for a in ours if a["id"] == theirs["id"]) if any(a["id"] == theirs["id"] for a in ours) else None
            if mine is None:  # ids are renumbered: match by overlap
                mine = max(ours, key=lambda a: mask_utils.iou([exported.annToRLE(a)], [_original_rle(theirs["segmentation"], height, width)], [0])[0][0])
            iou = mask_utils.iou([exported.annToRLE(mine)], [_original_rle(theirs["segmentation"], height, width)], [0])[0][0]
            worst = min(worst, float(iou))
    assert worst >= 0.95, f"worst object IoU {worst:.3f}"


def _hand_drawn_labelme(tmp_path: Path) -> tuple[Path, dict[str, list[list[list[float]]]]]:
    """labelme files from fruits_nuts with outlines as hands draw them: crossing, past the border.

    Returns the folder and, per file, the outlines as written (to rasterise as the truth).
    """
    folder = tmp_path / "labelme"
    folder.mkdir()
    outlines: dict[str, list[list[list[float]]]] = {}
    for path in sorted(FRUITS_LABELME.glob("*.json"))[:4]:
        data = json.loads(path.read_text())
        for k, shape in enumerate(data["shapes"]):
            points = shape["points"]
            if k % 3 == 0 and len(points) > 6:
                # a hand slip: two neighbouring points swapped — the outline crosses itself
                points[2], points[3] = points[3], points[2]
            elif k % 3 == 1:
                # a vertex pulled a hair past the image border
                points[0] = [points[0][0], -0.4]
        data["shapes"].append({  # a bow tie drawn across the image corner
            "label": data["shapes"][0]["label"], "points": [[-3, -3], [60, 60], [60, -3], [-3, 60]],
            "group_id": None, "shape_type": "polygon", "flags": {},
        })
        (folder / path.name).write_text(json.dumps(data))
        shutil.copy(path.with_suffix(".jpg"), folder / path.with_suffix(".jpg").name)
        outlines[path.name] = [shape["points"] for shape in data["shapes"]]
    return folder, outlines


def test_hand_drawn_labelme_imports_with_every_object_kept_and_reported(tmp_path: Path) -> None:
    folder, outlines = _hand_drawn_labelme(tmp_path)
    project = ProjectFactory(name="hand drawn")

    report = _import(project, "labelme", folder)

    total = sum(len(shapes) for shapes in outlines.values())
    assert report["annotation_count"] == total
    assert Annotation.objects.filter(image__project=project).count() == total
    assert report["repaired_count"] >= len(outlines) * 2
    assert any("shape 2: An outline that crossed itself was untangled" in line for line in report["repairs"]) or any(
        "crossed itself" in line for line in report["repairs"]
    )
    assert all(line.split(":")[0] in outlines for line in report["repairs"]), "each repair names its file"

    exported = _export_coco(project, tmp_path)
    for image in exported.dataset["images"]:
        name = Path(image["file_name"]).with_suffix(".json").name
        height, width = image["height"], image["width"]
        ours = sorted(exported.imgToAnns[image["id"]], key=lambda a: a["id"])
        assert len(ours) == len(outlines[name])
        for ann, points in zip(ours, outlines[name]):
            truth = _original_rle([np.asarray(points, dtype=float).ravel().tolist()], height, width)
            iou = mask_utils.iou([exported.annToRLE(ann)], [truth], [0])[0][0]
            assert iou >= 0.95, f"{name}: object {ann['id']} IoU {iou:.3f}"


def test_the_import_command_prints_the_repairs(tmp_path: Path) -> None:
    folder, _ = _hand_drawn_labelme(tmp_path)
    out = io.StringIO()
    call_command("import_dataset", "--project", "Hand drawn", "--format", "labelme", str(folder), stdout=out)
    text = out.getvalue()
    assert "objects repaired" in text
    assert "repaired: 0.json: shape" in text


def test_an_object_over_the_vertex_limit_is_simplified_on_import_and_reported(tmp_path: Path, settings) -> None:
    settings.ANNOTATOR_MAX_VERTICES_PER_OBJECT = 50
    folder, _ = _hand_drawn_labelme(tmp_path)
    data = json.loads((folder / "0.json").read_text())
    t = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    data["shapes"] = [{"label": "date", "points": np.c_[400 + 100 * np.cos(t), 300 + 100 * np.sin(t)].tolist(),
                       "group_id": None, "shape_type": "polygon", "flags": {}}]
    for other in folder.glob("*.json"):
        other.unlink()
    (folder / "0.json").write_text(json.dumps(data))
    project = ProjectFactory(name="dense")

    report = _import(project, "labelme", folder)

    [row] = Annotation.objects.filter(image__project=project)
    assert sum(len(p["exterior"]) for p in row.polygons) <= 50
    assert any("simplified from 400 to" in line.lower() for line in report["repairs"])
