"""Tests for ml.sam: SAM 1 and SAM 2.1 picked by the checkpoint's weights, prompts, candidates, the embedding cache."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.assist import AssistError, AssistUnavailable
from ml.sam import CacheStats, SamAssist, identify_checkpoint
from ml.synthetic import generate_sample
from tests.sam import TINY, TINY_SAM2

IMAGE = generate_sample(seed=3, size=(120, 160)).image


@pytest.fixture(params=["sam1", "sam2"])
def checkpoint(request, tiny_sam: Path, tiny_sam2: Path) -> Path:
    return tiny_sam if request.param == "sam1" else tiny_sam2


def test_the_family_and_variant_are_read_from_the_weights_not_the_file_name(tiny_sam, tiny_sam2, tmp_path) -> None:
    assert (identify_checkpoint(tiny_sam).family, identify_checkpoint(tiny_sam).variant) == ("sam1", TINY)
    assert (identify_checkpoint(tiny_sam2).family, identify_checkpoint(tiny_sam2).variant) == ("sam2", TINY_SAM2)
    # A SAM 2.1 file named like a SAM 1 one is still SAM 2.1.
    renamed = tmp_path / "sam_vit_h_4b8939.pth"
    renamed.write_bytes(tiny_sam2.read_bytes())
    assert identify_checkpoint(renamed).family == "sam2"


def test_a_checkpoint_in_torchs_old_file_format_is_read_too(tiny_sam, tmp_path) -> None:
    legacy = tmp_path / "legacy.pth"
    torch.save(torch.load(tiny_sam, weights_only=True), legacy, _use_new_zipfile_serialization=False)
    assert identify_checkpoint(legacy).variant == TINY
    assert SamAssist().segment(IMAGE, checkpoint=legacy, box=[20, 10, 80, 60])


def test_a_sam_2_0_checkpoint_is_not_taken_for_2_1(tiny_sam2, tmp_path) -> None:
    # SAM 2.0 weights lack the spatial no-object embedding; no 2.0 variant of this shape is known.
    state = torch.load(tiny_sam2, weights_only=True)["model"]
    del state["no_obj_embed_spatial"]
    older = tmp_path / "older.pt"
    torch.save({"model": state}, older)
    with pytest.raises(AssistUnavailable, match="SAM 2.0"):
        identify_checkpoint(older)


def test_files_that_are_not_known_sam_checkpoints_are_refused_with_the_reason(tiny_variants, tmp_path) -> None:
    with pytest.raises(AssistUnavailable, match="no SAM checkpoint file"):
        identify_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(AssistUnavailable, match="not a readable PyTorch checkpoint"):
        identify_checkpoint(garbage)
    other = tmp_path / "other.pt"
    torch.save({"backbone.weight": torch.zeros(3)}, other)
    with pytest.raises(AssistUnavailable, match="not a SAM checkpoint"):
        identify_checkpoint(other)
    odd = tmp_path / "odd.pth"
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(80, 3, 16, 16), "image_encoder.blocks.0.x": torch.zeros(1)}, odd)
    with pytest.raises(AssistUnavailable, match="80 wide, 1 blocks.*known: vit_b"):
        identify_checkpoint(odd)


def test_a_missing_package_is_named(tiny_sam, tiny_sam2, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "sam2.build_sam", None)  # as if sam2 were not installed
    monkeypatch.setitem(sys.modules, "segment_anything", None)
    sam = SamAssist()
    with pytest.raises(AssistUnavailable, match="need the 'sam2' package"):
        sam.segment(IMAGE, checkpoint=tiny_sam2, box=[1, 1, 10, 10])
    with pytest.raises(AssistUnavailable, match="need the 'segment_anything' package"):
        sam.segment(IMAGE, checkpoint=tiny_sam, box=[1, 1, 10, 10])


def test_box_and_click_prompts_answer_masks_of_the_image_size(checkpoint) -> None:
    sam = SamAssist()
    for prompt in (
        {"box": [20, 10, 80, 60]},
        {"points": [[50, 40]], "labels": [1]},
        {"points": [[50, 40], [5, 5]], "labels": [1, 0]},
        {"box": [20, 10, 80, 60], "points": [[50, 40], [100, 5]], "labels": [1, 0]},
    ):
        candidates = sam.segment(IMAGE, checkpoint=checkpoint, **prompt)
        assert candidates and all(c.mask.shape == (120, 160) and c.mask.dtype == bool for c in candidates), prompt


def test_a_lone_box_or_click_gets_three_candidates_best_first_and_more_prompts_one(checkpoint) -> None:
    sam = SamAssist()
    for prompt in ({"box": [20, 10, 80, 60]}, {"points": [[50, 40]], "labels": [1]}):
        candidates = sam.segment(IMAGE, checkpoint=checkpoint, **prompt)
        scores = [c.score for c in candidates]
        assert len(candidates) == 3 and scores == sorted(scores, reverse=True), scores
        assert len({c.mask.tobytes() for c in candidates}) > 1, "the candidates are different masks"
    refined = sam.segment(IMAGE, checkpoint=checkpoint, box=[20, 10, 80, 60], points=[[50, 40]], labels=[1])
    assert len(refined) == 1


def test_a_second_prompt_on_the_same_image_does_not_run_the_encoder_again(checkpoint, monkeypatch) -> None:
    sam = SamAssist()
    sam.segment(IMAGE, checkpoint=checkpoint, box=[1, 1, 10, 10])  # loads the model
    encoder = sam._engines[str(checkpoint)].predictor.model.image_encoder  # type: ignore[attr-defined]
    calls: list[tuple[int, ...]] = []
    encoder.register_forward_hook(lambda module, args, out: calls.append(tuple(args[0].shape)))
    sam.segment(IMAGE, checkpoint=checkpoint, box=[20, 10, 80, 60], image_key=(1, "abc"))
    sam.segment(IMAGE, checkpoint=checkpoint, points=[[50, 40]], labels=[1], image_key=(1, "abc"))
    assert len(calls) == 1 and (sam.stats.hits, sam.stats.misses) == (1, 2)
    sam.segment(IMAGE, checkpoint=checkpoint, box=[20, 10, 80, 60], image_key=(1, "changed"))  # new pixels
    sam.segment(IMAGE, checkpoint=checkpoint, box=[20, 10, 80, 60])  # no key: never cached
    assert len(calls) == 3


def test_cached_embeddings_give_the_same_masks_as_fresh_ones(checkpoint) -> None:
    sam = SamAssist()
    prompt = {"box": [20, 10, 80, 60], "points": [[50, 40]], "labels": [1]}
    fresh = sam.segment(IMAGE, checkpoint=checkpoint, image_key="k", **prompt)
    sam.segment(IMAGE, checkpoint=checkpoint, image_key="other", box=[1, 1, 30, 30])  # the predictor holds another image
    cached = sam.segment(IMAGE, checkpoint=checkpoint, image_key="k", **prompt)
    assert sam.stats.hits == 1
    assert np.array_equal(fresh[0].mask, cached[0].mask) and fresh[0].score == pytest.approx(cached[0].score)


def test_the_cache_evicts_the_least_recently_used_image_to_stay_under_its_byte_bound(checkpoint) -> None:
    probe = SamAssist()
    probe.segment(IMAGE, checkpoint=checkpoint, box=[1, 1, 10, 10], image_key="probe")
    one = probe.cached_bytes
    assert one > 0
    sam = SamAssist(cache_bytes=2 * one + one // 2)  # room for two images
    for key in ("a", "b"):
        sam.segment(IMAGE, checkpoint=checkpoint, box=[1, 1, 10, 10], image_key=key)
    sam.segment(IMAGE, checkpoint=checkpoint, box=[1, 1, 10, 10], image_key="a")  # "a" is now the most recent
    sam.segment(IMAGE, checkpoint=checkpoint, box=[1, 1, 10, 10], image_key="c")  # evicts "b"
    assert sam.stats.evictions == 1 and sam.cached_bytes == 2 * one <= sam.cache_bytes
    hits = sam.stats.hits
    sam.segment(IMAGE, checkpoint=checkpoint, box=[1, 1, 10, 10], image_key="a")
    assert sam.stats.hits == hits + 1
    sam.segment(IMAGE, checkpoint=checkpoint, box=[1, 1, 10, 10], image_key="b")
    assert sam.stats.hits == hits + 1, "b was evicted and had to be embedded again"


def test_an_embedding_bigger_than_the_whole_cache_is_used_but_not_kept(checkpoint) -> None:
    sam = SamAssist(cache_bytes=1024)
    for _ in range(2):
        assert sam.segment(IMAGE, checkpoint=checkpoint, box=[1, 1, 10, 10], image_key="a")
    assert (sam.stats.hits, sam.stats.misses, sam.cached_bytes) == (0, 2, 0)


def test_bad_prompts_are_refused_with_the_reason(tiny_sam2) -> None:
    sam = SamAssist()
    cases = [
        ({}, "a box or at least one point"),
        ({"points": [[5, 5]], "labels": []}, "needs a label"),
        ({"points": [[5, 5]], "labels": [2]}, "1 \\(object\\) or 0"),
        ({"points": [[500, 5]], "labels": [1]}, "outside the 160x120 image"),
        ({"box": [10, 10, 0, 5]}, "positive width"),
        ({"box": [200, 10, 5, 5]}, "outside the image"),
        ({"box": [1, 2, 3]}, "x, y, width, height"),
    ]
    for prompt, reason in cases:
        with pytest.raises(AssistError, match=reason):
            sam.segment(IMAGE, checkpoint=tiny_sam2, **prompt)
    with pytest.raises(AssistError, match="RGB uint8"):
        sam.segment(IMAGE[..., 0], checkpoint=tiny_sam2, box=[1, 1, 5, 5])
    with pytest.raises(AssistUnavailable, match="no SAM checkpoint configured"):
        sam.segment(IMAGE, checkpoint=None, box=[1, 1, 5, 5])


# The embedding files shared by processes. Two SamAssist instances stand for two web processes;
# one test runs a real second process.

BOX = [20, 10, 80, 60]


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.npz"))


def test_a_prompt_in_another_process_loads_the_embedding_file_instead_of_running_the_encoder(checkpoint, tmp_path) -> None:
    first, second = (SamAssist(disk_cache_dir=tmp_path) for _ in range(2))
    fresh = first.segment(IMAGE, checkpoint=checkpoint, box=BOX, image_key=(7, "abc"))
    assert (first.stats.misses, len(_files(tmp_path))) == (1, 1)
    shared = second.segment(IMAGE, checkpoint=checkpoint, box=BOX, image_key=(7, "abc"))
    assert (second.stats.misses, second.stats.disk_hits, second.stats.disk_errors) == (0, 1, 0)
    assert [c.score for c in shared] == pytest.approx([c.score for c in fresh])
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(fresh, shared, strict=True))
    second.segment(IMAGE, checkpoint=checkpoint, points=[[50, 40]], labels=[1], image_key=(7, "abc"))
    assert (second.stats.hits, second.stats.disk_hits) == (1, 1), "the file's embedding is kept in memory too"


def test_changed_pixels_or_a_replaced_checkpoint_are_never_answered_from_the_files(checkpoint, tmp_path) -> None:
    SamAssist(disk_cache_dir=tmp_path).segment(IMAGE, checkpoint=checkpoint, box=BOX, image_key=(7, "abc"))
    other = SamAssist(disk_cache_dir=tmp_path)
    other.segment(IMAGE, checkpoint=checkpoint, box=BOX, image_key=(7, "changed"))
    assert (other.stats.misses, other.stats.disk_hits) == (1, 0)
    # The same path holding another file (a new download over the old one) is another model.
    copy = tmp_path / "model" / checkpoint.name
    copy.parent.mkdir()
    copy.write_bytes(checkpoint.read_bytes())
    SamAssist(disk_cache_dir=tmp_path / "cache").segment(IMAGE, checkpoint=copy, box=BOX, image_key=(7, "abc"))
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    later = SamAssist(disk_cache_dir=tmp_path / "cache")
    later.segment(IMAGE, checkpoint=copy, box=BOX, image_key=(7, "abc"))
    assert (later.stats.misses, later.stats.disk_hits) == (1, 0)


def test_keys_that_differ_between_processes_are_kept_in_memory_only(tiny_sam2, tmp_path) -> None:
    sam = SamAssist(disk_cache_dir=tmp_path)
    sam.segment(IMAGE, checkpoint=tiny_sam2, box=BOX, image_key=object())  # its repr holds an address
    assert _files(tmp_path) == [] and sam.cached_bytes > 0


def test_the_files_stay_under_their_byte_bound_by_removing_the_least_recently_used(checkpoint, tmp_path) -> None:
    probe = tmp_path / "probe"
    SamAssist(disk_cache_dir=probe).segment(IMAGE, checkpoint=checkpoint, box=BOX, image_key="probe")
    one = _files(probe)[0].stat().st_size
    folder = tmp_path / "cache"

    def process() -> SamAssist:
        return SamAssist(disk_cache_dir=folder, disk_cache_bytes=2 * one + one // 2)  # room for two files

    for key in ("a", "b"):
        process().segment(IMAGE, checkpoint=checkpoint, box=BOX, image_key=key)
    reader = process()
    reader.segment(IMAGE, checkpoint=checkpoint, box=BOX, image_key="a")  # "a" is now the most recent
    assert reader.stats.disk_hits == 1
    writer = process()
    writer.segment(IMAGE, checkpoint=checkpoint, box=BOX, image_key="c")  # removes "b"
    assert writer.stats.disk_evictions == 1 and len(_files(folder)) == 2
    assert sum(f.stat().st_size for f in _files(folder)) <= 2 * one + one // 2
    later = process()
    for key in ("a", "c"):
        later.segment(IMAGE, checkpoint=checkpoint, box=BOX, image_key=key)
    assert (later.stats.disk_hits, later.stats.misses) == (2, 0)
    later.segment(IMAGE, checkpoint=checkpoint, box=BOX, image_key="b")
    assert later.stats.misses == 1, "b was removed and had to be embedded again"


@pytest.mark.parametrize("damage", ["truncated", "garbage", "flipped byte", "foreign arrays"])
def test_a_damaged_file_is_a_miss_and_is_replaced_never_an_error(checkpoint, tmp_path, damage) -> None:
    SamAssist(disk_cache_dir=tmp_path).segment(IMAGE, checkpoint=checkpoint, box=BOX, image_key="k")
    [file] = _files(tmp_path)
    data = file.read_bytes()
    if damage == "truncated":
        file.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        file.write_bytes(b"not an npz file")
    elif damage == "flipped byte":
        middle = len(data) // 2  # inside an array: the zip's checksum no longer matches
        file.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])
    else:
        with np.load(file) as archive:
            arrays = {name: archive[name] for name in archive.files}
        np.savez(file, **{name: a[..., :2] if a.ndim == 4 else a for name, a in arrays.items()})
    other = SamAssist(disk_cache_dir=tmp_path)
    assert other.segment(IMAGE, checkpoint=checkpoint, box=BOX, image_key="k")
    assert (other.stats.misses, other.stats.disk_hits, other.stats.disk_errors) == (1, 0, 1)
    again = SamAssist(disk_cache_dir=tmp_path)
    again.segment(IMAGE, checkpoint=checkpoint, box=BOX, image_key="k")
    assert (again.stats.misses, again.stats.disk_hits, again.stats.disk_errors) == (0, 1, 0), "the file was written anew"


def test_a_folder_that_cannot_be_written_only_costs_the_sharing(tiny_sam2, tmp_path) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    sam = SamAssist(disk_cache_dir=blocked)
    for _ in range(2):
        assert sam.segment(IMAGE, checkpoint=tiny_sam2, box=BOX, image_key="k")
    # Reading and writing failed once each; the second prompt came from memory.
    assert (sam.stats.misses, sam.stats.hits, sam.stats.disk_errors) == (1, 1, 2)


def test_processes_writing_and_reading_the_same_files_at_once_leave_them_whole(tiny_sam2, tmp_path) -> None:
    keys = ["a", "b", "c"]

    def work(order: int) -> CacheStats:
        sam = SamAssist(disk_cache_dir=tmp_path)
        for key in keys[order:] + keys[:order]:
            for _ in range(2):
                sam.segment(IMAGE, checkpoint=tiny_sam2, box=BOX, image_key=key)
        return sam.stats

    with ThreadPoolExecutor(4) as pool:
        stats = list(pool.map(work, [0, 1, 2, 0]))
    assert all(s.disk_errors == 0 for s in stats)
    assert len(_files(tmp_path)) == 3 and not list(tmp_path.glob(".*.tmp"))
    reader = SamAssist(disk_cache_dir=tmp_path)
    for key in keys:
        reader.segment(IMAGE, checkpoint=tiny_sam2, box=BOX, image_key=key)
    assert (reader.stats.disk_hits, reader.stats.misses, reader.stats.disk_errors) == (3, 0, 0)


SECOND_PROCESS = """
import json, sys
import numpy as np
import torch
from ml.sam import SAM2_VARIANTS, SamAssist
from ml.synthetic import generate_sample
from tests.sam import TINY_SAM2, tiny_sam2_variant
torch.set_num_threads(1)
SAM2_VARIANTS[TINY_SAM2] = tiny_sam2_variant()
image = generate_sample(seed=3, size=(120, 160)).image
sam = SamAssist(disk_cache_dir=sys.argv[2])
best = sam.segment(image, checkpoint=sys.argv[1], box=[20, 10, 80, 60], image_key=(7, "abc"))[0]
print(json.dumps({"misses": sam.stats.misses, "disk_hits": sam.stats.disk_hits, "score": best.score}))
"""


def test_a_real_second_process_skips_the_encoder(tiny_sam2, tmp_path) -> None:
    mine = SamAssist(disk_cache_dir=tmp_path).segment(IMAGE, checkpoint=tiny_sam2, box=BOX, image_key=(7, "abc"))[0]
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", SECOND_PROCESS, str(tiny_sam2), str(tmp_path)], cwd=root, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    assert (theirs["misses"], theirs["disk_hits"]) == (0, 1)
    assert theirs["score"] == pytest.approx(mine.score)
