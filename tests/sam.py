"""A SAM model small enough for tests: the real segment_anything architecture with a 2-block encoder.

The published checkpoints cannot be downloaded here, and vit_b takes ~40 s per image on one CPU
core. This registers the same `_build_sam` with a tiny encoder under "vit_tiny" in the package's
own registry and saves randomly initialised weights, so the whole path (model type from the file
name, checkpoint loading, prompts, embedding reuse) runs for real; the masks mean nothing.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch

TINY = "vit_tiny"


def tiny_builder():  # type: ignore[no-untyped-def]
    from segment_anything.build_sam import _build_sam

    return partial(_build_sam, encoder_embed_dim=64, encoder_depth=2, encoder_num_heads=2, encoder_global_attn_indexes=[1])


@pytest.fixture(scope="session")
def tiny_sam_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sam") / f"sam_{TINY}_test.pth"
    torch.save(tiny_builder()().state_dict(), path)
    return path


@pytest.fixture
def tiny_sam(tiny_sam_file: Path, monkeypatch) -> Path:
    """The tiny checkpoint, with its model type registered and no SAM predictor cached yet."""
    from segment_anything import sam_model_registry

    from ml import assist

    monkeypatch.setitem(sam_model_registry, TINY, tiny_builder())
    monkeypatch.setattr(assist, "_SAM_CACHE", {})
    monkeypatch.setattr(assist, "_SAM_IMAGE", {})
    return tiny_sam_file
