"""Cost of geometry normalisation on a save, against the strict validation it replaced.

A save of 100 polygons x 50 vertices (the `bench/api_save.py` image) goes through
`ml.geometry.normalize_geometries`; before, it went through `validate_geometries`, which only
checked.  Both run here in the same process on the same data, interleaved, and the script prints
the median time of each and their ratio, for:
  - all 100 objects (the first save of an image, an import of one image);
  - one object (an autosave after one edit: unchanged objects are recognised by digest);
  - 100 objects of which 5 need a repair (a vertex in the margin, a self-crossing outline).
Usage: .venv/bin/python bench/normalize.py [--rounds 200]
"""
from __future__ import annotations

import argparse
import copy
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ml import geometry as geo  # noqa: E402

W = H = 1000


def polygon(cx: float, cy: float, radius: float, vertices: int = 50) -> list[list[float]]:
    return [[round(cx + radius * math.cos(2 * math.pi * k / vertices), 2),
             round(cy + radius * math.sin(2 * math.pi * k / vertices), 2)] for k in range(vertices)]


def image_set(count: int = 100) -> list[dict]:
    return [
        {"type": "polygons", "polygons": [{"exterior": polygon(50 + 90 * (k % 10), 50 + 90 * (k // 10), 40), "holes": []}]}
        for k in range(count)
    ]


def with_repairs(geometries: list[dict], broken: int = 5) -> list[dict]:
    out = copy.deepcopy(geometries)
    for k in range(broken):
        ring = out[k]["polygons"][0]["exterior"]
        if k % 2:
            ring[0], ring[1] = ring[1], ring[0]  # the outline crosses itself
        else:
            ring[0] = [ring[0][0], -3.0]  # a vertex in the margin
    return out


def median_ms(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    full = image_set()
    one = full[:1]
    broken = with_repairs(full)

    cases = [("100 objects", full), ("1 object (autosave)", one)]
    print(f"{'case':<32}{'validate (ms)':>15}{'normalize (ms)':>16}{'ratio':>8}")
    for name, geometries in cases:
        # interleave the two so that machine noise hits both alike
        v, n = [], []
        for _ in range(5):
            v.append(median_ms(lambda g=geometries: geo.validate_geometries(g, width=W, height=H), args.rounds // 5))
            n.append(median_ms(lambda g=geometries: geo.normalize_geometries(g, width=W, height=H, max_vertices=10_000), args.rounds // 5))
        vm, nm = statistics.median(v), statistics.median(n)
        print(f"{name:<32}{vm:>15.3f}{nm:>16.3f}{nm / vm:>8.2f}")
    repaired = median_ms(lambda: geo.normalize_geometries(broken, width=W, height=H, max_vertices=10_000), args.rounds)
    print(f"{'100 objects, 5 repaired':<32}{'(refused)':>15}{repaired:>16.3f}")


if __name__ == "__main__":
    main()
