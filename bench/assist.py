"""Benchmark of the drawing assists: box→mask quality (IoU) and latency on real photos, plus 1-megapixel timings.

Quality: for every non-crowd ground-truth object, its COCO box is given to each box→mask engine
and the result is compared with the object's mask, split by object size as COCO defines it
(small < 32², medium < 96², large). Baselines in the same run: the plain box (what a user gets
without the assist) and the ellipse inscribed in the box. Engines: GrabCut as it was (no
upsampling, no ellipse fallback); GrabCut as shipped (the ellipse in the box when GrabCut's mask
hardly overlaps it); that plus small boxes upsampled to a 64-pixel short side (an option, off by
default); SAM too where its package and checkpoint are configured (ANNOTATOR_SAM_CHECKPOINT).

Datasets: fruits_nuts (objects apart on a plain background; flatters every method) and
coco_tinycoco (real cluttered COCO photos, half the objects small), each split reported
separately: the ellipse-fallback threshold was chosen on coco train2017, so val2017 is the
held-out number. Latency is measured on one core, as one interactive request in a web worker.

The learned shape (the box tool's "Learned shape" engine, ml.shape_prior) is learned from a
project's accepted masks, so it is measured held out: each dataset's images in 5 folds, every
fold segmented by a shape learned from the other four, next to the plain box, the ellipse and
GrabCut on the same objects (coco_tinycoco's two splits pooled). Measured (2 cores, one used):
coco_tinycoco 419 objects: box 0.552, ellipse 0.622, GrabCut 0.641, learned shape 0.701 (small
0.671, medium 0.729, large 0.730; 9 ms median a box; 0.698 with two marker grids a spacing, no
region means of the bank's prior, no hole filling and 400 pixels an object; 0.688 before the
region-averaged and guided-filtered priors and the texture ratios); fruits_nuts 165 objects:
ellipse 0.783, GrabCut 0.905, learned shape 0.915 (0.907 before). On a 1-megapixel image a 610x610
box takes about 110 ms. Then the Datumaro samples that have polygons or masks (COCO instances, VOC
SegmentationObject, LabelMe XML, CVAT XML; 9 tiny synthetic images, 14 objects) with the learned
shape learned from both sets above: box 0.915, ellipse 0.914, GrabCut 0.929, learned shape 0.808
(masks of 1 to 239 pixels: a check that every engine runs there, not a measure of quality; the
drop from 0.908 is one 1x2-pixel box on a uniform 10x5 image, stored three times, now answered
with one of its two pixels).

The project's own model (the box tool's "Project model" engine) needs training first:
--project-model-epochs N trains the small architecture on half of fruits_nuts and measures its mask
head on the other half, next to GrabCut and the plain box, as a training job does after each round.
Measured (2 shared cores, 30 epochs at 320 px, 9 training images, 89 held-out objects): plain box
0.685, GrabCut 0.902 (176 ms), project model 0.852 (102 ms): on fruits_nuts' plain background
GrabCut stays the better engine, which is what the measurement after training is for.

Run:  .venv/bin/python bench/assist.py [--datasets /work/shared/datasets] [--repeat 5] [--project-model-epochs 30] [--only-shape]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.assist import AssistUnavailable, box_to_mask, measure_box_engines, scissors_path  # noqa: E402
from ml.geometry import coco_geometry, geometry_to_mask  # noqa: E402
from ml.sam import SamAssist  # noqa: E402

DEFAULT_DATASETS = Path("/work/shared/datasets")
#: (name, annotation file, image folders) under the datasets folder.
SETS = [
    ("fruits_nuts", "fruits_nuts/trainval.json", ["fruits_nuts/images"]),
    ("coco_tinycoco train2017", "coco_tinycoco/annotations/instances_train2017.json", ["coco_tinycoco/images/train2017", "coco_tinycoco/images/val2017"]),
    ("coco_tinycoco val2017", "coco_tinycoco/annotations/instances_val2017.json", ["coco_tinycoco/images/val2017", "coco_tinycoco/images/train2017"]),
]
SIZES = ("small", "medium", "large")

Engine = Callable[[np.ndarray, list[float]], np.ndarray]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def box_mask(box: list[float], height: int, width: int) -> np.ndarray:
    x, y, w, h = box
    out = np.zeros((height, width), bool)
    out[int(np.floor(y)) : int(np.ceil(y + h)), int(np.floor(x)) : int(np.ceil(x + w))] = True
    return out


def ellipse_mask(box: list[float], height: int, width: int) -> np.ndarray:
    x, y, w, h = box
    cols = ((np.arange(width) + 0.5 - (x + w / 2)) / (w / 2)) ** 2
    rows = ((np.arange(height) + 0.5 - (y + h / 2)) / (h / 2)) ** 2
    return rows[:, None] + cols[None, :] <= 1


def true_mask(segmentation: object, width: int, height: int) -> np.ndarray:
    """A COCO segmentation (polygons or RLE) as the bool mask pycocotools rasterises, through ml.geometry."""
    return geometry_to_mask(coco_geometry(segmentation), width=width, height=height)


def size_class(area: float) -> str:
    return "small" if area < 32**2 else "medium" if area < 96**2 else "large"


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def engines() -> dict[str, Engine]:
    out: dict[str, Engine] = {
        "plain box": lambda image, box: box_mask(box, *image.shape[:2]),
        "ellipse in the box": lambda image, box: ellipse_mask(box, *image.shape[:2]),
        "GrabCut (before)": lambda image, box: box_to_mask(image, box, min_side=0, shape_prior=False),
        "GrabCut + ellipse fallback": lambda image, box: box_to_mask(image, box),
        "  + small boxes upsampled": lambda image, box: box_to_mask(image, box, min_side=64),
    }
    checkpoint = os.environ.get("ANNOTATOR_SAM_CHECKPOINT")
    if checkpoint:
        probe = np.zeros((8, 8, 3), np.uint8)
        sam = SamAssist()
        try:
            sam.segment(probe, checkpoint=checkpoint, box=[1, 1, 4, 4])
            out["SAM"] = lambda image, box: sam.segment(image, checkpoint=checkpoint, box=box)[0].mask
        except AssistUnavailable as exc:
            print(f"SAM skipped: {exc}")
    return out


def objects(root: Path, ann_file: str, folders: list[str]):
    coco = json.loads((root / ann_file).read_text())
    by_image: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        if not ann.get("iscrowd"):
            by_image.setdefault(ann["image_id"], []).append(ann)
    for info in coco["images"]:
        path = next(root / f / info["file_name"] for f in folders if (root / f / info["file_name"]).exists())
        image = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        height, width = image.shape[:2]
        for ann in by_image.get(info["id"], []):
            truth = true_mask(ann["segmentation"], width, height)
            if truth.any():
                yield image, [float(v) for v in ann["bbox"]], truth, size_class(float(ann["area"]))


def bench_dataset(root: Path, ann_file: str, folders: list[str], methods: dict[str, Engine]):
    ious: dict[str, dict[str, list[float]]] = {name: {s: [] for s in SIZES} for name in methods}
    times: dict[str, list[float]] = {name: [] for name in methods}
    for image, box, truth, size in objects(root, ann_file, folders):
        for name, engine in methods.items():
            started = time.perf_counter()
            predicted = engine(image, box)
            times[name].append((time.perf_counter() - started) * 1000)
            ious[name][size].append(iou(predicted, truth))
    return ious, times


def print_table(title: str, ious, times) -> None:
    counts = {s: len(next(iter(ious.values()))[s]) for s in SIZES}
    print(f"\n{title}: {sum(counts.values())} objects ({', '.join(f'{counts[s]} {s}' for s in SIZES)}), single core")
    print(f"{'method':<28}{'mean IoU':>9}{'median':>8}{'>0.8':>6}{'small':>7}{'medium':>8}{'large':>7}{'med ms':>8}{'p95 ms':>8}")
    for name, by_size in ious.items():
        values = [v for s in SIZES for v in by_size[s]]
        parts = [f"{statistics.mean(by_size[s]):>{w}.3f}" if by_size[s] else f"{'-':>{w}}" for s, w in zip(SIZES, (7, 8, 7))]
        print(
            f"{name:<28}{statistics.mean(values):>9.3f}{statistics.median(values):>8.3f}"
            f"{sum(v > 0.8 for v in values) / len(values):>6.0%}{''.join(parts)}"
            f"{statistics.median(times[name]):>8.1f}{percentile(times[name], 95):>8.1f}"
        )


def project_model_table(root: Path, *, epochs: int, size: int) -> None:
    """The project's own model as a box assist, as the app measures it after a training round.

    fruits_nuts stands in for a project: the small CPU architecture is trained from scratch on
    every other image (its "accepted images"), then GrabCut, the model's mask head on the true box
    (with the true class) and the plain box are scored on the other images with
    ml.assist.measure_box_engines, the function the training job uses.
    """
    import tempfile

    from ml.models import TrainingSample
    from ml.models.maskrcnn import MaskRCNNSegmenter, TrainConfig, train

    coco = json.loads((root / "fruits_nuts/trainval.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    samples = []
    for info in coco["images"]:
        image = cv2.cvtColor(cv2.imread(str(root / "fruits_nuts/images" / info["file_name"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        height, width = image.shape[:2]
        found = []
        for ann in coco["annotations"]:
            if ann["image_id"] == info["id"] and not ann.get("iscrowd"):
                found.append((names[ann["category_id"]], true_mask(ann["segmentation"], width, height)))
        samples.append(TrainingSample(image=image, objects=found))
    trained_on, held_out = samples[0::2], samples[1::2]
    classes = sorted(set(names.values()))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig(arch="small", class_names=classes, epochs=epochs, batch_size=2, held_out=0.0,
                             model_kwargs={"min_size": size, "max_size": round(size * 5 / 3)})
        fit = train(trained_on, config=config, output_path=Path(folder) / "project.pt")
        segmenter = MaskRCNNSegmenter.from_checkpoint(fit.checkpoint_path)
    train_seconds = time.perf_counter() - started
    times: dict[str, list[float]] = {"grabcut": [], "project model": []}

    def timed_engine(name: str, engine: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        def run(image: np.ndarray, box: list[float], label: str | None) -> np.ndarray:
            begun = time.perf_counter()
            out = engine(image, box, label)
            times[name].append((time.perf_counter() - begun) * 1000)
            return out
        return run

    scores = measure_box_engines(held_out, {
        "grabcut": timed_engine("grabcut", lambda image, box, _label: box_to_mask(image, box)),
        "project model": timed_engine("project model", lambda image, box, label: segmenter.segment_box(image, box, label=label)[0]),
    }, max_objects=10**6)
    count = scores["box"]["objects"]
    print(f"\nfruits_nuts, project model: small arch trained from scratch on {len(trained_on)} images "
          f"({epochs} epochs at {size} px, {train_seconds:.0f} s), {count} objects on the other {len(held_out)} images, single core")
    print(f"{'engine (tight true box)':<28}{'mean IoU':>9}{'med ms':>8}")
    for name in ("box", "grabcut", "project model"):
        ms = f"{statistics.median(times[name]):>8.1f}" if times.get(name) else f"{'-':>8}"
        print(f"{name:<28}{scores[name]['mean_iou']:>9.3f}{ms}")


#: The learned shape's data sets: (title, [(annotation file, image folders)]) pooled by image.
SHAPE_SETS = [
    ("fruits_nuts", [SETS[0][1:]]),
    ("coco_tinycoco, both splits", [SETS[1][1:], SETS[2][1:]]),
]
FOLDS = 5


def _labelled_images(root: Path, parts: list[tuple[str, list[str]]]):
    """(image, [(label, COCO box, true mask, size class)]) of every image with a non-crowd object."""
    for ann_file, folders in parts:
        coco = json.loads((root / ann_file).read_text())
        names = {c["id"]: c["name"] for c in coco["categories"]}
        by_image: dict[int, list[dict]] = {}
        for ann in coco["annotations"]:
            if not ann.get("iscrowd"):
                by_image.setdefault(ann["image_id"], []).append(ann)
        for info in coco["images"]:
            if info["id"] not in by_image:
                continue
            path = next(root / f / info["file_name"] for f in folders if (root / f / info["file_name"]).exists())
            image = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            height, width = image.shape[:2]
            found = [(names[a["category_id"]], [float(v) for v in a["bbox"]], true_mask(a["segmentation"], width, height),
                      size_class(float(a["area"]))) for a in by_image[info["id"]]]
            yield image, [f for f in found if f[2].any()]


def shape_prior_table(root: Path) -> None:
    """The learned shape (ml.shape_prior, the box tool's "Learned shape") held out: the images are
    split into FOLDS folds; each fold is segmented by a prior learned from the other folds' masks
    (as a project learns from its accepted images), with the true class, next to the baselines
    on the same objects. Nothing an object is measured on was learned from its own image."""
    from ml.models import TrainingSample
    from ml.shape_prior import ShapePrior

    last: ShapePrior | None = None
    everything: list[TrainingSample] = []
    for title, parts in SHAPE_SETS:
        images = list(_labelled_images(root, parts))
        everything += [TrainingSample(image=image, objects=[(label, truth) for label, _, truth, _ in found]) for image, found in images]
        methods: dict[str, Callable[..., np.ndarray]] = {
            "plain box": lambda image, box, _label: box_mask(box, *image.shape[:2]),
            "ellipse in the box": lambda image, box, _label: ellipse_mask(box, *image.shape[:2]),
            "GrabCut + ellipse fallback": lambda image, box, _label: box_to_mask(image, box),
        }
        ious: dict[str, dict[str, list[float]]] = {name: {s: [] for s in SIZES} for name in [*methods, "learned shape"]}
        times: dict[str, list[float]] = {name: [] for name in ious}
        for fold in range(FOLDS):
            learned = ShapePrior.fit([
                TrainingSample(image=image, objects=[(label, truth) for label, _, truth, _ in found])
                for index, (image, found) in enumerate(images) if index % FOLDS != fold
            ])
            engines = {**methods, "learned shape": learned.segment}
            for index, (image, found) in enumerate(images):
                if index % FOLDS != fold:
                    continue
                for label, box, truth, size in found:
                    for name, engine in engines.items():
                        started = time.perf_counter()
                        predicted = engine(image, box, label)
                        times[name].append((time.perf_counter() - started) * 1000)
                        ious[name][size].append(iou(predicted, truth))
            last = learned
        print_table(f"{title}, learned shape held out ({FOLDS} folds by image, {len(images)} images)", ious, times)
    if last is not None:
        image, _ = megapixel_image()
        for box in ([195.0, 195.0, 610.0, 610.0], [300.0, 850.0, 20.0, 14.0]):
            spent = timed(lambda box=box: last.segment(image, box, None), 7)
            print(f"learned shape on a 1-megapixel image, {box[2]:.0f}x{box[3]:.0f} box: median {statistics.median(spent):.1f} ms,"
                  f" p95 {percentile(spent, 95):.1f} ms (single core)")
    if everything:
        datumaro_table(root, ShapePrior.fit(everything))


def _datumaro_objects(root: Path):
    """(sample name, image, [(label, true mask)]) of every Datumaro sample with polygons or masks.

    COCO instances and Pascal VOC through the app's own readers (ml.formats); LabelMe XML and
    CVAT XML, which the app does not import, by a few lines here (polygons only). Samples without
    object geometry (captions, labels, keypoints, boxes, a video's tracks) are left out.
    """
    import xml.etree.ElementTree as ElementTree

    from ml.formats import FormatError
    from ml.formats.coco import read_coco
    from ml.formats.voc import read_voc

    def rgb(path: Path) -> np.ndarray:
        return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    def polygon(points: list[tuple[float, float]], height: int, width: int) -> np.ndarray:
        ring = [[float(v) for xy in points for v in xy]]
        return true_mask(ring, width, height)

    datasets = []
    for path in sorted((root / "datumaro_coco").glob("*/**/instances_*.json")):
        subset = path.stem.removeprefix("instances_")
        images = next((f for f in (path.parent.parent / "images" / subset, path.parent.parent / subset) if f.is_dir()), None)
        datasets.append((str(path.relative_to(root)), lambda path=path, images=images: read_coco(path, images_dir=images)))
    for path in sorted((root / "datumaro_voc").glob("*/Annotations")):
        datasets.append((str(path.parent.relative_to(root)), lambda path=path: read_voc(path.parent)))
    for name, read in datasets:
        try:
            dataset = read()
        except FormatError as exc:
            print(f"{name}: skipped ({exc})")
            continue
        for info in dataset.images:
            if info.path is None or not info.path.exists():
                continue
            found = [(i.label, geometry_to_mask(i.geometry, width=info.width, height=info.height)) for i in info.instances
                     if not i.iscrowd and not i.attributes.get("bbox_only") and i.geometry.get("type") != "bbox"]
            found = [(label, mask) for label, mask in found if mask.any()]
            if found:
                yield f"{name}/{info.file_name}", rgb(info.path), found
    for xml in sorted((root / "datumaro_labelme/Annotations").glob("**/*.xml")):
        tree = ElementTree.parse(xml).getroot()
        image_path = root / "datumaro_labelme/Images" / tree.findtext("folder", "") / tree.findtext("filename", "")
        image = rgb(image_path)
        height, width = image.shape[:2]
        found = []
        for obj in tree.iter("object"):
            if obj.findtext("deleted", "0").strip() == "1":
                continue
            points = [(float(pt.findtext("x", "0")), float(pt.findtext("y", "0"))) for pt in obj.iterfind("polygon/pt")]
            if len(points) >= 3 and obj.findtext("type", "") != "bounding_box":
                found.append((obj.findtext("name", ""), polygon(points, height, width)))
            mask_name = obj.findtext("segm/mask")
            if mask_name:
                mask = cv2.imread(str(root / "datumaro_labelme/Masks" / tree.findtext("folder", "") / mask_name), cv2.IMREAD_GRAYSCALE)
                if mask is not None and mask.shape == (height, width):
                    found.append((obj.findtext("name", ""), mask > 0))
        found = [(label, mask) for label, mask in found if mask.any()]
        if found:
            yield str(xml.relative_to(root)), image, found
    for xml in sorted((root / "datumaro_cvat/for_images").glob("**/*.xml")):
        for node in ElementTree.parse(xml).getroot().iter("image"):
            candidates = [xml.parent / "images" / node.get("name", ""), *(xml.parent / "images").glob(f"*/{node.get('name', '')}")]
            subset = node.get("subset")
            if subset:
                candidates.insert(0, xml.parent / "images" / subset / node.get("name", ""))
            image_path = next((c for c in candidates if c.is_file()), None)
            if image_path is None:
                continue
            image = rgb(image_path)
            height, width = image.shape[:2]
            found = []
            for shape in node.iter("polygon"):
                points = [tuple(float(v) for v in xy.split(",")) for xy in shape.get("points", "").split(";") if xy]
                if len(points) >= 3:
                    found.append((shape.get("label", ""), polygon(points, height, width)))  # type: ignore[arg-type]
            found = [(label, mask) for label, mask in found if mask.any()]
            if found:
                yield f"{xml.relative_to(root)}:{node.get('name')}", image, found


def datumaro_table(root: Path, learned) -> None:  # type: ignore[no-untyped-def]
    """The box engines on the Datumaro samples (tiny synthetic images, a few objects each): too few
    to learn from, so the learned shape is the one learned from coco_tinycoco and fruits_nuts
    (held out by construction), answered without a label (theirs are not these samples')."""
    from ml.shape_prior import _tight_box

    methods: dict[str, Callable[..., np.ndarray]] = {
        "plain box": lambda image, box: box_mask(box, *image.shape[:2]),
        "ellipse in the box": lambda image, box: ellipse_mask(box, *image.shape[:2]),
        "GrabCut + ellipse fallback": lambda image, box: box_to_mask(image, box),
        "learned shape": lambda image, box: learned.segment(image, box, None),
    }
    ious: dict[str, dict[str, list[float]]] = {name: {s: [] for s in SIZES} for name in methods}
    times: dict[str, list[float]] = {name: [] for name in methods}
    samples = list(_datumaro_objects(root))
    if not samples:
        print("\nDatumaro samples: none with polygons or masks found")
        return
    for _, image, found in samples:
        for _, truth in found:
            box = _tight_box(truth)
            for name, engine in methods.items():
                started = time.perf_counter()
                predicted = engine(image, box)
                times[name].append((time.perf_counter() - started) * 1000)
                ious[name][size_class(float(truth.sum()))].append(iou(predicted, truth))
    print(f"\nDatumaro samples with polygons or masks: {', '.join(sorted({n.split('/')[0] for n, _, _ in samples}))}"
          f" ({len(samples)} images up to {max(max(i.shape[:2]) for _, i, _ in samples)} px)")
    print_table("Datumaro samples, tight box of each true mask", ious, times)


def megapixel_image() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.normal(120, 25, (1000, 1000, 3)).clip(0, 255).astype(np.uint8)
    truth = np.zeros((1000, 1000), np.uint8)
    cv2.circle(truth, (500, 500), 300, 1, thickness=-1)
    inside = truth.astype(bool)
    image[inside] = (image[inside] * 0.4 + np.array([190, 60, 40]) * 0.6).astype(np.uint8)
    return image, inside


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--project-model-epochs", type=int, default=0,
                        help="Also train a small project model on half of fruits_nuts for this many epochs and measure it as a box assist")
    parser.add_argument("--project-model-size", type=int, default=320, help="Shorter image side the project model works at")
    parser.add_argument("--only-project-model", action="store_true", help="Skip the other tables")
    parser.add_argument("--only-shape", action="store_true", help="Only the learned shape's held-out tables")
    args = parser.parse_args()

    # One core, as for one interactive request in a web worker.
    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

    if args.project_model_epochs:
        project_model_table(args.datasets, epochs=args.project_model_epochs, size=args.project_model_size)
        if args.only_project_model:
            return
    shape_prior_table(args.datasets)
    if args.only_shape:
        return
    methods = engines()
    pooled: dict[str, tuple[dict, dict]] = {}
    for title, ann_file, folders in SETS:
        ious, times = bench_dataset(args.datasets, ann_file, folders, methods)
        print_table(title, ious, times)
        if title.startswith("coco_tinycoco"):
            if "coco" not in pooled:
                pooled["coco"] = ({n: {s: [] for s in SIZES} for n in methods}, {n: [] for n in methods})
            for n in methods:
                for s in SIZES:
                    pooled["coco"][0][n][s] += ious[n][s]
                pooled["coco"][1][n] += times[n]
    if "coco" in pooled:
        print_table("coco_tinycoco, both splits", *pooled["coco"])
    image, truth = megapixel_image()
    big_box = [195.0, 195.0, 610.0, 610.0]
    small_box = [760.0, 780.0, 120.0, 90.0]
    big = timed(lambda: box_to_mask(image, big_box), args.repeat)
    small = timed(lambda: box_to_mask(image, small_box), args.repeat)
    tiny_box = [300.0, 850.0, 20.0, 14.0]
    tiny = timed(lambda: box_to_mask(image, tiny_box), args.repeat)
    tiny_up = timed(lambda: box_to_mask(image, tiny_box, min_side=64), args.repeat)
    big_iou = iou(box_to_mask(image, big_box), truth)
    angles = np.linspace(0, 2 * np.pi, 9)[:-1]
    clicks = [[500 + 300 * np.cos(a) + 3, 500 + 300 * np.sin(a) - 2] for a in angles]
    scissors = timed(lambda: scissors_path(image, clicks, closed=True), args.repeat)
    path = np.asarray(scissors_path(image, clicks, closed=True))
    path_error = float(np.abs(np.hypot(path[:, 0] - 500, path[:, 1] - 500) - 300).mean())

    print()
    print("1-megapixel image (1000x1000), single core")
    print(f"{'case':<40}{'median ms':>11}{'p95 ms':>9}{'quality':>22}")
    print(f"{'box_to_mask, 610x610 box':<40}{statistics.median(big):>11.1f}{percentile(big, 95):>9.1f}{f'IoU {big_iou:.3f}':>22}")
    print(f"{'box_to_mask, 120x90 box':<40}{statistics.median(small):>11.1f}{percentile(small, 95):>9.1f}{'':>22}")
    print(f"{'box_to_mask, 20x14 box':<40}{statistics.median(tiny):>11.1f}{percentile(tiny, 95):>9.1f}{'':>22}")
    print(f"{'box_to_mask, 20x14 box, min_side=64':<40}{statistics.median(tiny_up):>11.1f}{percentile(tiny_up, 95):>9.1f}{'':>22}")
    print(
        f"{'scissors_path, 8 clicks, closed (r=300)':<40}{statistics.median(scissors):>11.1f}"
        f"{percentile(scissors, 95):>9.1f}{f'edge error {path_error:.2f} px':>22}"
    )


if __name__ == "__main__":
    main()
