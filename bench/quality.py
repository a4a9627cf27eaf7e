"""Benchmark: ml.quality on one large image, next to the floor of rasterising the same objects.

score (one attempt against ground truth), agreement and merge of N versions, on a 4000 x 3000
image with --objects polygons (holes in every fifth) per version, each version the ground truth
jittered by a few pixels. The floor is rasterising every object of every version to RLE once
(ml.geometry), the part no comparison can skip.

    .venv/bin/python bench/quality.py [--objects 100] [--versions 3] [--repeat 3]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml import geometry as geo  # noqa: E402
from ml.quality import agreement, merge, score  # noqa: E402

W, H = 4000, 3000


def _objects(count: int, rng: random.Random, jitter: float) -> list[dict[str, Any]]:
    out = []
    grid = int(count**0.5) + 1
    for k in range(count):
        cx, cy = (k % grid + 0.5) * W / grid, (k // grid + 0.5) * H / grid
        r = min(W, H) / grid / 3
        ring = [[cx + r * dx + rng.uniform(-jitter, jitter), cy + r * dy + rng.uniform(-jitter, jitter)]
                for dx, dy in ((-1, -1), (1, -1), (1.3, 0), (1, 1), (-1, 1), (-1.3, 0))]
        holes = [[[cx - r / 3, cy - r / 3], [cx + r / 3, cy - r / 3], [cx + r / 3, cy + r / 3], [cx - r / 3, cy + r / 3]]] if k % 5 == 0 else []
        out.append({"uid": f"o{k}", "label": k % 4, "geometry": {"type": "polygons", "polygons": [{"exterior": ring, "holes": holes}]}})
    return out


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(0)
    truth = _objects(args.objects, rng, 0)
    versions = [_objects(args.objects, rng, 4) for _ in range(args.versions)]

    def floor() -> None:
        for version in [truth, *versions]:
            for obj in version:
                geo.geometry_to_rle(obj["geometry"], width=W, height=H)

    rows = [
        ("rasterise all versions (floor)", _best(floor, args.repeat)),
        ("score: one attempt vs truth", _best(lambda: score(truth, versions[0], W, H), args.repeat)),
        (f"agreement of {args.versions} versions", _best(lambda: agreement(versions, W, H), args.repeat)),
        (f"merge of {args.versions} versions", _best(lambda: merge(versions, W, H), args.repeat)),
    ]
    print(f"{W}x{H} image, {args.objects} objects per version, {args.versions} versions (best of {args.repeat})")
    for name, seconds in rows:
        print(f"  {name:<34} {seconds * 1000:8.1f} ms")
    result = score(truth, versions[0], W, H)
    print(f"  check: f1 {result['f1']:.3f}, mean IoU {result['mean_iou']:.3f}, merged {len(merge(versions, W, H))} objects")


if __name__ == "__main__":
    main()
