"""Dataset import and export: real samples round-trip losslessly, exports load in training tools,
bad input changes nothing, dataset versions are kept with checksums, API and commands work."""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import call_command

from annotator.annotations.models import Annotation, Prediction
from annotator.core.errors import DomainError
from annotator.datasets.models import DatasetVersion
from annotator.datasets.services import ExportOptions, ImportOptions, dataset_export, dataset_import, export_write
from annotator.images.models import Image, ImageStatus
from annotator.jobs.models import Job, JobKind
from annotator.jobs.services import job_execute, job_start
from annotator.learning.models import ModelVersion
from annotator.projects.models import Label, Project
from ml import geometry as geo
from ml.formats import Dataset, read_coco, read_labelme, read_voc
from tests.datasets import DATASETS
from tests.factories import ProjectFactory, png_bytes, upload

FRUITS = DATASETS / "fruits_nuts"
DATUMARO_COCO = DATASETS / "datumaro_coco" / "coco_instances"
DATUMARO_VOC = DATASETS / "datumaro_voc" / "voc_dataset1"

needs_samples = pytest.mark.skipif(not DATASETS.is_dir(), reason="shared sample datasets not available")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _import(project: Project, fmt: str, path: Path, **options: Any) -> dict[str, Any]:
    return dataset_import(project=project, fmt=fmt, path=path, options=ImportOptions.from_dict(options), user=None)


def _export(project: Project, tmp_path: Path, **options: Any) -> Path:
    """Export to a zip and extract it; returns the extracted folder."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "export.zip"
    with open(out, "wb") as fh:
        export_write(project=project, options=ExportOptions.from_dict(options), out=fh)
    folder = tmp_path / "export"
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None
        archive.extractall(folder)
    return folder


def _by_name(dataset: Dataset) -> dict[str, Any]:
    # exports write flat names (sub/b.png → b.png): images are matched on the base name
    return {Path(image.file_name).name: image for image in dataset.images}


def _assert_same_objects(source: Dataset, exported: Dataset, *, min_iou: float = 0.99) -> None:
    """Same images, same number of objects per image, same labels, every mask IoU ≥ min_iou."""
    src, out = _by_name(source), _by_name(exported)
    assert sorted(src) == sorted(out)
    assert source.instance_count == exported.instance_count
    for name, image in src.items():
        theirs = out[name]
        assert (theirs.width, theirs.height) == (image.width, image.height)
        assert [i.label for i in theirs.instances] == [i.label for i in image.instances], name
        for a, b in zip(image.instances, theirs.instances):
            iou = geo.geometry_iou(a.geometry, b.geometry, width=image.width, height=image.height)
            assert iou >= min_iou, f"{name}: object {a.source_id} IoU {iou:.4f}"


def _accept_all(project: Project) -> None:
    Image.objects.filter(project=project).update(status=ImageStatus.ACCEPTED)


def _media_files() -> set[str]:
    root = Path(settings.MEDIA_ROOT)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.is_dir() else set()


def _square(x: float, y: float, s: float) -> list[float]:
    return [x, y, x + s, y, x + s, y + s, x, y + s]


def _synthetic_coco(folder: Path) -> Path:
    """A COCO dataset with a multi-part object, an object with a hole, an RLE mask and a crowd region."""
    images = folder / "images"
    images.mkdir(parents=True)
    (images / "a.png").write_bytes(png_bytes(120, 80, color=(10, 20, 30)))
    (images / "sub").mkdir()
    (images / "sub" / "b.png").write_bytes(png_bytes(120, 80, color=(40, 50, 60)))
    mask = geo.polygons_to_rle([{"exterior": [[60, 10], [110, 10], [110, 70], [60, 70]], "holes": [[[75, 25], [95, 25], [95, 55], [75, 55]]]}], width=120, height=80)
    uncompressed = {"size": [80, 120], "counts": [80 * 5 + 10, 20, 60, 20, 80 * 120 - (80 * 5 + 10) - 100]}
    data = {
        "images": [
            {"id": 7, "file_name": "a.png", "width": 120, "height": 80},
            {"id": 9, "file_name": "sub/b.png", "width": 120, "height": 80},
        ],
        "categories": [{"id": 3, "name": "nut"}, {"id": 8, "name": "shell"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "segmentation": [_square(5, 5, 20), _square(30, 30, 15)], "iscrowd": 0,
             "bbox": [5, 5, 40, 40], "area": 625},
            {"id": 2, "image_id": 7, "category_id": 8, "segmentation": mask, "iscrowd": 0, "bbox": [60, 10, 50, 60], "area": 2400},
            {"id": 3, "image_id": 9, "category_id": 8, "segmentation": uncompressed, "iscrowd": 1, "bbox": [5, 10, 2, 20], "area": 40},
            {"id": 4, "image_id": 9, "category_id": 3, "segmentation": [_square(50, 20, 30)], "iscrowd": 0, "bbox": [50, 20, 30, 30], "area": 900},
        ],
    }
    path = folder / "annotations.json"
    path.write_text(json.dumps(data))
    return path


def _zip_folder(folder: Path, out: Path, *, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(out, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return out


@pytest.fixture
def project(db) -> Project:
    return ProjectFactory(name="Imports")


# --------------------------------------------------------------------------------------------
# Round trips on the real samples
# --------------------------------------------------------------------------------------------


@needs_samples
def test_fruits_coco_round_trip_is_lossless(project: Project, tmp_path: Path) -> None:
    result = _import(project, "coco", FRUITS / "trainval.json", status="accepted")
    assert (result["created_count"], result["annotation_count"]) == (18, 165)
    assert list(project.labels.values_list("name", flat=True)) == ["date", "fig", "hazelnut"]
    assert Image.objects.filter(project=project, status=ImageStatus.ACCEPTED).count() == 18

    folder = _export(project, tmp_path, format="coco")
    exported = read_coco(folder / "annotations" / "instances_default.json")
    _assert_same_objects(read_coco(FRUITS / "trainval.json"), exported, min_iou=0.99)
    # Plain polygons stay polygons (not RLE), and nothing is a crowd region.
    raw = json.loads((folder / "annotations" / "instances_default.json").read_text())
    assert all(isinstance(a["segmentation"], list) and a["iscrowd"] == 0 for a in raw["annotations"])


@needs_samples
def test_fruits_labelme_round_trip_is_lossless(project: Project, tmp_path: Path) -> None:
    # LabelMe JSON with embedded imageData next to the JPEGs.
    result = _import(project, "labelme", FRUITS / "images", status="accepted")
    assert (result["created_count"], result["annotation_count"]) == (18, 165)
    folder = _export(project, tmp_path, format="coco")
    _assert_same_objects(read_labelme(FRUITS / "images"), read_coco(folder / "annotations" / "instances_default.json"))


@needs_samples
def test_datumaro_coco_instances_round_trip_keeps_crowd_rle_and_bbox_only(project: Project, tmp_path: Path) -> None:
    result = _import(project, "coco", DATUMARO_COCO, status="accepted")
    assert result["created_count"] == 2 and result["annotation_count"] == 3
    folder = _export(project, tmp_path, format="coco", include_images=True)
    exported = read_coco(folder / "annotations" / "instances_default.json", images_dir=folder / "images" / "default")
    source = Dataset(labels=[], images=[])
    for subset in ("train", "val"):
        source.images += read_coco(DATUMARO_COCO / "annotations" / f"instances_{subset}.json").images
    _assert_same_objects(source, exported)
    raw = json.loads((folder / "annotations" / "instances_default.json").read_text())
    crowd = [a for a in raw["annotations"] if a["iscrowd"]]
    assert len(crowd) == 1 and isinstance(crowd[0]["segmentation"], dict)
    assert any(a.get("attributes", {}).get("bbox_only") for a in raw["annotations"])
    # Non-contiguous source category ids become 1..N in label order; names are kept.
    assert [c["id"] for c in raw["categories"]] == list(range(1, len(raw["categories"]) + 1))


@needs_samples
def test_datumaro_voc_round_trip_through_our_voc_export(project: Project, tmp_path: Path) -> None:
    result = _import(project, "voc", DATUMARO_VOC, status="accepted")
    source = read_voc(DATUMARO_VOC)
    assert result["annotation_count"] == source.instance_count
    # The sample's second image is a byte-identical copy of the first, without objects: a project
    # holds a picture once, so it is skipped and reported.
    assert any("2007_000002.jpg" in w and "skipped" in w for w in result["warnings"])
    source.images = [i for i in source.images if i.file_name != "2007_000002.jpg"]
    folder = _export(project, tmp_path, format="voc", include_images=True)
    _assert_same_objects(source, read_voc(folder))


@needs_samples
def test_fruits_labelme_export_is_plain_labelme_and_imports_back_the_same(project: Project, tmp_path: Path) -> None:
    _import(project, "coco", FRUITS / "trainval.json", status="accepted")
    folder = _export(project, tmp_path, format="labelme", include_images=True)
    documents = sorted((folder / "labelme").glob("*.json"))
    assert len(documents) == 18
    for path in documents:
        document = json.loads(path.read_text())
        # What LabelMe opens and labelme2coco converts: polygons with points, the image beside the file.
        assert document["version"].startswith("5.") and document["imageData"] is None
        assert (path.parent / document["imagePath"]).is_file()
        assert all(s["shape_type"] == "polygon" and len(s["points"]) >= 3 for s in document["shapes"])
    _assert_same_objects(read_coco(FRUITS / "trainval.json"), read_labelme(folder / "labelme"))

    copy = ProjectFactory(name="Fruits again")
    archive = _zip_folder(folder, tmp_path / "labelme.zip")
    result = _import(copy, "labelme", archive, status="accepted")
    assert (result["created_count"], result["annotation_count"]) == (18, 165)
    assert not result["warnings"]  # the manifest beside the folder is not taken for a LabelMe file


def _objects(project: Project) -> dict[str, list[tuple[str, dict[str, Any], dict[str, Any]]]]:
    """Per image (by base name): label, attributes and geometry of each object in z-order."""
    out = {}
    for image in Image.objects.filter(project=project):
        rows = Annotation.objects.filter(image=image).select_related("label").order_by("z_order", "id")
        out[Path(image.original_name).name] = [(row.label.name, row.attributes, row.geometry) for row in rows]
    return out


def test_labelme_export_round_trips_parts_holes_masks_and_crowds(project: Project, tmp_path: Path) -> None:
    _import(project, "coco", _synthetic_coco(tmp_path / "src"), status="accepted")
    Annotation.objects.filter(image__project=project, label__name="nut").update(attributes={"ripe": True, "grade": "A"})
    folder = _export(project, tmp_path / "out", format="labelme", include_images=True)
    members = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert members == ["labelme/a.json", "labelme/a.png", "labelme/b.json", "labelme/b.png", "manifest.json"]
    shapes = json.loads((folder / "labelme" / "a.json").read_text())["shapes"]
    # The painted mask with a hole is traced: its outline and its hole are two polygons of one group.
    shell = [s for s in shapes if s["label"] == "shell"]
    assert [s["shape_type"] for s in shell] == ["polygon", "polygon"] and len({s["group_id"] for s in shell}) == 1
    nut = [s for s in shapes if s["label"] == "nut"]
    assert len(nut) == 2 and all(s["flags"] == {"ripe": True} and s["grade"] == "A" for s in nut)  # two parts

    copy = ProjectFactory(name="Copy")
    result = _import(copy, "labelme", _zip_folder(folder, tmp_path / "labelme.zip"), status="accepted")
    assert not result["warnings"] and result["annotation_count"] == 4
    before, after = _objects(project), _objects(copy)
    assert sorted(before) == sorted(after) == ["a.png", "b.png"]
    for name, objects in before.items():
        assert [(label, attributes) for label, attributes, _ in after[name]] == [(label, attributes) for label, attributes, _ in objects]
        for (_, _, mine), (_, _, theirs) in zip(objects, after[name], strict=True):
            # Masks come back as polygons along their pixel edges: the very same pixels.
            assert geo.geometry_iou(mine, theirs, width=120, height=80) == 1.0
    assert any(attributes.get("iscrowd") for _, attributes, _ in after["b.png"])


def test_synthetic_coco_with_holes_and_parts_round_trips_from_a_zip(project: Project, tmp_path: Path) -> None:
    source_json = _synthetic_coco(tmp_path / "src")
    archive = _zip_folder(tmp_path / "src", tmp_path / "upload.zip")
    result = _import(project, "coco", archive, status="accepted")
    assert (result["created_count"], result["annotation_count"]) == (2, 4)
    # File names with folders are kept.
    assert set(Image.objects.filter(project=project).values_list("original_name", flat=True)) == {"a.png", "sub/b.png"}
    parts = Annotation.objects.get(image__original_name="a.png", label__name="nut")
    assert len(parts.polygons) == 2  # the two-part object stayed one object with two parts

    folder = _export(project, tmp_path, format="coco")
    exported_json = folder / "annotations" / "instances_default.json"
    _assert_same_objects(read_coco(source_json), read_coco(exported_json), min_iou=0.999)
    raw = {a["bbox"][0]: a for a in json.loads(exported_json.read_text())["annotations"]}
    assert len(raw[5.0]["segmentation"]) == 2  # two polygons, one object
    hole = next(a for a in raw.values() if a["bbox"][0] == 60.0)
    assert isinstance(hole["segmentation"], dict) and hole["iscrowd"] == 0  # hole → RLE, not a crowd
    assert hole["area"] == pytest.approx(50 * 60 - 20 * 30, abs=1)
    crowd = next(a for a in raw.values() if a["iscrowd"] == 1)
    assert crowd["area"] == 40


# --------------------------------------------------------------------------------------------
# Conformance with the tools people train with
# --------------------------------------------------------------------------------------------


@needs_samples
def test_coco_export_loads_in_pycocotools_with_predictions(project: Project, tmp_path: Path) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    _import(project, "coco", FRUITS / "trainval.json", status="accepted")
    # Predictions: the ground truth itself, as a model's masks (a perfect model).
    model = ModelVersion.objects.create(project=project, name="m", kind="coco")
    for image in Image.objects.filter(project=project):
        for rank, ann in enumerate(Annotation.objects.filter(image=image).order_by("z_order")):
            rle = geo.geometry_to_rle(ann.geometry, width=image.width, height=image.height)
            Prediction.objects.create(image=image, model_version=model, rank=rank, label=ann.label, class_name=ann.label.name,
                                      score=0.9, rle=rle, bbox=ann.bbox, area=ann.area)
    folder = _export(project, tmp_path, format="coco", predictions=True)
    gt = COCO(str(folder / "annotations" / "instances_default.json"))
    assert len(gt.getImgIds()) == 18 and len(gt.getAnnIds()) == 165
    dt = gt.loadRes(str(folder / "predictions.json"))
    evaluator = COCOeval(gt, dt, iouType="segm")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[0] > 0.95  # perfect predictions → mAP ≈ 1
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["predictions"] == 165


@needs_samples
def test_voc_export_is_read_by_torchvision(project: Project, tmp_path: Path) -> None:
    torchvision = pytest.importorskip("torchvision")
    _import(project, "coco", FRUITS / "trainval.json", status="accepted")
    folder = _export(project, tmp_path, format="voc", include_images=True)
    root = tmp_path / "root" / "VOCdevkit"
    root.mkdir(parents=True)
    shutil.move(str(folder), str(root / "VOC2012"))
    segmentation = torchvision.datasets.VOCSegmentation(str(tmp_path / "root"), year="2012", image_set="trainval")
    detection = torchvision.datasets.VOCDetection(str(tmp_path / "root"), year="2012", image_set="trainval")
    assert len(segmentation) == len(detection) == 18
    image, target = segmentation[0]
    assert image.size == target.size == (800, 600)
    _image, annotation = detection[0]
    objects = annotation["annotation"]["object"]
    assert {o["name"] for o in objects} <= {"date", "fig", "hazelnut"}
    # Object k of the XML is index k in SegmentationObject (checked on the first image).
    import numpy as np
    from PIL import Image as PILImage

    stem = Path(segmentation.images[0]).stem
    objects_png = np.array(PILImage.open(root / "VOC2012" / "SegmentationObject" / f"{stem}.png"))
    assert set(np.unique(objects_png)) - {0} == set(range(1, len(objects) + 1))


# --------------------------------------------------------------------------------------------
# Export filters, versions, checksums
# --------------------------------------------------------------------------------------------


def test_export_filters_by_status_and_labels(project: Project, tmp_path: Path) -> None:
    _import(project, "coco", _synthetic_coco(tmp_path / "src"), status="new")
    Image.objects.filter(project=project, original_name="a.png").update(status=ImageStatus.ACCEPTED)
    accepted = read_coco(_export(project, tmp_path / "one", format="coco") / "annotations" / "instances_default.json")
    assert [i.file_name for i in accepted.images] == ["a.png"]  # accepted only, by default
    everything = read_coco(_export(project, tmp_path / "two", format="coco", status="all", labels=["nut"]) / "annotations" / "instances_default.json")
    assert sorted(i.file_name for i in everything.images) == ["a.png", "b.png"]  # flat names
    assert everything.labels == ["nut"]
    assert {inst.label for image in everything.images for inst in image.instances} == {"nut"}
    with pytest.raises(DomainError, match="no label 'bird'"):
        _export(project, tmp_path / "three", format="coco", labels=["bird"])


def test_export_job_keeps_a_dataset_version_with_manifest_and_checksums(project: Project, tmp_path: Path) -> None:
    _import(project, "coco", _synthetic_coco(tmp_path / "src"), status="accepted")
    job = job_start(kind=JobKind.EXPORT, project=project, params={"format": "coco", "include_images": True, "name": "v1"}, user=None, enqueue=False)
    job_execute(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == "succeeded", job.error
    version = DatasetVersion.objects.get(pk=job.result["dataset_version"])
    assert version.name == "v1" and job.result_file.name == version.file.name
    data = version.file.open("rb").read()
    assert hashlib.sha256(data).hexdigest() == version.sha256 and len(data) == version.size
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        assert {"annotations/instances_default.json", "images/default/a.png", "images/default/b.png", "manifest.json"} <= names
        for entry in version.manifest["files"]:
            assert hashlib.sha256(archive.read(entry["path"])).hexdigest() == entry["sha256"]
        assert json.loads(archive.read("manifest.json"))["counts"] == version.manifest["counts"]
    assert version.manifest["counts"]["annotations"] == 4
    assert version.manifest["counts"]["per_label"] == {"nut": 2, "shell": 2}
    # A second export with the same name is refused.
    with pytest.raises(DomainError, match="already exists"):
        dataset_export(project=project, options=ExportOptions.from_dict({"format": "coco"}), name="v1")


# --------------------------------------------------------------------------------------------
# Bad input: a clear error and nothing imported
# --------------------------------------------------------------------------------------------


def _bad_zip_truncated_json(tmp_path: Path) -> Path:
    _synthetic_coco(tmp_path / "src")
    text = (tmp_path / "src" / "annotations.json").read_text()
    (tmp_path / "src" / "annotations.json").write_text(text[: len(text) // 2])
    return _zip_folder(tmp_path / "src", tmp_path / "bad.zip")


def _bad_zip_path_trick(tmp_path: Path) -> Path:
    _synthetic_coco(tmp_path / "src")
    return _zip_folder(tmp_path / "src", tmp_path / "bad.zip", extra={"../evil.txt": b"gotcha"})


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>
<annotation><filename>a.jpg</filename><size><width>10</width><height>10</height></size>
<object><name>&lol2;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>"""


def _bad_zip_xml_bomb(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "JPEGImages").mkdir(parents=True)
    (src / "Annotations").mkdir()
    (src / "JPEGImages" / "ok.jpg").write_bytes(png_bytes(10, 10, fmt="JPEG"))
    (src / "Annotations" / "ok.xml").write_text(
        "<annotation><filename>ok.jpg</filename><size><width>10</width><height>10</height></size>"
        "<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>"
    )
    (src / "JPEGImages" / "zz.jpg").write_bytes(png_bytes(10, 10, color=(1, 2, 3), fmt="JPEG"))
    (src / "Annotations" / "zz.xml").write_bytes(BOMB)
    return _zip_folder(src, tmp_path / "bad.zip")


def _bad_zip_missing_image(tmp_path: Path) -> Path:
    _synthetic_coco(tmp_path / "src")
    (tmp_path / "src" / "images" / "sub" / "b.png").unlink()
    return _zip_folder(tmp_path / "src", tmp_path / "bad.zip")


def _bad_zip_corrupt_image(tmp_path: Path) -> Path:
    _synthetic_coco(tmp_path / "src")
    (tmp_path / "src" / "images" / "sub" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return _zip_folder(tmp_path / "src", tmp_path / "bad.zip")


@pytest.mark.parametrize(
    ("make", "fmt", "message"),
    [
        (_bad_zip_truncated_json, "coco", "annotations.json: invalid JSON at line"),
        (_bad_zip_path_trick, "coco", "'..' in path is not allowed"),
        (_bad_zip_xml_bomb, "voc", "Annotations/zz.xml: unsafe XML refused"),
        (_bad_zip_missing_image, "coco", "image file 'sub/b.png' not found"),
        (_bad_zip_corrupt_image, "coco", "sub/b.png: "),
    ],
    ids=["truncated-json", "path-trick", "xml-bomb", "missing-image", "corrupt-image"],
)
def test_bad_dataset_is_refused_and_nothing_is_imported(project: Project, tmp_path: Path, make, fmt: str, message: str) -> None:  # type: ignore[no-untyped-def]
    archive = make(tmp_path)
    before = (Image.objects.count(), Annotation.objects.count(), Label.objects.count(), _media_files())
    with pytest.raises(DomainError) as error:
        _import(project, fmt, archive, status="accepted")
    assert message in error.value.detail
    assert (Image.objects.count(), Annotation.objects.count(), Label.objects.count(), _media_files()) == before
    assert not (tmp_path.parent / "evil.txt").exists()


def test_failure_while_storing_removes_the_files_already_written(project: Project, tmp_path: Path) -> None:
    source = _synthetic_coco(tmp_path / "src")
    before = (Image.objects.count(), Annotation.objects.count())
    files_before = _media_files()

    class Stop(Exception):
        pass

    def progress(done: int, total: int, message: str) -> None:
        if done == total:  # the last image of the write pass: earlier ones are already stored
            raise Stop

    with pytest.raises(Stop):
        dataset_import(project=project, fmt="coco", path=source, options=ImportOptions(), user=None, progress=progress)
    assert (Image.objects.count(), Annotation.objects.count()) == before
    # No file is left behind. (One that an earlier test left at the same name, its rows rolled back,
    # is an orphan the import replaces and so removes too.)
    assert _media_files() <= files_before


def test_label_mapping_and_refusing_unknown_labels(project: Project, tmp_path: Path) -> None:
    Label.objects.create(project=project, name="hazelnut", color="#123456", order=0)
    source = _synthetic_coco(tmp_path / "src")
    with pytest.raises(DomainError, match="no label 'shell'"):
        _import(project, "coco", source, label_map={"nut": "hazelnut"}, create_labels=False)
    assert Image.objects.filter(project=project).count() == 0
    result = _import(project, "coco", source, label_map={"nut": "hazelnut", "shell": "hazelnut"}, create_labels=False)
    assert result["labels_created"] == []
    assert set(Annotation.objects.filter(image__project=project).values_list("label__name", flat=True)) == {"hazelnut"}


def test_import_as_proposals_puts_images_in_the_review_queue(project: Project, tmp_path: Path) -> None:
    _import(project, "coco", _synthetic_coco(tmp_path / "src"), status="submitted")
    assert set(Image.objects.filter(project=project).values_list("status", flat=True)) == {ImageStatus.SUBMITTED}
    assert all(a.source == "import" for a in Annotation.objects.filter(image__project=project))


def test_annotations_can_be_imported_onto_images_already_uploaded(project: Project, tmp_path: Path) -> None:
    source = _synthetic_coco(tmp_path / "src")
    from annotator.images.services import images_add

    data = (tmp_path / "src" / "images" / "a.png").read_bytes()
    images_add(project=project, sources=[("a.png", lambda: data)])
    result = _import(project, "coco", source)
    assert (result["created_count"], result["matched_count"]) == (1, 1)
    assert Image.objects.filter(project=project).count() == 2
    # Importing again is refused: the images now have annotations.
    with pytest.raises(DomainError, match="already in the project with annotations"):
        _import(project, "coco", source)


# --------------------------------------------------------------------------------------------
# API and management commands
# --------------------------------------------------------------------------------------------


def test_api_import_upload_and_export_download(world, tmp_path: Path) -> None:
    project = world.project
    _synthetic_coco(tmp_path / "src")
    archive = _zip_folder(tmp_path / "src", tmp_path / "up.zip")
    manager = world.client("manager")
    response = manager.post(
        f"/api/projects/{project.pk}/imports/",
        {"file": upload("up.zip", archive.read_bytes(), "application/zip"), "format": "coco", "status": "accepted",
         "label_map": json.dumps({"nut": "cat"})},
        format="multipart",
    )
    assert response.status_code == 202, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    stored = job.params["upload"]
    assert default_storage.exists(stored)
    job_execute(job_id=job.pk)
    job.refresh_from_db()
    assert job.state == "succeeded", job.error
    assert job.result["annotation_count"] == 4
    assert not default_storage.exists(stored)  # the upload is removed after the import
    assert world.client("annotator").post(f"/api/projects/{project.pk}/imports/", {}, format="multipart").status_code == 403

    response = manager.post(f"/api/projects/{project.pk}/exports/", {"format": "voc", "name": "first"}, format="json")
    assert response.status_code == 202, response.json()
    job_execute(job_id=response.json()["id"])
    listed = world.client("annotator").get(f"/api/projects/{project.pk}/exports/").json()
    assert [v["name"] for v in listed] == ["first"] and listed[0]["counts"]["annotations"] == 4
    download = world.client("reviewer").get(listed[0]["download_url"])
    assert download.status_code == 200
    body = b"".join(download.streaming_content)
    assert hashlib.sha256(body).hexdigest() == listed[0]["sha256"] == download["X-Checksum-SHA256"]
    assert world.client("outsider").get(listed[0]["download_url"]).status_code == 404
    bad = manager.post(f"/api/projects/{project.pk}/exports/", {"format": "voc", "predictions": True}, format="json")
    assert bad.status_code == 400


def test_api_exports_labelme_and_says_what_it_cannot_do(world, tmp_path: Path) -> None:
    _import(world.project, "coco", _synthetic_coco(tmp_path / "src"), status="accepted")
    manager = world.client("manager")
    response = manager.post(f"/api/projects/{world.project.pk}/exports/", {"format": "labelme", "include_images": True}, format="json")
    assert response.status_code == 202, response.json()
    job_execute(job_id=response.json()["id"])
    (listed,) = manager.get(f"/api/projects/{world.project.pk}/exports/").json()
    assert listed["format"] == "labelme" and listed["counts"] == {"images": 2, "annotations": 4, "per_label": {"cat": 0, "dog": 0, "nut": 2, "shell": 2}}
    with zipfile.ZipFile(io.BytesIO(b"".join(manager.get(listed["download_url"]).streaming_content))) as archive:
        assert {"labelme/a.json", "labelme/a.png", "labelme/b.json", "labelme/b.png", "manifest.json"} == set(archive.namelist())
    refused = manager.post(f"/api/projects/{world.project.pk}/exports/", {"format": "labelme", "predictions": True}, format="json")
    assert refused.status_code == 400 and "COCO" in refused.json()["detail"]
    unknown = manager.post(f"/api/projects/{world.project.pk}/exports/", {"format": "labelme3"}, format="json")
    assert unknown.status_code == 400 and "labelme" in json.dumps(unknown.json())


@needs_samples
def test_management_commands_import_and_export(transactional_db, tmp_path: Path) -> None:
    out = io.StringIO()
    call_command("import_dataset", "--project", "Fruits", "--format", "coco", "--status", "accepted",
                 str(FRUITS / "trainval.json"), stdout=out)
    assert "18 images, 165 annotations" in out.getvalue()
    zip_path = tmp_path / "fruits.zip"
    call_command("export_dataset", "--project", "Fruits", "--format", "coco", "--out", str(zip_path), stdout=out)
    with zipfile.ZipFile(zip_path) as archive:
        data = json.loads(archive.read("annotations/instances_default.json"))
    assert len(data["images"]) == 18 and len(data["annotations"]) == 165
    call_command("export_dataset", "--project", "Fruits", "--format", "voc", "--out", str(tmp_path / "v.zip"),
                 "--status", "all", stdout=out)
    assert DatasetVersion.objects.filter(project__name="Fruits").count() == 2


def test_datasets_and_import_pages(world, client, tmp_path: Path) -> None:
    _import(world.project, "coco", _synthetic_coco(tmp_path / "src"), status="accepted")
    version = dataset_export(project=world.project, options=ExportOptions.from_dict({"format": "coco"}), name="release-1")
    client.force_login(world.users["annotator"])
    page = client.get(f"/projects/{world.project.pk}/datasets/")
    assert page.status_code == 200
    assert b"release-1" in page.content and f"/api/datasets/{version.pk}/download/".encode() in page.content
    assert b'id="dataset-form"' not in page.content  # only managers export
    assert client.get(f"/projects/{world.project.pk}/import/").status_code == 403
    client.force_login(world.users["manager"])
    form = client.get(f"/projects/{world.project.pk}/datasets/").content.decode()
    assert 'id="dataset-form"' in form
    assert all(f'<option value="{fmt}">' in form for fmt in ("coco", "voc", "labelme"))
    assert client.get(f"/projects/{world.project.pk}/import/").status_code == 200


# --------------------------------------------------------------------------------------------
# flat export names
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_exports_use_flat_unique_stable_names_and_keep_the_original_path(tmp_path: Path) -> None:
    from annotator.images.services import images_add

    project = ProjectFactory(name="nested")
    sources = [
        ("e2e.zip/photos/000000404249.png", lambda: png_bytes(40, 30, color=(10, 20, 30))),
        ("e2e.zip/more/000000404249.png", lambda: png_bytes(40, 30, color=(40, 50, 60))),
        ("e2e.zip/photos/street.png", lambda: png_bytes(40, 30, color=(70, 80, 90))),
    ]
    images = images_add(project=project, sources=sources).created
    _accept_all(project)
    twins = sorted(image.pk for image in images if "404249" in image.original_name)

    voc = _export(project, tmp_path / "voc", format="voc", include_images=True)
    xml = sorted(p.name for p in (voc / "Annotations").glob("*.xml"))  # what VOC readers glob
    assert xml == sorted([f"000000404249_{twins[0]}.xml", f"000000404249_{twins[1]}.xml", "street.xml"])
    assert sorted(p.name for p in (voc / "JPEGImages").iterdir()) == [name.replace(".xml", ".png") for name in xml]
    assert not [p for p in (voc / "Annotations").rglob("*") if p.is_dir()]

    coco = json.loads((_export(project, tmp_path / "coco", format="coco") / "annotations" / "instances_default.json").read_text())
    names = {entry["file_name"]: entry.get("original_name") for entry in coco["images"]}
    assert names["street.png"] == "e2e.zip/photos/street.png"
    assert all("/" not in name for name in names)
    # the same image keeps its name whichever images an export selects
    subset = _export(project, tmp_path / "subset", format="voc", labels=None)
    assert sorted(p.name for p in (subset / "Annotations").glob("*.xml")) == xml
