"""Attributes in every format: COCO (`attributes` on the annotation), Pascal VOC (<attributes> as CVAT and
Datumaro write them), LabelMe (flags and extra shape keys); exported and imported back unchanged."""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from defusedxml import ElementTree

from annotator.annotations.models import Annotation
from annotator.annotations.services import annotations_replace
from annotator.datasets.services import ExportOptions, ImportOptions, dataset_import, export_write
from annotator.images.models import ImageStatus
from annotator.projects.models import Label
from ml.formats import DatasetImage, DatasetInstance, read_labelme, read_voc, write_labelme, write_voc
from tests.factories import LabelFactory, ProjectFactory, make_images, png_bytes, polygon_geometry, square

pytestmark = pytest.mark.django_db

SCHEMA = {
    "occluded": {"type": "boolean"},
    "colour": {"type": "string", "choices": ["red", "green"]},
    "parts": {"type": "string", "choices": ["wheel", "door", "roof"], "multiple": True},
    "count": {"type": "integer", "min": 0, "max": 10},
    "ratio": {"type": "number"},
    "note": {"type": "string"},
}
VALUES = {"occluded": True, "colour": "green", "parts": ["wheel", "roof"], "count": 3, "ratio": 0.5, "note": "behind, 2 m"}


def _project(name: str):  # type: ignore[no-untyped-def]
    project = ProjectFactory(name=name)
    LabelFactory(project=project, name="car", order=0, attributes_schema=SCHEMA)
    return project


@pytest.fixture
def source():  # type: ignore[no-untyped-def]
    project = _project("Source")
    image = make_images(project, 1, width=120, height=80)[0]
    label = Label.objects.get(project=project)
    annotations_replace(image=image, user=None, base_version=image.version, items=[
        {"label": label.pk, "geometry": polygon_geometry(square(10, 10, 40)), "attributes": VALUES},
        {"label": label.pk, "geometry": polygon_geometry(square(60, 20, 30)), "attributes": {"occluded": False, "colour": "red"}},
    ])
    image.status = ImageStatus.ACCEPTED
    image.save()
    return project


def _export(project, fmt: str, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    out = tmp_path / f"{fmt}.zip"
    with open(out, "wb") as fh:
        export_write(project=project, options=ExportOptions.from_dict({"format": fmt, "include_images": True}), out=fh)
    return out


def _import_into_new_project(fmt: str, path: Path) -> dict[str, list[dict[str, Any]]]:
    target = _project(f"Target {fmt}")
    report = dataset_import(project=target, fmt=fmt, path=path, options=ImportOptions.from_dict({}), user=None)
    assert not report["warnings"], report["warnings"]
    rows = Annotation.objects.filter(image__project=target).order_by("bbox")
    return {"attributes": [row.attributes for row in rows]}


def _by_area(attributes: list[dict]) -> list[dict]:
    return sorted(attributes, key=lambda a: a.get("colour", ""))


def test_coco_keeps_attributes_on_the_annotation_and_imports_them_back(source, tmp_path):
    exported = _export(source, "coco", tmp_path)
    with zipfile.ZipFile(exported) as archive:
        coco = json.loads(next(archive.read(n) for n in archive.namelist() if n.endswith(".json")))
    assert _by_area([a["attributes"] for a in coco["annotations"]]) == _by_area([VALUES, {"occluded": False, "colour": "red"}])
    back = _import_into_new_project("coco", exported)
    assert _by_area(back["attributes"]) == _by_area([VALUES, {"occluded": False, "colour": "red"}])


def test_voc_writes_attributes_as_cvat_and_datumaro_do_and_reads_them_back(source, tmp_path):
    exported = _export(source, "voc", tmp_path)
    with zipfile.ZipFile(exported) as archive:
        xml = next(archive.read(n) for n in archive.namelist() if n.startswith("Annotations/") or "/Annotations/" in n)
    objects = ElementTree.fromstring(xml).findall("object")
    first = next(o for o in objects if o.findtext("attributes/attribute[name='colour']/value") == "green")
    assert first.findtext("occluded") == "1"  # VOC's own tag
    written = {a.findtext("name"): a.findtext("value") for a in first.findall("attributes/attribute")}
    assert written == {"colour": "green", "parts": '["wheel", "roof"]', "count": "3", "ratio": "0.5", "note": "behind, 2 m"}
    back = _import_into_new_project("voc", exported)
    expected = [{**VALUES}, {"occluded": False, "colour": "red"}]
    # VOC always writes truncated/difficult (0): they come back as false flags.
    got = [{k: v for k, v in a.items() if k not in ("truncated", "difficult")} for a in back["attributes"]]
    assert _by_area(got) == _by_area(expected)


def test_voc_attributes_written_by_datumaro_as_text_fit_the_label_schema(tmp_path):
    """Datumaro writes str(value): "True", "3"; the label's schema turns them back into a flag and a number."""
    root = tmp_path / "voc"
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / folder).mkdir(parents=True)
    (root / "JPEGImages" / "a.png").write_bytes(png_bytes(64, 48))
    (root / "Annotations" / "a.xml").write_text(
        "<annotation><filename>a.png</filename><size><width>64</width><height>48</height><depth>3</depth></size>"
        "<object><name>car</name><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>30</xmax><ymax>30</ymax></bndbox>"
        "<attributes><attribute><name>occluded</name><value>True</value></attribute>"
        "<attribute><name>count</name><value>3</value></attribute>"
        "<attribute><name>note</name><value>12</value></attribute>"
        "<attribute><name>parts</name><value>wheel,door</value></attribute>"
        "<attribute><name>colour</name><value>purple</value></attribute></attributes></object></annotation>"
    )
    (root / "ImageSets" / "Main" / "train.txt").write_text("a\n")
    target = _project("Datumaro")
    archive = shutil.make_archive(str(tmp_path / "voc"), "zip", root)
    report = dataset_import(project=target, fmt="voc", path=Path(archive), options=ImportOptions.from_dict({}), user=None)
    row = Annotation.objects.get(image__project=target)
    assert {k: row.attributes[k] for k in ("occluded", "count", "note", "parts")} == {"occluded": True, "count": 3, "note": "12", "parts": ["wheel", "door"]}
    assert "colour" not in row.attributes
    assert any("colour" in w and "left out" in w for w in report["warnings"])


def test_labelme_keeps_flags_and_extra_keys(tmp_path):
    image = DatasetImage(file_name="a.png", width=64, height=48, instances=[
        DatasetInstance(label="car", geometry=polygon_geometry(square(5, 5, 20)), attributes=VALUES),
    ])
    write_labelme([image], out=tmp_path)
    shape = json.loads((tmp_path / "a.json").read_text())["shapes"][0]
    assert shape["flags"] == {"occluded": True}
    assert {k: shape[k] for k in ("colour", "parts", "count", "ratio", "note")} == {k: VALUES[k] for k in ("colour", "parts", "count", "ratio", "note")}
    (tmp_path / "a.png").write_bytes(png_bytes(64, 48))
    (inst,) = read_labelme(tmp_path).images[0].instances
    assert inst.attributes == VALUES


def test_labelme_attributes_import_into_the_project(tmp_path):
    folder = tmp_path / "lm"
    folder.mkdir()
    (folder / "a.png").write_bytes(png_bytes(64, 48))
    shape = {"label": "car", "points": square(5, 5, 20), "shape_type": "polygon", "group_id": None,
             "flags": {"occluded": False}, "description": "", "colour": "red", "count": "4"}
    (folder / "a.json").write_text(json.dumps({"version": "5.4.1", "flags": {}, "shapes": [shape], "imagePath": "a.png",
                                               "imageData": None, "imageHeight": 48, "imageWidth": 64}))
    archive = shutil.make_archive(str(tmp_path / "lm"), "zip", folder)
    target = _project("LabelMe")
    dataset_import(project=target, fmt="labelme", path=Path(archive), options=ImportOptions.from_dict({}), user=None)
    assert Annotation.objects.get(image__project=target).attributes == {"occluded": False, "colour": "red", "count": 4}


def test_voc_reader_reads_attributes_without_a_schema(tmp_path):
    """Without a schema (a project that creates its labels on import), values keep their plain types."""
    image = DatasetImage(file_name="b.png", width=64, height=48, instances=[
        DatasetInstance(label="car", geometry=polygon_geometry(square(5, 5, 20)), attributes={"count": 2, "tags": ["x"], "ok": False}),
    ])
    write_voc([image], labels=["car"], out=tmp_path)
    (inst,) = read_voc(tmp_path).images[0].instances
    assert {k: inst.attributes[k] for k in ("count", "tags", "ok")} == {"count": 2, "tags": ["x"], "ok": False}
