"""Benchmark: COCO export of 100,000 instances (polygons and RLE masks) over 5,000 images.

Builds the data in a database (a fresh SQLite file in a temporary data dir by default, or the
database of DATABASE_URL), then times our export service (datasets.services.dataset_export: rows
→ COCO JSON → zip → checksum → storage) next to a baseline that only computes the same bbox/area
with pycocotools and dumps the same JSON from memory. Peak memory is measured with tracemalloc
in separate runs (tracing slows Python down, so the timed runs are untraced), for the full
export and for a 1,000-image subset, to show that memory does not grow with the image count.

    .venv/bin/python bench/export.py [--images 5000] [--per-image 20] [--small 1000]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _setup_django() -> None:
    if not os.environ.get("DATABASE_URL"):
        os.environ.setdefault("ANNOTATOR_DATA_DIR", tempfile.mkdtemp(prefix="annotator-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")
    os.environ.setdefault("ANNOTATOR_HTTPS", "0")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _shapes(count: int, *, width: int, height: int, rle_fraction: float, seed: int = 0) -> list[dict[str, Any]]:
    """A pool of distinct geometries: star-shaped polygons (16–40 vertices) and disc/ellipse masks."""
    import numpy as np

    from ml import geometry as geo

    rng = np.random.default_rng(seed)
    pool = []
    yy, xx = np.mgrid[0:height, 0:width]
    for k in range(count):
        cx, cy = rng.uniform(60, width - 60), rng.uniform(60, height - 60)
        r = rng.uniform(15, 50)
        if k < count * rle_fraction:
            rx, ry = r, r * rng.uniform(0.5, 1.0)
            mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
            if k % 3 == 0:  # a hole: painted masks are where holes live
                mask &= ((xx - cx) / (rx / 3)) ** 2 + ((yy - cy) / (ry / 3)) ** 2 > 1
            geometry = {"type": "mask", "rle": geo.mask_to_rle(mask)}
        else:
            n = int(rng.integers(16, 41))
            angles = np.sort(rng.uniform(0, 2 * np.pi, n))
            radii = r * rng.uniform(0.6, 1.0, n)
            ring = np.round(np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1), 2).tolist()
            geometry = {"type": "polygons", "polygons": [{"exterior": ring, "holes": []}]}
        geometry = geo.validate_geometry(geometry, width=width, height=height)
        bbox, area = geo.bbox_and_area(geometry, width=width, height=height)
        pool.append({"geometry": geometry, "bbox": bbox, "area": area})
    return pool


def build(*, images: int, per_image: int, small: int, rle_fraction: float, width: int = 640, height: int = 480) -> Any:
    """A project with `images` images × `per_image` objects; the first `small` images accepted."""
    import uuid

    from django.utils import timezone

    from annotator.annotations.models import Annotation, GeometryKind
    from annotator.images.models import Image, ImageStatus
    from annotator.projects.models import Label, Project

    name = f"bench-export-{uuid.uuid4().hex[:6]}"
    project = Project.objects.create(name=name)
    labels = [Label.objects.create(project=project, name=n, color="#ff0000", order=k) for k, n in enumerate(["date", "fig", "hazelnut"])]
    pool = _shapes(1000, width=width, height=height, rle_fraction=rle_fraction)
    rows = [
        Image(project=project, file=f"bench/{k:06d}.jpg", original_name=f"photos/{k:06d}.jpg", width=width, height=height,
              checksum=f"{k:064x}", status=ImageStatus.ACCEPTED if k < small else ImageStatus.SUBMITTED)
        for k in range(images)
    ]
    Image.objects.bulk_create(rows, batch_size=2000)
    ids = list(Image.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    now = timezone.now()
    batch: list[Annotation] = []
    n = 0
    for image_id in ids:
        for z in range(per_image):
            shape = pool[(n * 7919) % len(pool)]  # a stride, so that kinds mix within an image
            geometry = shape["geometry"]
            is_mask = geometry["type"] == "mask"
            batch.append(Annotation(
                uid=uuid.uuid4(), image_id=image_id, label=labels[n % 3], kind=GeometryKind.MASK if is_mask else GeometryKind.POLYGONS,
                polygons=None if is_mask else geometry["polygons"], rle=geometry["rle"] if is_mask else None,
                bbox=shape["bbox"], area=shape["area"], z_order=z, source="manual", created_at=now, updated_at=now,
            ))
            n += 1
        if len(batch) >= 5000:
            Annotation.objects.bulk_create(batch)
            batch = []
    Annotation.objects.bulk_create(batch)
    return project


def baseline(project: Any, out: Path) -> Callable[[], int]:
    """The floor: the same annotations already in memory → pycocotools bbox/area → one json.dump."""
    from pycocotools import mask as mask_utils

    from annotator.annotations.models import Annotation
    from annotator.images.models import Image

    images = list(Image.objects.filter(project=project).order_by("id").values("id", "original_name", "width", "height"))
    anns = list(Annotation.objects.filter(image__project=project).order_by("image_id", "z_order", "id")
                .values_list("image_id", "label_id", "kind", "polygons", "rle"))
    label_ids = sorted({a[1] for a in anns})
    category = {pk: k + 1 for k, pk in enumerate(label_ids)}
    sizes = {i["id"]: (i["height"], i["width"]) for i in images}

    def run() -> int:
        annotations = []
        for k, (image_id, label_id, kind, polygons, rle) in enumerate(anns, start=1):
            h, w = sizes[image_id]
            if kind == "mask":
                encoded = {"size": rle["size"], "counts": rle["counts"].encode()}
                segmentation: Any = rle
            else:
                segmentation = [[c for point in part["exterior"] for c in point] for part in polygons]
                encoded = mask_utils.merge(mask_utils.frPyObjects(segmentation, h, w))
            annotations.append({
                "id": k, "image_id": image_id, "category_id": category[label_id], "segmentation": segmentation,
                "area": float(mask_utils.area(encoded)), "bbox": [float(v) for v in mask_utils.toBbox(encoded)], "iscrowd": 0,
            })
        document = {
            "images": [{"id": i["id"], "file_name": i["original_name"], "width": i["width"], "height": i["height"]} for i in images],
            "categories": [{"id": c, "name": str(pk)} for pk, c in category.items()],
            "annotations": annotations,
        }
        with open(out, "w") as fh:
            json.dump(document, fh, separators=(",", ":"))
        return len(annotations)

    return run


def ours(project: Any, status: str) -> Callable[[], Any]:
    from annotator.datasets.models import DatasetVersion
    from annotator.datasets.services import ExportOptions, dataset_export

    def run() -> Any:
        version = dataset_export(project=project, options=ExportOptions.from_dict({"format": "coco", "status": status}))
        counts = version.manifest["counts"]
        version.file.delete(save=False)
        DatasetVersion.objects.filter(pk=version.pk).delete()
        return counts

    return run


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def traced_peak(fn: Callable[[], Any]) -> tuple[float, float]:
    """Peak Python heap (MiB) above what was allocated before, and the maxrss growth (MiB)."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (peak - base) / 2**20, (rss_after - rss_before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--per-image", type=int, default=20)
    parser.add_argument("--small", type=int, default=1000, help="images of the small export (memory comparison)")
    parser.add_argument("--rle-fraction", type=float, default=0.3)
    args = parser.parse_args()
    _setup_django()
    from django.db import connection

    t0 = time.perf_counter()
    project = build(images=args.images, per_image=args.per_image, small=args.small, rle_fraction=args.rle_fraction)
    total = args.images * args.per_image
    print(f"database: {connection.vendor}; built {args.images} images × {args.per_image} = {total:,} instances "
          f"({args.rle_fraction:.0%} RLE masks, the rest polygons) in {time.perf_counter() - t0:.1f} s")

    with tempfile.TemporaryDirectory() as tmp:
        # Ours first: maxrss only ever grows, so the run with the smaller footprint must come first
        # for its RSS delta to mean anything.
        ours_time, counts = timed(ours(project, "all"))
        ours_peak_small, ours_rss_small = traced_peak(ours(project, "accepted"))
        ours_peak, ours_rss = traced_peak(ours(project, "all"))
        run_baseline = baseline(project, Path(tmp) / "baseline.json")
        base_time, base_count = timed(run_baseline)
        base_peak, base_rss = traced_peak(run_baseline)

    assert counts["annotations"] == base_count == total, (counts, base_count)
    print(f"{'':34}{'time (s)':>10}{'peak heap (MiB)':>18}{'maxrss growth (MiB)':>22}")
    print(f"{'baseline (pycocotools + json.dump)':34}{base_time:>10.2f}{base_peak:>18.1f}{base_rss:>22.1f}")
    print(f"{'our export job (COCO zip)':34}{ours_time:>10.2f}{ours_peak:>18.1f}{ours_rss:>22.1f}")
    print(f"time ratio ours/baseline: {ours_time / base_time:.2f}x; "
          f"throughput {total / ours_time:,.0f} instances/s")
    print(f"memory vs image count: {args.small} images → peak heap {ours_peak_small:.1f} MiB; "
          f"{args.images} images → {ours_peak:.1f} MiB (baseline holds everything: {base_peak:.1f} MiB)")


if __name__ == "__main__":
    main()
