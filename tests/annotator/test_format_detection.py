"""Format detection reads structure: a standard COCO zip and a big LabelMe file are recognised.

COCO's own files put ``info, licenses, images, annotations, categories`` in that order, so the
keys that tell COCO apart come after the image list — far past any fixed window of bytes for a
dataset of thousands of images. Detection parses the top-level keys as a stream instead.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from annotator.annotations.models import Annotation
from annotator.datasets.services import ImportOptions, dataset_import
from annotator.images.models import Image
from ml.formats import detect_format
from ml.formats.coco import looks_like_coco
from ml.formats.labelme import looks_like_labelme
from tests.factories import ProjectFactory, png_bytes

IMAGES = 5_000
ANNOTATED = 20  # enough objects to check they arrive; storing 5,000 revisions would only cost time


def _standard_coco(count: int) -> dict:
    """A COCO instances file in the key order of COCO's own releases."""
    return {
        "info": {"description": "generated", "version": "1.0", "year": 2024},
        "licenses": [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}],
        "images": [
            {"id": k + 1, "file_name": f"{k:06d}.png", "width": 4, "height": 4, "license": 1,
             "coco_url": f"http://images.example/{k:06d}.png", "date_captured": "2024-01-01 00:00:00"}
            for k in range(count)
        ],
        "annotations": [
            {"id": k + 1, "image_id": k + 1, "category_id": 1, "segmentation": [[0, 0, 3, 0, 3, 3, 0, 3]],
             "area": 9.0, "bbox": [0, 0, 3, 3], "iscrowd": 0}
            for k in range(ANNOTATED)
        ],
        "categories": [{"id": 1, "name": "thing", "supercategory": "thing"}],
    }


def test_a_standard_coco_zip_of_5000_images_is_recognised_and_imported(db, tmp_path: Path) -> None:
    data = _standard_coco(IMAGES)
    text = json.dumps(data)
    assert text.index('"annotations"') > 64 * 1024 and text.index('"categories"') > 64 * 1024
    archive = tmp_path / "coco.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("dataset/annotations/instances_train2017.json", text)
        for k in range(IMAGES):
            # distinct pixels: the import keeps one copy of identical pictures
            out.writestr(f"dataset/train2017/{k:06d}.png", png_bytes(4, 4, color=(k % 256, k // 256, 7)))
    project = ProjectFactory(name="COCO")
    result = dataset_import(project=project, fmt="coco", path=archive, options=ImportOptions(), user=None)
    assert (result["created_count"], result["annotation_count"]) == (IMAGES, ANNOTATED)
    assert Image.objects.filter(project=project).count() == IMAGES
    assert Annotation.objects.filter(image__project=project).count() == ANNOTATED


def test_detection_reads_keys_not_a_byte_window(tmp_path: Path) -> None:
    coco = tmp_path / "coco" / "instances.json"
    coco.parent.mkdir()
    coco.write_text(json.dumps(_standard_coco(IMAGES)))
    assert looks_like_coco(coco)
    assert detect_format(tmp_path / "coco") == "coco"

    # LabelMe puts shapes before imagePath: a file with many shapes has imagePath far down.
    shapes = [{"label": "a", "points": [[k % 90, 1], [k % 90 + 5, 1], [k % 90 + 5, 6]], "shape_type": "polygon",
               "group_id": None, "flags": {}} for k in range(3_000)]
    labelme = tmp_path / "lm" / "a.json"
    labelme.parent.mkdir()
    labelme.write_text(json.dumps({"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": "a.png",
                                   "imageData": None, "imageHeight": 100, "imageWidth": 100}))
    assert labelme.read_text().index('"imagePath"') > 64 * 1024
    assert looks_like_labelme(labelme) and not looks_like_coco(labelme)
    assert detect_format(tmp_path / "lm") == "labelme"


@pytest.mark.parametrize(
    ("content", "coco"),
    [
        ('{"images": [], "annotations": []}', True),
        ('{"images": [], "categories": []}', True),
        ('{"images": {}, "annotations": []}', False),  # structure, not the word
        ('{"info": {"images": [], "annotations": []}}', False),  # nested keys do not count
        ('[{"image_id": 1, "category_id": 1, "segmentation": []}]', False),  # a results list
        ('{"shapes": [], "imagePath": "a.png", "images": [], "annotations": []}', False),
        ('{"images": [{"id": 1, "file_name": "a.png"', True),  # broken off: its reader says where
        ("not json at all", False),
    ],
)
def test_looks_like_coco_decides_from_the_top_level_structure(tmp_path: Path, content: str, coco: bool) -> None:
    path = tmp_path / "x.json"
    path.write_text(content)
    assert looks_like_coco(path) is coco
