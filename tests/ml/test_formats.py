"""Dataset readers and writers: the real samples, round trips, third-party readers, bad inputs."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import shutil
import stat
import tracemalloc
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml import geometry as geo
from ml.formats import (
    Dataset,
    DatasetImage,
    DatasetInstance,
    FormatError,
    detect_format,
    find_coco_images_dir,
    find_dataset_root,
    read_coco,
    read_labelme,
    read_voc,
    safe_extract,
    voc_colormap,
    write_coco,
    write_coco_results,
    write_labelme,
    write_voc,
)
from ml.formats.labelme import MaskShapes
from tests.datasets import DATASETS

FRUITS = DATASETS / "fruits_nuts"
DATUMARO_COCO = DATASETS / "datumaro_coco" / "coco_instances"
DATUMARO_VOC = DATASETS / "datumaro_voc"

pytestmark = pytest.mark.skipif(not DATASETS.is_dir(), reason="shared sample datasets not available")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def square(x: float, y: float, size: float) -> list[list[float]]:
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size]]


def polygons(*parts: dict) -> dict:
    return {"type": "polygons", "polygons": list(parts)}


def part(exterior: list[list[float]], *holes: list[list[float]]) -> dict:
    return {"exterior": exterior, "holes": list(holes)}


def synthetic_images() -> list[DatasetImage]:
    """Objects a lossy converter would break: holes, several parts, an island in a hole, a mask."""
    ring_with_hole = polygons(part(square(10, 10, 40), square(20, 20, 20)))
    two_parts = polygons(part(square(60, 10, 15)), part(square(60, 40, 15)))
    island = polygons(part(square(5, 60, 50), square(15, 70, 30)), part(square(25, 80, 10)))
    disc = np.zeros((120, 100), dtype=bool)
    yy, xx = np.mgrid[0:120, 0:100]
    disc[(yy - 100) ** 2 + (xx - 80) ** 2 < 12**2] = True
    mask = {"type": "mask", "rle": geo.mask_to_rle(disc)}
    return [
        DatasetImage(
            file_name="sub/one.jpg",
            width=100,
            height=120,
            source_id=7,
            instances=[
                DatasetInstance(label="ring", geometry=ring_with_hole, score=0.9),
                DatasetInstance(label="pair", geometry=two_parts, score=0.8),
                DatasetInstance(label="ring", geometry=island, score=0.7),
                DatasetInstance(label="blob", geometry=mask, score=0.6),
            ],
        ),
        DatasetImage(file_name="two.jpg", width=64, height=48, source_id=9, instances=[]),
    ]


def assert_same_instances(a: Dataset, b: Dataset, *, min_iou: float = 0.99) -> None:
    """Same images (by file name), same labels per image in order, masks with IoU >= min_iou."""
    by_name = {image.file_name: image for image in b.images}
    assert sorted(by_name) == sorted(image.file_name for image in a.images)
    for image in a.images:
        other = by_name[image.file_name]
        assert (other.width, other.height) == (image.width, image.height)
        assert [i.label for i in other.instances] == [i.label for i in image.instances]
        for mine, theirs in zip(image.instances, other.instances, strict=True):
            iou = geo.geometry_iou(mine.geometry, theirs.geometry, width=image.width, height=image.height)
            assert iou >= min_iou, f"{image.file_name}: {mine.label} IoU {iou:.4f}"


def jpeg_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 150)).save(buffer, format="JPEG")
    return buffer.getvalue()


def make_zip(path: Path, members: dict[str, bytes], *, symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


# --------------------------------------------------------------------------------------------
# Real samples
# --------------------------------------------------------------------------------------------


def test_fruits_nuts_coco_reads_all_images_and_instances() -> None:
    dataset = read_coco(FRUITS / "trainval.json", images_dir=FRUITS / "images")
    assert len(dataset.images) == 18
    assert dataset.instance_count == 165
    assert dataset.label_counts() == {"date": 71, "fig": 41, "hazelnut": 53}
    # image ids start at 0 and survive as source ids
    assert sorted(image.source_id for image in dataset.images) == list(range(18))
    assert all(image.path is not None and image.path.is_file() for image in dataset.images)
    assert all(inst.geometry["type"] == "polygons" and not inst.iscrowd for img in dataset.images for inst in img.instances)


def test_fruits_nuts_labelme_matches_coco_image_by_image() -> None:
    coco = read_coco(FRUITS / "trainval.json")
    labelme = read_labelme(FRUITS / "images")
    assert len(labelme.images) == 18
    assert labelme.instance_count == 165
    assert labelme.label_counts() == {"date": 71, "fig": 41, "hazelnut": 53}
    assert labelme.warnings == []
    by_name = {image.file_name: image for image in labelme.images}
    for image in coco.images:
        other = by_name[image.file_name]
        assert Counter(i.label for i in other.instances) == Counter(i.label for i in image.instances)
        # the same outlines: every COCO polygon has a LabelMe twin with the same mask
        for inst in image.instances:
            best = max(
                geo.geometry_iou(inst.geometry, o.geometry, width=image.width, height=image.height)
                for o in other.instances
            )
            assert best >= 0.99


def test_labelme_embedded_image_is_available_without_the_file(tmp_path: Path) -> None:
    shutil.copy(FRUITS / "images" / "3.json", tmp_path / "3.json")  # no 3.jpg next to it
    dataset = read_labelme(tmp_path)
    image = dataset.images[0]
    assert image.path is None
    data = image.read_bytes()
    assert data is not None
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (image.width, image.height) == (800, 600)


def test_datumaro_coco_bbox_only_annotation_becomes_flagged_box() -> None:
    path = DATUMARO_COCO / "annotations" / "instances_train.json"
    images_dir = find_coco_images_dir(path, ["a.jpg"])
    assert images_dir == DATUMARO_COCO / "images" / "train"
    dataset = read_coco(path, images_dir=images_dir)
    # category ids 1, 2, 4: labels in id order, no gap
    assert dataset.labels == ["a", "b", "c"]
    (image,) = dataset.images
    assert image.source_id == 5 and (image.width, image.height) == (10, 5)
    (inst,) = image.instances
    assert inst.label == "b"
    assert inst.attributes == {"bbox_only": True}
    assert geo.bbox_and_area(inst.geometry, width=10, height=5) == ([2.0, 2.0, 3.0, 1.0], 3.0)


def test_datumaro_coco_crowd_rle_and_attributes() -> None:
    dataset = read_coco(DATUMARO_COCO / "annotations" / "instances_val.json")
    (image,) = dataset.images
    assert image.source_id == 40
    polygon, crowd = image.instances
    assert polygon.attributes == {"x": 1, "y": "hello"} and not polygon.iscrowd
    assert crowd.iscrowd and crowd.label == "b"
    assert crowd.geometry["type"] == "mask"
    mask = geo.geometry_to_mask(crowd.geometry, width=5, height=10)
    # uncompressed counts [0, 20, 30], column-major: the first two columns are set
    assert mask.sum() == 20 and mask[:, :2].all() and not mask[:, 2:].any()


def test_voc_dataset1_rgb_object_mask_and_box_only_object() -> None:
    dataset = read_voc(DATUMARO_VOC / "voc_dataset1")
    assert dataset.labels == ["cat", "person"]
    assert [image.file_name for image in dataset.images] == ["2007_000001.jpg", "2007_000002.jpg"]
    first, second = dataset.images
    assert first.attributes == {"subset": "train"} and second.attributes == {"subset": "test"}
    assert second.instances == []
    cat, person = first.instances
    # the RGB (not palette) SegmentationObject PNG: colour (128, 0, 0) is object 1
    png = np.array(Image.open(DATUMARO_VOC / "voc_dataset1" / "SegmentationObject" / "2007_000001.png"))
    assert cat.geometry["type"] == "mask"
    expected = (png == (128, 0, 0)).all(axis=2)
    assert expected.any()
    assert (geo.geometry_to_mask(cat.geometry, width=20, height=10) == expected).all()
    assert cat.attributes["truncated"] is True
    # no pixels for object 2: its VOC box (1-based, inclusive) becomes the outline [3, 4]-[6, 7]
    assert person.attributes["bbox_only"] is True
    assert geo.bbox_and_area(person.geometry, width=20, height=10)[0] == [3.0, 4.0, 3.0, 3.0]


def test_voc_dataset2_without_sizes_or_images_is_a_clear_error() -> None:
    with pytest.raises(FormatError) as info:
        read_voc(DATUMARO_VOC / "voc_dataset2")
    assert info.value.file == "Annotations/@.xml"
    assert "no <size>" in str(info.value)


def test_voc_dataset2_with_images_uses_labelmap_order_and_colours(tmp_path: Path) -> None:
    root = tmp_path / "voc"
    shutil.copytree(DATUMARO_VOC / "voc_dataset2", root)
    (root / "JPEGImages").mkdir()
    for stem in "@abcd":
        (root / "JPEGImages" / f"{stem}.jpg").write_bytes(jpeg_bytes(16, 12))
    dataset = read_voc(root)
    assert len(dataset.images) == 5 and dataset.instance_count == 4
    assert dataset.labels[:4] == ["background", "aeroplane", "bicycle", "bird"]
    assert dataset.labels[-1] == "ignored"
    assert dataset.label_colors["bicycle"] == "#008000"
    empty = next(image for image in dataset.images if image.source_id == "@")
    assert empty.instances == [] and (empty.width, empty.height) == (16, 12)


def test_voc_dataset3_tolerates_comment_lines_in_image_sets() -> None:
    dataset = read_voc(DATUMARO_VOC / "voc_dataset3")
    (image,) = dataset.images
    assert image.attributes == {"subset": "train"}
    assert [i.label for i in image.instances] == ["cat"]


# --------------------------------------------------------------------------------------------
# COCO round trips and pycocotools
# --------------------------------------------------------------------------------------------


def test_coco_round_trip_of_fruits_nuts_keeps_every_instance(tmp_path: Path) -> None:
    original = read_coco(FRUITS / "trainval.json")
    out = tmp_path / "export.json"
    with open(out, "wb") as fh:
        stats = write_coco(original.images, labels=original.labels, out=fh)
    assert (stats.images, stats.annotations) == (18, 165)
    back = read_coco(out)
    assert back.labels == original.labels
    assert back.label_counts() == original.label_counts()
    assert_same_instances(original, back)


def test_coco_round_trip_keeps_holes_parts_and_masks(tmp_path: Path) -> None:
    images = synthetic_images()
    labels = ["ring", "pair", "blob"]
    out = tmp_path / "export.json"
    with open(out, "wb") as fh:
        write_coco(images, labels=labels, out=fh, use_source_ids=True)
    raw = json.loads(out.read_text())
    assert [c["id"] for c in raw["categories"]] == [1, 2, 3]
    assert [i["id"] for i in raw["images"]] == [7, 9]
    by_cat = [a for a in raw["annotations"]]
    # holes cannot be COCO polygons → RLE, but not crowd; separate parts stay two polygons
    assert isinstance(by_cat[0]["segmentation"], dict) and by_cat[0]["iscrowd"] == 0
    assert isinstance(by_cat[1]["segmentation"], list) and len(by_cat[1]["segmentation"]) == 2
    assert by_cat[0]["area"] == pytest.approx(40 * 40 - 20 * 20)
    back = read_coco(out)
    assert_same_instances(Dataset(labels=labels, images=images), back)
    ring = back.images[0].instances[0]
    hole = geo.geometry_to_mask(ring.geometry, width=100, height=120)[25:35, 25:35]
    assert not hole.any()
    assert len(back.images[0].instances[1].geometry["polygons"]) == 2


def test_write_coco_loads_in_pycocotools_and_results_evaluate_perfectly(tmp_path: Path) -> None:
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    dataset = read_coco(FRUITS / "trainval.json")
    gt_path, dt_path = tmp_path / "gt.json", tmp_path / "dt.json"
    with open(gt_path, "wb") as fh:
        write_coco(dataset.images, labels=dataset.labels, out=fh, use_source_ids=True)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
    assert len(gt.getImgIds()) == 18 and len(gt.getAnnIds()) == 165
    assert gt.getCatIds() == [1, 2, 3]
    for ann in gt.loadAnns(gt.getAnnIds()[:10]):  # annToMask must work on what we wrote
        assert gt.annToMask(ann).sum() > 0

    with open(dt_path, "wb") as fh:
        count = write_coco_results(dataset.images, labels=dataset.labels, out=fh)
    assert count == 165
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(str(dt_path))
        evaluator = COCOeval(gt, dt, iouType="segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)  # predictions == ground truth


def test_write_coco_results_scores_and_shifted_predictions_lower_map(tmp_path: Path) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    dataset = read_coco(FRUITS / "trainval.json")
    gt_path, dt_path = tmp_path / "gt.json", tmp_path / "dt.json"
    with open(gt_path, "wb") as fh:
        write_coco(dataset.images, labels=dataset.labels, out=fh, use_source_ids=True)
    shifted = []
    for image in dataset.images:
        moved = []
        for k, inst in enumerate(image.instances):
            parts = [part([[min(x + 25, 799), y] for x, y in p["exterior"]]) for p in inst.geometry["polygons"]]
            moved.append(DatasetInstance(label=inst.label, geometry=polygons(*parts), score=0.5 + k / 1000))
        shifted.append(DatasetImage(image.file_name, image.width, image.height, moved, source_id=image.source_id))
    with open(dt_path, "wb") as fh:
        write_coco_results(shifted, labels=dataset.labels, out=fh)
    assert json.loads(dt_path.read_text())[0]["score"] == pytest.approx(0.5)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        evaluator = COCOeval(gt, gt.loadRes(str(dt_path)), iouType="segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert 0.0 <= evaluator.stats[0] < 0.9


def test_write_coco_memory_does_not_grow_with_the_number_of_images() -> None:
    """A generator over many images must not be materialised (the export job streams from the DB)."""

    def generate(count: int) -> Iterator[DatasetImage]:
        for n in range(count):
            instances = [
                DatasetInstance(
                    label=("a", "b")[k % 2],
                    geometry=polygons(part([[5 + 10 * k, 5], [12 + 10 * k, 6], [14 + 10 * k, 30], [6 + 10 * k, 28]])),
                )
                for k in range(20)
            ]
            yield DatasetImage(f"img_{n:05d}.jpg", 256, 64, instances)

    def peak(count: int) -> tuple[int, int]:
        sink = _CountingSink()
        tracemalloc.start()
        try:
            write_coco(generate(count), labels=["a", "b"], out=sink)
            return tracemalloc.get_traced_memory()[1], sink.size
        finally:
            tracemalloc.stop()

    small_peak, _ = peak(100)
    large_peak, large_size = peak(1500)
    # 15x the images (30,000 annotations): the peak stays far below the output size and does not
    # grow with the count (only one image's objects and a copy buffer are held at a time).
    assert large_size > 4_000_000
    assert large_peak < large_size / 10, (large_peak, large_size)
    assert large_peak < 2 * small_peak, (small_peak, large_peak)


class _CountingSink(io.RawIOBase):
    """A binary file that only counts, so the test measures the writer and not the output buffer."""

    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.size += len(data)
        return len(data)


# --------------------------------------------------------------------------------------------
# VOC writer with torchvision's readers
# --------------------------------------------------------------------------------------------


def test_write_voc_is_read_by_torchvision_and_masks_match(tmp_path: Path) -> None:
    torchvision = pytest.importorskip("torchvision")
    images = synthetic_images()
    labels = ["ring", "pair", "blob"]
    archive_path = tmp_path / "voc.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        stats = write_voc(
            images,
            labels=labels,
            out=archive,
            image_bytes_for=lambda image: jpeg_bytes(image.width, image.height),
            prefix="VOCdevkit/VOC2012/",
        )
    assert (stats.images, stats.objects) == (2, 4)
    safe_extract(archive_path, tmp_path / "root")

    segmentation = torchvision.datasets.VOCSegmentation(str(tmp_path / "root"), year="2012", image_set="trainval")
    detection = torchvision.datasets.VOCDetection(str(tmp_path / "root"), year="2012", image_set="trainval")
    assert len(segmentation) == len(detection) == 2
    image, target = segmentation[0]
    assert image.size == (100, 120) and target.mode == "P"
    class_map = np.array(target)
    voc_root = tmp_path / "root" / "VOCdevkit" / "VOC2012"
    object_map = np.array(Image.open(voc_root / "SegmentationObject" / "sub" / "one.png"))
    # non-overlapping synthetic objects: object k is exactly instance k, class = label index + 1
    for k, inst in enumerate(images[0].instances, start=1):
        mask = geo.geometry_to_mask(inst.geometry, width=100, height=120)
        assert ((object_map == k) == mask).all()
        assert (class_map[mask] == labels.index(inst.label) + 1).all()
    assert (class_map[object_map == 0] == 0).all()
    palette = Image.open(voc_root / "SegmentationClass" / "sub" / "one.png").getpalette()
    assert palette[3:6] == [128, 0, 0]  # the VOC colour map, class 1

    _, annotation = detection[0]
    objects = annotation["annotation"]["object"]
    assert [o["name"] for o in objects] == ["ring", "pair", "ring", "blob"]
    # VOC boxes are 1-based inclusive pixel indices: [10, 50) in pixels → xmin 11, xmax 50
    assert objects[0]["bndbox"] == {"xmin": "11", "ymin": "11", "xmax": "50", "ymax": "50"}

    back = read_voc(voc_root)
    assert back.labels[:3] == labels
    assert_same_instances(Dataset(labels=labels, images=images), back)


def test_write_voc_later_object_wins_where_objects_overlap(tmp_path: Path) -> None:
    below = DatasetInstance(label="a", geometry=polygons(part(square(0, 0, 20))))
    above = DatasetInstance(label="b", geometry=polygons(part(square(10, 10, 20))))
    write_voc([DatasetImage("x.png", 40, 40, [below, above])], labels=["a", "b"], out=tmp_path)
    objects = np.array(Image.open(tmp_path / "SegmentationObject" / "x.png"))
    classes = np.array(Image.open(tmp_path / "SegmentationClass" / "x.png"))
    assert objects[15, 15] == 2 and classes[15, 15] == 2
    assert objects[5, 5] == 1 and classes[5, 5] == 1
    assert (tmp_path / "labelmap.txt").read_text().splitlines()[2] == "a:128,0,0::"
    assert voc_colormap()[2].tolist() == [0, 128, 0]


def test_write_coco_uses_precomputed_bbox_and_area_when_given() -> None:
    geometry = polygons(part(square(2, 3, 10)))
    bbox, area = geo.bbox_and_area(geometry, width=40, height=40)
    given = DatasetInstance(label="a", geometry=geometry, bbox=bbox, area=area)
    computed = DatasetInstance(label="a", geometry=geometry)
    out = io.BytesIO()
    write_coco([DatasetImage("x.png", 40, 40, [given, computed])], labels=["a"], out=out)
    first, second = json.loads(out.getvalue())["annotations"]
    assert first["bbox"] == second["bbox"] == [2.0, 3.0, 10.0, 10.0]
    assert first["area"] == second["area"] == 100.0


def test_write_voc_keeps_bbox_only_objects_out_of_the_masks(tmp_path: Path) -> None:
    # A box-only object above a drawn one must not claim the drawn object's pixels, and it must
    # come back as a box-only object (the Datumaro voc_dataset1 sample has exactly this).
    drawn = DatasetInstance(label="a", geometry=polygons(part(square(0, 0, 20))))
    boxed = DatasetInstance(label="b", geometry=polygons(part(square(10, 10, 20))), attributes={"bbox_only": True})
    write_voc([DatasetImage("x.png", 40, 40, [drawn, boxed])], labels=["a", "b"], out=tmp_path)
    objects = np.array(Image.open(tmp_path / "SegmentationObject" / "x.png"))
    assert objects[15, 15] == 1 and objects[25, 25] == 0
    back = read_voc(tmp_path).images[0].instances
    assert geo.geometry_iou(back[0].geometry, drawn.geometry, width=40, height=40) == 1.0
    assert back[1].attributes.get("bbox_only") is True
    assert geo.geometry_iou(back[1].geometry, boxed.geometry, width=40, height=40) == 1.0


# --------------------------------------------------------------------------------------------
# LabelMe group rule and writer
# --------------------------------------------------------------------------------------------


def labelme_file(folder: Path, shapes: list[dict], *, name: str = "img", size: tuple[int, int] = (100, 80)) -> Path:
    (folder / f"{name}.png").write_bytes(_png_bytes(np.zeros((size[1], size[0]), dtype=np.uint8)))
    doc = {"version": "5.2.1", "flags": {}, "shapes": shapes, "imagePath": f"{name}.png", "imageData": None,
           "imageHeight": size[1], "imageWidth": size[0]}  # fmt: skip
    path = folder / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def _png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def shape(label: str, points: list, shape_type: str = "polygon", group_id: int | None = None, **extra: object) -> dict:
    return {"label": label, "points": points, "shape_type": shape_type, "group_id": group_id, "flags": {}, **extra}


def test_labelme_group_rule_holes_parts_circles_masks(tmp_path: Path) -> None:
    crop = np.zeros((5, 6), dtype=np.uint8)
    crop[1:4, 1:5] = 1
    labelme_file(
        tmp_path,
        [
            shape("donut", square(10, 10, 40), group_id=1),
            shape("donut", square(20, 20, 10), group_id=1),  # inside the first → hole
            shape("pair", square(60, 5, 10), group_id=2),
            shape("pair", square(80, 5, 10), group_id=2),  # beside the first → second part
            shape("donut", square(60, 40, 10), group_id=2),  # same group id, other label → own object
            shape("coin", [[75, 60], [75, 70]], "circle"),
            shape("box", [[1, 70], [8, 75]], "rectangle"),
            shape("blob", [[40, 60], [45, 64]], "mask", mask=base64.b64encode(_png_bytes(crop * 255)).decode()),
            shape("edge", [[0, 0], [5, 5]], "line"),
        ],
    )
    dataset = read_labelme(tmp_path)
    (image,) = dataset.images
    assert [i.label for i in image.instances] == ["donut", "pair", "donut", "coin", "box", "blob"]
    assert dataset.labels == ["donut", "pair", "coin", "box", "blob"]
    donut, pair, _, coin, box, blob = image.instances
    assert len(donut.geometry["polygons"]) == 1 and len(donut.geometry["polygons"][0]["holes"]) == 1
    assert geo.bbox_and_area(donut.geometry, width=100, height=80)[1] == pytest.approx(1600 - 100)
    assert len(pair.geometry["polygons"]) == 2
    assert len(coin.geometry["polygons"][0]["exterior"]) == 64
    assert geo.bbox_and_area(coin.geometry, width=100, height=80)[1] == pytest.approx(math.pi * 100, rel=0.01)
    assert geo.bbox_and_area(box.geometry, width=100, height=80)[0] == [1.0, 70.0, 7.0, 5.0]
    mask = geo.geometry_to_mask(blob.geometry, width=100, height=80)
    assert mask.sum() == 12 and mask[61:64, 41:45].all()
    assert any("line" in w and "skipped" in w for w in dataset.warnings)


@pytest.mark.parametrize("masks", ["polygons", "mask"])
def test_labelme_round_trip_keeps_holes_parts_and_masks(tmp_path: Path, masks: MaskShapes) -> None:
    images = synthetic_images()
    assert write_labelme(images, out=tmp_path, masks=masks) == 2
    blob_shapes = [s for s in json.loads((tmp_path / "sub" / "one.json").read_text())["shapes"] if s["label"] == "blob"]
    assert {s["shape_type"] for s in blob_shapes} == {"polygon" if masks == "polygons" else "mask"}
    for image in images:  # the reader needs the pictures (or imageData)
        (tmp_path / image.file_name).write_bytes(jpeg_bytes(image.width, image.height))
    back = read_labelme(tmp_path)
    assert_same_instances(Dataset(labels=[], images=images), back, min_iou=1.0)  # traced along pixel edges: exact
    island = back.images[0].instances[2].geometry["polygons"]
    assert len(island) == 2 and len(island[0]["holes"]) == 1


def test_labelme_writes_a_box_only_object_as_a_rectangle(tmp_path: Path) -> None:
    boxed = DatasetInstance(label="b", geometry=polygons(part(square(10, 12, 20))), attributes={"bbox_only": True, "kind": "x"})
    write_labelme([DatasetImage("x.jpg", 40, 40, [boxed])], out=tmp_path)
    (shape,) = json.loads((tmp_path / "x.json").read_text())["shapes"]
    assert (shape["shape_type"], shape["points"], shape["flags"], shape["kind"]) == ("rectangle", [[10, 12], [30, 32]], {}, "x")
    (tmp_path / "x.jpg").write_bytes(jpeg_bytes(40, 40))
    (back,) = read_labelme(tmp_path).images[0].instances
    assert geo.geometry_iou(back.geometry, boxed.geometry, width=40, height=40) == 1.0


# --------------------------------------------------------------------------------------------
# Bad input: clear errors naming the file, nothing half-done
# --------------------------------------------------------------------------------------------


def test_truncated_coco_json_names_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "instances_train.json"
    path.write_bytes((FRUITS / "trainval.json").read_bytes()[:5000])
    with pytest.raises(FormatError) as info:
        read_coco(path)
    assert info.value.file == "instances_train.json"
    assert "invalid JSON at line" in str(info.value) and "column" in str(info.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["annotations"][3].update(image_id=999), "annotation 1003: unknown image_id 999"),
        (lambda d: d["annotations"][3].update(category_id=7), "annotation 1003: unknown category_id 7"),
        (lambda d: d["annotations"][3].update(segmentation=[[1, 1, 5, 5]]), "annotation 1003: the object has no area"),
        (lambda d: d["annotations"][3].update(segmentation=[[1, 1, 5, 5, float("nan"), 3]]), "annotation 1003: coordinates must be finite"),
        (lambda d: d["annotations"][3].update(segmentation={"size": [3, 3], "counts": [9]}), "annotation 1003: mask size 3x3"),
        (lambda d: d["images"][0].update(file_name="../../etc/passwd"), "image 0: file_name"),
        (lambda d: d["images"][0].update(width="wide"), "image 0: width and height"),
    ],
)
def test_broken_coco_content_is_reported_with_the_annotation(tmp_path: Path, change, message: str) -> None:
    data = json.loads((FRUITS / "trainval.json").read_text())
    data["annotations"][3]["id"] = 1003
    change(data)
    path = tmp_path / "trainval.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError) as info:
        read_coco(path)
    assert str(info.value).startswith(f"trainval.json: {message}")


def test_self_intersecting_polygon_is_repaired_and_reported(tmp_path: Path) -> None:
    data = json.loads((FRUITS / "trainval.json").read_text())
    data["annotations"][3].update(id=1003, segmentation=[[100, 100, 200, 200, 200, 100, 100, 150]])  # bow tie
    path = tmp_path / "trainval.json"
    path.write_text(json.dumps(data))
    dataset = read_coco(path)
    assert dataset.instance_count == 165
    assert [(r.file, r.object, r.changes) for r in dataset.repairs] == [("trainval.json", "annotation 1003", ("untangled",))]
    assert "crossed itself" in str(dataset.repairs[0])


def test_missing_images_are_reported_with_the_file(tmp_path: Path) -> None:
    with pytest.raises(FormatError) as info:
        read_coco(FRUITS / "trainval.json", images_dir=tmp_path)
    assert info.value.file == "trainval.json" and "'0.jpg' not found" in info.value.problem

    labelme = json.loads((FRUITS / "images" / "0.json").read_text())
    labelme.update(imageData=None, imagePath="../../../../etc/hostname")  # outside the folder: never read
    (tmp_path / "0.json").write_text(json.dumps(labelme))
    with pytest.raises(FormatError) as info:
        read_labelme(tmp_path)
    assert info.value.file == "0.json" and "points outside the dataset folder" in info.value.problem


def test_xml_bomb_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    entities = "".join(f'<!ENTITY lol{k} "{f"&lol{k - 1};" * 10}">' for k in range(1, 10))
    (root / "Annotations" / "bomb.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">{entities}]>'
        "<annotation><filename>&lol9;</filename></annotation>"
    )
    with pytest.raises(FormatError) as info:
        read_voc(root)
    assert info.value.file == "Annotations/bomb.xml" and "unsafe XML" in info.value.problem


def test_broken_voc_xml_names_line(tmp_path: Path) -> None:
    root = tmp_path / "voc"
    shutil.copytree(DATUMARO_VOC / "voc_dataset3", root)
    xml = root / "Annotations" / "2007_000001.xml"
    xml.write_text(xml.read_text()[:300])
    with pytest.raises(FormatError, match=r"Annotations/2007_000001.xml: invalid XML at line \d+"):
        read_voc(root)


@pytest.mark.parametrize(
    ("members", "symlinks", "problem"),
    [
        ({"ok.txt": b"x", "../evil.txt": b"x"}, None, "'..' in path"),
        ({"ok.txt": b"x", "a/../../evil.txt": b"x"}, None, "'..' in path"),
        ({"ok.txt": b"x", "/etc/evil.txt": b"x"}, None, "absolute path"),
        ({"ok.txt": b"x", "..\\evil.txt": b"x"}, None, "'..' in path"),
        ({"ok.txt": b"x"}, {"link": "/etc/passwd"}, "symbolic links"),
    ],
)
def test_zip_path_tricks_are_refused_and_nothing_is_written(tmp_path: Path, members, symlinks, problem) -> None:
    archive = make_zip(tmp_path / "upload.zip", members, symlinks=symlinks)
    dest = tmp_path / "dest"
    with pytest.raises(FormatError) as info:
        safe_extract(archive, dest)
    assert info.value.file == "upload.zip" and problem in info.value.problem
    assert not dest.exists() or list(dest.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_zip_bomb_limits(tmp_path: Path) -> None:
    many = make_zip(tmp_path / "many.zip", {f"f{k}.txt": b"x" for k in range(11)})
    with pytest.raises(FormatError, match="more than 10 files"):
        safe_extract(many, tmp_path / "a", max_files=10)
    big = make_zip(tmp_path / "big.zip", {"a.bin": b"\0" * 5000, "b.bin": b"\0" * 5000})
    with pytest.raises(FormatError, match="'b.bin': archive expands to more than 8000 bytes"):
        safe_extract(big, tmp_path / "b", max_total_bytes=8000)
    with zipfile.ZipFile(tmp_path / "ratio.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\0" * (4 * 1024 * 1024))
    with pytest.raises(FormatError, match="compression ratio"):
        safe_extract(tmp_path / "ratio.zip", tmp_path / "c")
    assert not any((tmp_path / d).exists() and any((tmp_path / d).iterdir()) for d in "abc")


def test_extracted_zip_with_top_folder_is_found_and_detected(tmp_path: Path) -> None:
    members = {"export/trainval.json": (FRUITS / "trainval.json").read_bytes()}
    members |= {f"export/images/{p.name}": p.read_bytes() for p in sorted((FRUITS / "images").glob("*.jpg"))}
    members["__MACOSX/._export"] = b""
    archive = make_zip(tmp_path / "upload.zip", members)
    files = safe_extract(archive, tmp_path / "x")
    assert len(files) == 20
    root = find_dataset_root(tmp_path / "x")
    assert root == (tmp_path / "x" / "export").resolve() or root == tmp_path / "x" / "export"
    assert detect_format(tmp_path / "x") == "coco"
    dataset = read_coco(root / "trainval.json", images_dir=find_coco_images_dir(root / "trainval.json", ["0.jpg"]))
    assert dataset.instance_count == 165
    assert detect_format(DATUMARO_VOC / "voc_dataset1") == "voc"
    assert detect_format(FRUITS / "images") == "labelme"
