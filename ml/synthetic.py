"""Synthetic instance-segmentation data with exactly known masks, for tests, benchmarks and demos.

Each image shows a few shapes (discs, rotated rectangles, triangles and rings — shapes with a hole)
on a textured, noisy background. Later shapes occlude earlier ones, and the stored masks are the
*visible* parts, so occluded objects can end up in several parts. Everything is deterministic by
seed so a test or benchmark sees the same data on every run.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ml.models.base import TrainingSample

SHAPES: tuple[str, ...] = ("disc", "rectangle", "triangle", "ring")

# An object hidden below this share of its own area is not drawn at all: a sliver of a shape
# is not something a person (or a metric) should be expected to label.
_MIN_VISIBLE_SHARE = 0.5
_MIN_VISIBLE_PIXELS = 30


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Low-frequency colour blobs plus a gradient and pixel noise, so edges are not trivially the only texture."""
    coarse = rng.integers(40, 215, size=(max(2, height // 24), max(2, width // 24), 3)).astype(np.float32)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    gradient = (np.cos(angle) * xs / width + np.sin(angle) * ys / height) * rng.uniform(-40, 40)
    image += gradient[..., None]
    if rng.random() < 0.5:
        # Stripes: a periodic texture that produces many spurious edges for edge-following tools.
        period = rng.uniform(6, 20)
        stripes = 12 * np.sin(2 * np.pi * (xs * np.cos(angle) + ys * np.sin(angle)) / period)
        image += stripes[..., None]
    return image


def _shape_mask(rng: np.random.Generator, shape: str, height: int, width: int) -> np.ndarray:
    """Full (unoccluded) mask of one random shape, fully inside the image."""
    mask = np.zeros((height, width), np.uint8)
    short = min(height, width)
    radius = rng.uniform(0.09, 0.2) * short
    margin = int(np.ceil(radius)) + 1
    cx = rng.uniform(margin, width - margin)
    cy = rng.uniform(margin, height - margin)
    if shape == "disc":
        cv2.circle(mask, (round(cx), round(cy)), round(radius), 1, thickness=-1, lineType=cv2.LINE_8)
    elif shape == "ring":
        # A ring needs a visibly large hole, otherwise it is just a disc with a dot.
        outer = max(radius, 0.13 * short)
        cx = float(np.clip(cx, outer + 1, width - outer - 1))
        cy = float(np.clip(cy, outer + 1, height - outer - 1))
        cv2.circle(mask, (round(cx), round(cy)), round(outer), 1, thickness=-1)
        cv2.circle(mask, (round(cx), round(cy)), round(outer * rng.uniform(0.45, 0.6)), 0, thickness=-1)
    elif shape == "rectangle":
        w = rng.uniform(0.9, 1.8) * radius
        h = rng.uniform(0.9, 1.8) * radius
        corners = cv2.boxPoints(((cx, cy), (w * 1.4, h * 1.4), rng.uniform(0, 90)))
        corners[:, 0] = np.clip(corners[:, 0], 0, width - 1)
        corners[:, 1] = np.clip(corners[:, 1], 0, height - 1)
        cv2.fillPoly(mask, [np.round(corners).astype(np.int32)], 1)
    elif shape == "triangle":
        start = rng.uniform(0, 2 * np.pi)
        # Roughly equilateral, jittered: spread the vertices so the triangle is never degenerate.
        angles = start + np.array([0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.3, 0.3, 3)
        pts = np.stack([cx + 1.25 * radius * np.cos(angles), cy + 1.25 * radius * np.sin(angles)], axis=1)
        pts[:, 0] = np.clip(pts[:, 0], 0, width - 1)
        pts[:, 1] = np.clip(pts[:, 1], 0, height - 1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    return mask.astype(bool)


def _visible_masks(masks: list[np.ndarray]) -> list[np.ndarray]:
    """Visible part of each mask when later masks are painted on top of earlier ones."""
    if not masks:
        return []
    visible = []
    covered = np.zeros_like(masks[0])
    for mask in reversed(masks):
        visible.append(mask & ~covered)
        covered = covered | mask
    return visible[::-1]


def generate_sample(
    seed: int | np.random.Generator,
    *,
    size: int | tuple[int, int] = 128,
    classes: Sequence[str] = SHAPES,
    objects: tuple[int, int] = (1, 5),
    noise: float = 8.0,
) -> TrainingSample:
    """One synthetic image with 0..``objects[1]`` labelled shapes of the given ``classes``.

    ``size`` is the side of a square image or ``(height, width)``. ``noise`` is the standard
    deviation of the per-pixel Gaussian noise added at the end.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    height, width = (size, size) if isinstance(size, int) else size
    unknown = set(classes) - set(SHAPES)
    if unknown:
        raise ValueError(f"unknown shape classes {sorted(unknown)}; known: {', '.join(SHAPES)}")
    count = int(rng.integers(objects[0], objects[1] + 1))
    labels = [str(rng.choice(list(classes))) for _ in range(count)]
    full = [_shape_mask(rng, label, height, width) for label in labels]

    # Drop objects that would be mostly hidden, then recompute visibility: removing an occluder
    # only ever uncovers more of the objects below it, so one more pass is enough.
    keep = [
        i for i, vis in enumerate(_visible_masks(full))
        if vis.sum() >= max(_MIN_VISIBLE_PIXELS, _MIN_VISIBLE_SHARE * full[i].sum())
    ]
    labels = [labels[i] for i in keep]
    full = [full[i] for i in keep]
    visible = _visible_masks(full)

    image = _background(rng, height, width)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    for mask in full:
        colour = rng.uniform(20, 235, size=3).astype(np.float32)
        # Shading across the object so it is not a flat colour; the mask still decides membership.
        shade = (xs * rng.uniform(-0.4, 0.4) + ys * rng.uniform(-0.4, 0.4))
        image[mask] = colour + shade[mask][:, None]
    image += rng.normal(0, noise, size=image.shape).astype(np.float32)
    rgb = np.clip(image, 0, 255).astype(np.uint8)
    return TrainingSample(image=rgb, objects=list(zip(labels, visible)))


def generate_dataset(
    count: int,
    *,
    seed: int = 0,
    size: int | tuple[int, int] = 128,
    classes: Sequence[str] = SHAPES,
    objects: tuple[int, int] = (1, 5),
    noise: float = 8.0,
) -> list[TrainingSample]:
    """``count`` synthetic samples; sample ``i`` is the same for a given seed whatever ``count`` is."""
    children = np.random.SeedSequence(seed).spawn(count)
    samples = []
    for index, child in enumerate(children):
        sample = generate_sample(
            np.random.default_rng(child), size=size, classes=classes, objects=objects, noise=noise
        )
        sample.key = f"synthetic-{seed}-{index}"
        samples.append(sample)
    return samples
