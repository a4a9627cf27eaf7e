"""Tests for the drawing assists: GrabCut box→mask and intelligent scissors (SAM: test_sam.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ml.assist import AssistError, box_of_mask, box_to_mask, measure_box_engines, scissors_path
from ml.synthetic import generate_dataset, generate_sample


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def tight_box(mask: np.ndarray, pad: int = 2) -> list[int]:
    """A box a person would drag: the object's extent plus a couple of pixels, clipped to the image."""
    ys, xs = np.nonzero(mask)
    height, width = mask.shape
    x0, y0 = max(0, xs.min() - pad), max(0, ys.min() - pad)
    x1, y1 = min(width, xs.max() + 1 + pad), min(height, ys.max() + 1 + pad)
    return [int(x0), int(y0), int(x1 - x0), int(y1 - y0)]


def box_as_mask(box: list[int], shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, bool)
    x, y, w, h = box
    out[y : y + h, x : x + w] = True
    return out


def single_object(seed: int, shape: str) -> tuple[np.ndarray, np.ndarray]:
    sample = generate_sample(seed, size=160, classes=[shape], objects=(1, 1))
    assert len(sample.objects) == 1
    return sample.image, sample.objects[0][1]


@pytest.mark.parametrize("shape", ["disc", "rectangle"])
def test_box_to_mask_recovers_solid_shapes_better_than_the_box(shape: str) -> None:
    for seed in range(5):
        image, truth = single_object(seed, shape)
        box = tight_box(truth)
        mask = box_to_mask(image, box)
        assert mask.shape == truth.shape and mask.dtype == bool
        assert iou(mask, truth) > 0.8
        assert iou(mask, truth) > iou(box_as_mask(box, truth.shape), truth)


def test_box_to_mask_on_triangles_beats_the_box_on_average() -> None:
    # GrabCut can miss on one image whose object colour matches the background, so judge the mean.
    mask_ious, box_ious = [], []
    for seed in range(8):
        image, truth = single_object(seed, "triangle")
        box = tight_box(truth)
        mask_ious.append(iou(box_to_mask(image, box), truth))
        box_ious.append(iou(box_as_mask(box, truth.shape), truth))
    assert np.mean(mask_ious) > 0.85
    assert np.mean(mask_ious) > np.mean(box_ious) + 0.3


def test_background_scribble_in_a_hole_cuts_the_hole_out() -> None:
    image, ring = single_object(0, "ring")
    box = tight_box(ring)
    plain = box_to_mask(image, box)
    ys, xs = np.nonzero(ring)
    cx, cy = float(xs.mean()), float(ys.mean())  # a ring's centre lies in its hole
    assert not ring[int(cy), int(cx)]
    radius = 0.12 * (ys.max() - ys.min())
    stroke = [[cx, cy]] + [[cx + radius * np.cos(a), cy + radius * np.sin(a)] for a in np.linspace(0, 2 * np.pi, 6)]
    scribbled = box_to_mask(image, box, background=stroke)
    assert iou(scribbled, ring) > iou(plain, ring)
    assert iou(scribbled, ring) > 0.9
    assert not scribbled[int(cy), int(cx)]


def test_scribbles_keep_or_improve_the_result() -> None:
    for seed in range(5):
        image, truth = single_object(seed, "disc")
        box = tight_box(truth, pad=6)
        plain = box_to_mask(image, box)
        # Scribble well inside the object, the way a person strokes through it.
        core = cv2.erode(truth.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        ys, xs = np.nonzero(core)
        inside = [[float(x) + 0.5, float(y) + 0.5] for x, y in zip(xs[::97], ys[::97])]
        corner = [[box[0] + 1.0, box[1] + 1.0]]  # a corner of the box around a disc is background
        scribbled = box_to_mask(image, box, foreground=inside, background=corner)
        assert iou(scribbled, truth) >= iou(plain, truth) - 0.01
        assert all(scribbled[int(y), int(x)] for x, y in inside)


def _textured(height: int, width: int, colour: tuple[int, int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 12, (height, width, 3)) + np.array(colour)).clip(0, 255).astype(np.uint8)


def test_a_small_object_gets_a_mask_much_closer_than_its_box() -> None:
    # A 12-pixel object on texture: the mask must come back at the right place and size.
    image = _textured(120, 160, (90, 110, 90), seed=1)
    truth = np.zeros((120, 160), np.uint8)
    cv2.fillPoly(truth, [np.array([[70, 50], [82, 50], [76, 62]], np.int32)], 1)
    truth = truth.astype(bool)
    image[truth] = _textured(120, 160, (200, 60, 50), seed=2)[truth]
    box = tight_box(truth, pad=1)
    mask = box_to_mask(image, box)
    assert iou(mask, truth) > 0.75
    assert iou(mask, truth) > iou(box_as_mask(box, truth.shape), truth) + 0.2


def test_when_grabcut_takes_the_box_corners_the_ellipse_in_the_box_is_returned() -> None:
    # Clutter: the object has the surroundings' colour, and something else fills the box's corners.
    # GrabCut learns "object = not like the margin" and picks the corners; the ellipse is the better guess.
    image = _textured(160, 200, (120, 120, 120), seed=3)
    box = [60, 40, 80, 70]
    ys, xs = np.mgrid[0:160, 0:200]
    r2 = ((xs + 0.5 - 100) / 40) ** 2 + ((ys + 0.5 - 75) / 35) ** 2
    in_box = (xs >= 60) & (xs < 140) & (ys >= 40) & (ys < 110)
    corners = in_box & (r2 > 1)
    image[corners] = _textured(160, 200, (30, 160, 40), seed=4)[corners]
    truth = r2 <= 1
    without_prior = box_to_mask(image, box, shape_prior=False)
    assert iou(without_prior, truth) < 0.3
    assert iou(box_to_mask(image, box), truth) > 0.9
    # A click is the user's own evidence: then GrabCut's answer stands.
    clicked = box_to_mask(image, box, foreground=[[62, 42]])
    assert clicked[42, 62]


def test_box_to_mask_on_a_uniform_image_falls_back_to_the_box() -> None:
    image = np.full((50, 60, 3), 128, np.uint8)
    mask = box_to_mask(image, [10, 10, 20, 15])
    assert mask.any()
    # Whatever GrabCut decides on a featureless image, nothing may leak far outside the box.
    ys, xs = np.nonzero(mask)
    assert xs.min() >= 10 - 1 and xs.max() <= 30 and ys.min() >= 10 - 1 and ys.max() <= 25


def test_box_covering_the_whole_image_still_works() -> None:
    image, truth = single_object(3, "disc")
    mask = box_to_mask(image, [0, 0, image.shape[1], image.shape[0]])
    assert mask.shape == truth.shape and mask.any()


def test_box_to_mask_rejects_bad_boxes() -> None:
    image = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(AssistError):
        box_to_mask(image, [5, 5, 0, 4])
    with pytest.raises(AssistError):
        box_to_mask(image, [50, 50, 4, 4])
    with pytest.raises(AssistError):
        box_to_mask(np.zeros((20, 20), np.uint8), [1, 1, 5, 5])


def big_disc_image(size: int = 1000, radius: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.normal(120, 20, (size, size, 3)).clip(0, 255).astype(np.uint8)
    mask = np.zeros((size, size), np.uint8)
    cv2.circle(mask, (size // 2, size // 2), radius, 1, thickness=-1)
    inside = mask.astype(bool)
    image[inside] = (image[inside] * 0.3 + np.array([200, 40, 40]) * 0.7).astype(np.uint8)
    return image, inside


def test_scissors_follow_a_strong_edge_on_a_megapixel_image() -> None:
    image, _ = big_disc_image()
    angles = np.linspace(0, 2 * np.pi, 9)[:-1]
    # Clicks a few pixels off the edge, as a hurried person would place them.
    clicks = [[500 + 300 * np.cos(a) + 3, 500 + 300 * np.sin(a) - 2] for a in angles]
    path = np.array(scissors_path(image, clicks, closed=True))
    distance = np.abs(np.hypot(path[:, 0] - 500, path[:, 1] - 500) - 300)
    assert distance.mean() < 1.5
    assert distance.max() < 6
    # The closed path goes all the way round: it covers every direction from the centre.
    directions = np.degrees(np.arctan2(path[:, 1] - 500, path[:, 0] - 500)).astype(int)
    assert len(set((directions // 10).tolist())) == 36
    assert path.tolist()[0] != path.tolist()[-1]  # rings are stored open


def test_scissors_open_path_runs_from_first_to_last_click() -> None:
    image, _ = big_disc_image(400, 120)
    clicks = [[200 + 120, 200], [200, 200 + 120], [200 - 120, 200]]
    path = scissors_path(image, clicks)
    assert np.hypot(path[0][0] - clicks[0][0], path[0][1] - clicks[0][1]) < 2
    assert np.hypot(path[-1][0] - clicks[-1][0], path[-1][1] - clicks[-1][1]) < 2


def test_scissors_reject_points_outside_the_image() -> None:
    image = np.zeros((30, 30, 3), np.uint8)
    with pytest.raises(AssistError):
        scissors_path(image, [[1, 1], [40, 2]])
    with pytest.raises(AssistError):
        scissors_path(image, [[1, 1]])


def test_measuring_box_engines_scores_each_against_the_true_masks_and_the_plain_box() -> None:
    samples = generate_dataset(4, seed=5, size=160, classes=["disc"], objects=(1, 2))
    objects = sum(len(s.objects) for s in samples)
    scores = measure_box_engines(samples, {
        "grabcut": lambda image, box, _label: box_to_mask(image, box),
        "refuses": lambda image, box, _label: box_to_mask(image, [box[0], box[1], 0, box[3]]),  # an AssistError each time
    })
    assert set(scores) == {"box", "grabcut", "refuses"}
    assert all(s["objects"] == objects for s in scores.values())
    # A disc fills pi/4 of its tight box (less where it is cut by the image border or overlapped).
    assert 0.6 < scores["box"]["mean_iou"] < 0.8
    assert scores["grabcut"]["mean_iou"] > scores["box"]["mean_iou"] + 0.1
    assert scores["refuses"] == {"mean_iou": 0.0, "objects": objects, "failed": objects}
    assert measure_box_engines(samples, {}, max_objects=1)["box"]["objects"] == 1
    assert measure_box_engines([], {"grabcut": box_to_mask})["grabcut"] == {"mean_iou": None, "objects": 0, "failed": 0}


def test_box_of_mask_is_the_tight_pixel_box() -> None:
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    assert box_of_mask(mask) == [3.0, 2.0, 6.0, 3.0]
