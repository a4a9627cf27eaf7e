"""Benchmark of the drawing assists: box→mask quality (IoU) and latency on real photos, plus 1-megapixel timings.

Quality: for every ground-truth object of the fruits_nuts dataset (18 real 800x600 photos, 165
objects), its COCO box is given to ``box_to_mask`` and the result is compared with the object's
polygon mask; the plain box (what a user gets without the assist) is the baseline. Latency is
measured on one core, as one interactive request would run in a web worker.

Run:  .venv/bin/python bench/assist.py [--dataset /work/shared/datasets/fruits_nuts] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_utils

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.assist import box_to_mask, scissors_path  # noqa: E402

DEFAULT_DATASET = Path("/work/shared/datasets/fruits_nuts")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def box_mask(box: list[float], height: int, width: int) -> np.ndarray:
    x, y, w, h = box
    out = np.zeros((height, width), bool)
    out[int(np.floor(y)) : int(np.ceil(y + h)), int(np.floor(x)) : int(np.ceil(x + w))] = True
    return out


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench_dataset(root: Path) -> dict[str, float]:
    coco = json.loads((root / "trainval.json").read_text())
    by_image: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    mask_ious, box_ious, times = [], [], []
    for image_info in coco["images"]:
        bgr = cv2.imread(str(root / "images" / image_info["file_name"]), cv2.IMREAD_COLOR)
        image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        height, width = image.shape[:2]
        for ann in by_image.get(image_info["id"], []):
            rles = mask_utils.frPyObjects(ann["segmentation"], height, width)
            truth = mask_utils.decode(mask_utils.merge(rles)).astype(bool)
            started = time.perf_counter()
            predicted = box_to_mask(image, ann["bbox"])
            times.append((time.perf_counter() - started) * 1000)
            mask_ious.append(iou(predicted, truth))
            box_ious.append(iou(box_mask(ann["bbox"], height, width), truth))
    return {
        "objects": len(mask_ious),
        "grabcut_iou": statistics.mean(mask_ious),
        "grabcut_iou_median": statistics.median(mask_ious),
        "grabcut_iou_over_0.8": sum(v > 0.8 for v in mask_ious) / len(mask_ious),
        "box_iou": statistics.mean(box_ious),
        "box_iou_over_0.8": sum(v > 0.8 for v in box_ious) / len(box_ious),
        "median_ms": statistics.median(times),
        "p95_ms": percentile(times, 95),
    }


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
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    # One core, as for one interactive request in a web worker.
    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

    results = bench_dataset(args.dataset)
    image, truth = megapixel_image()
    big_box = [195.0, 195.0, 610.0, 610.0]
    small_box = [760.0, 780.0, 120.0, 90.0]
    big = timed(lambda: box_to_mask(image, big_box), args.repeat)
    small = timed(lambda: box_to_mask(image, small_box), args.repeat)
    big_iou = iou(box_to_mask(image, big_box), truth)
    angles = np.linspace(0, 2 * np.pi, 9)[:-1]
    clicks = [[500 + 300 * np.cos(a) + 3, 500 + 300 * np.sin(a) - 2] for a in angles]
    scissors = timed(lambda: scissors_path(image, clicks, closed=True), args.repeat)
    path = np.asarray(scissors_path(image, clicks, closed=True))
    path_error = float(np.abs(np.hypot(path[:, 0] - 500, path[:, 1] - 500) - 300).mean())

    print(f"box->mask on {args.dataset.name}: {results['objects']} objects, single core")
    print(f"{'method':<28}{'mean IoU':>10}{'median IoU':>12}{'IoU>0.8':>10}{'median ms':>11}{'p95 ms':>9}")
    print(
        f"{'GrabCut box_to_mask':<28}{results['grabcut_iou']:>10.3f}{results['grabcut_iou_median']:>12.3f}"
        f"{results['grabcut_iou_over_0.8']:>10.0%}{results['median_ms']:>11.1f}{results['p95_ms']:>9.1f}"
    )
    print(f"{'plain box as mask':<28}{results['box_iou']:>10.3f}{'':>12}{results['box_iou_over_0.8']:>10.0%}{'-':>11}{'-':>9}")
    print()
    print("1-megapixel image (1000x1000), single core")
    print(f"{'case':<40}{'median ms':>11}{'p95 ms':>9}{'quality':>22}")
    print(f"{'box_to_mask, 610x610 box':<40}{statistics.median(big):>11.1f}{percentile(big, 95):>9.1f}{f'IoU {big_iou:.3f}':>22}")
    print(f"{'box_to_mask, 120x90 box':<40}{statistics.median(small):>11.1f}{percentile(small, 95):>9.1f}{'':>22}")
    print(
        f"{'scissors_path, 8 clicks, closed (r=300)':<40}{statistics.median(scissors):>11.1f}"
        f"{percentile(scissors, 95):>9.1f}{f'edge error {path_error:.2f} px':>22}"
    )


if __name__ == "__main__":
    main()
