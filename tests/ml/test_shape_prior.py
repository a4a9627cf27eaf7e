"""The learned shape prior: it learns shapes from accepted masks and uses them on boxes it has not seen."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ml.geometry import mask_iou
from ml.models import TrainingSample
from ml.shape_prior import ShapePrior, ShapePriorError, _main_part_filled


def _disc_scene(seed: int, *, clutter: bool) -> TrainingSample:
    """Discs of one colour family on a background that, with clutter, shares the discs' colours."""
    rng = np.random.default_rng(seed)
    image = rng.normal(110, 20, (160, 200, 3)).clip(0, 255).astype(np.uint8)
    if clutter:
        for _ in range(12):
            x, y = (int(v) for v in rng.integers(0, 190, 2))
            cv2.rectangle(image, (x, y), (x + 18, y + 10), (190, 70, 50), thickness=-1)
    objects = []
    for cx in (40, 100, 160):
        mask = np.zeros((160, 200), np.uint8)
        cv2.circle(mask, (cx, 80), int(rng.integers(14, 22)), 1, thickness=-1)
        inside = mask.astype(bool)
        image[inside] = (image[inside] * 0.5 + np.array([190, 70, 50]) * 0.5).astype(np.uint8)
        objects.append(("disc", inside))
    return TrainingSample(image=image, objects=objects)


def _box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()), float(ys.max() + 1 - ys.min())]


def test_a_prior_learned_from_discs_draws_a_disc_in_a_box_on_a_blank_image() -> None:
    prior = ShapePrior.fit([_disc_scene(seed, clutter=False) for seed in range(4)])
    blank = np.full((120, 120, 3), 128, np.uint8)
    disc = np.zeros((120, 120), np.uint8)
    cv2.circle(disc, (60, 60), 30, 1, thickness=-1)
    mask = prior.segment(blank, _box(disc.astype(bool)), "disc")
    square = np.zeros_like(mask)
    square[30:91, 30:91] = True
    assert mask_iou(mask, disc.astype(bool)) > 0.85
    assert mask_iou(mask, disc.astype(bool)) > mask_iou(square, disc.astype(bool)) + 0.05


def test_on_held_out_cluttered_images_it_beats_the_plain_box() -> None:
    prior = ShapePrior.fit([_disc_scene(seed, clutter=True) for seed in range(5)])
    learned, plain = [], []
    for seed in (10, 11, 12):
        sample = _disc_scene(seed, clutter=True)
        for label, truth in sample.objects:
            box = _box(truth)
            x, y, w, h = (int(v) for v in box)
            square = np.zeros_like(truth)
            square[y : y + h, x : x + w] = True
            learned.append(mask_iou(prior.segment(sample.image, box, label), truth))
            plain.append(mask_iou(square, truth))
    assert np.mean(learned) > np.mean(plain) + 0.1


def test_a_saved_prior_loads_and_answers_the_same(tmp_path: Path) -> None:
    samples = [_disc_scene(seed, clutter=True) for seed in range(3)]
    prior = ShapePrior.fit(samples)
    prior.save(tmp_path / "prior.npz")
    loaded = ShapePrior.load(tmp_path / "prior.npz")
    box = _box(samples[0].objects[0][1])
    assert loaded.objects == prior.objects == 9
    assert np.array_equal(loaded.segment(samples[0].image, box, "disc"), prior.segment(samples[0].image, box, "disc"))


def test_a_label_with_few_masks_leans_on_the_class_agnostic_shape() -> None:
    samples = [_disc_scene(seed, clutter=False) for seed in range(4)]
    square = np.zeros((160, 200), bool)
    square[10:40, 10:40] = True
    samples[0].objects.append(("tile", square))
    prior = ShapePrior.fit(samples)
    box = [10.0, 10.0, 30.0, 30.0]
    tile, disc = prior.prior("tile", box), prior.prior("disc", box)
    # One tile mask against a dozen discs: the tile's prior is mostly disc, a little fuller in the corners.
    assert tile[0, 0] > disc[0, 0] and tile[0, 0] < 0.5


def test_a_prior_needs_two_images_with_masks() -> None:
    with pytest.raises(ShapePriorError):
        ShapePrior.fit([_disc_scene(0, clutter=False)])


def test_a_large_project_fits_its_weights_on_a_subset_and_keeps_every_shape(monkeypatch) -> None:
    """Past MAX_FIT_IMAGES the weights come from that many images (read again one at a time), the
    mean shapes from all of them; each image is read at most twice, its masks never held."""
    import ml.shape_prior as shape_prior

    monkeypatch.setattr(shape_prior, "MAX_FIT_IMAGES", 3)
    scenes = [_disc_scene(seed, clutter=False) for seed in range(8)]
    reads: list[int] = []

    class Counted(list):
        def __getitem__(self, index):  # type: ignore[no-untyped-def]
            reads.append(index)
            return super().__getitem__(index)

        def __iter__(self):  # type: ignore[no-untyped-def]
            return (self[i] for i in range(len(self)))

    prior = ShapePrior.fit(Counted(scenes))
    assert prior.objects == 24
    assert len(reads) == 8 + 3 and max(reads.count(i) for i in range(8)) <= 2
    disc = np.zeros((120, 120), np.uint8)
    cv2.circle(disc, (60, 60), 30, 1, thickness=-1)
    assert mask_iou(prior.segment(np.full((120, 120, 3), 128, np.uint8), _box(disc.astype(bool)), "disc"), disc.astype(bool)) > 0.8


def test_the_expected_iou_choice_beats_a_half_threshold_on_an_uncertain_object() -> None:
    """An object whose pixels are each only 40% likely: a 0.5 threshold answers nothing (IoU 0),
    the expected-IoU choice takes the likely pixels and scores far better on average."""
    from ml.shape_prior import expected_iou_mask

    rng = np.random.default_rng(0)
    probability = np.full((40, 40), 0.02)
    probability[10:30, 10:30] = 0.4
    chosen = expected_iou_mask(probability)
    assert chosen[10:30, 10:30].all() and not chosen[:10].any()
    draws = [rng.random(probability.shape) < probability for _ in range(50)]
    assert np.mean([mask_iou(chosen, truth) for truth in draws]) > np.mean([mask_iou(probability > 0.5, truth) for truth in draws]) + 0.2


def test_a_background_of_two_colours_is_told_apart_by_the_ring_sector_beside_each_pixel() -> None:
    """Green left of the object, blue right of it: against its own side of the ring, the
    background inside the box looks more like background than against the whole ring (where each
    colour is only half of it)."""
    from ml.shape_prior import _colour_ratio, _sector_ratio

    image = np.zeros((60, 60, 3), np.uint8)
    image[:, :30] = (40, 160, 40)
    image[:, 30:] = (40, 40, 160)
    image[20:40, 20:40] = (200, 60, 60)
    inside = np.zeros((60, 60), bool)
    inside[15:45, 15:45] = True
    rows, cols = np.mgrid[0:60, 0:60]
    angle = np.arctan2((rows + 0.5 - 15) / 30 - 0.5, (cols + 0.5 - 15) / 30 - 0.5)
    sector = ((angle + np.pi) / (2 * np.pi) * 8).astype(np.int32) % 8
    ratio = _sector_ratio(image, inside.astype(float), ~inside, sector, 8)
    whole = _colour_ratio(image, inside.astype(float), (~inside).astype(float), 8)
    assert ratio[30, 30] > 2 and whole[30, 30] > 2  # the object
    for row, col in ((30, 17), (30, 42)):  # each side's background, inside the box
        assert ratio[row, col] < whole[row, col] - 0.15


@pytest.mark.parametrize(("version", "weights"), [(1, 18), (2, 27), (3, 39)])
def test_a_prior_of_a_previous_format_is_refused_with_a_reason(tmp_path: Path, version: int, weights: int) -> None:
    path = tmp_path / "old.npz"
    np.savez_compressed(path, version=np.array(version), weights=np.zeros(weights), objects=np.array(3))
    with pytest.raises(ShapePriorError, match=f"format {version}"):
        ShapePrior.load(path)


def test_the_mask_is_its_largest_part_with_its_holes_filled() -> None:
    fg = np.zeros((40, 40), bool)
    fg[5:30, 5:30] = True
    fg[12:18, 12:18] = False  # a pit of background colour inside the object
    fg[35:38, 35:38] = True  # a speck of look-alike colour
    fg[5:30, 0:2] = True  # touching the crop's edge, apart from the object: a part, not a hole
    out = _main_part_filled(fg)
    expected = np.zeros((40, 40), bool)
    expected[5:30, 5:30] = True
    assert (out == expected).all()
    notch = expected.copy()
    notch[12:18, 0:18] = False  # open to the outside: a notch stays
    assert (_main_part_filled(notch) == notch).all()
