"""SAM models small enough for tests: the real segment_anything and sam2 architectures, shrunk.

The published checkpoints cannot be downloaded here, and the smallest real ones take seconds
per image on one CPU core. These build the packages' own models with tiny encoders, register
them as variants ("vit_tiny" in segment_anything's registry and ml.sam.SAM1_VARIANTS;
"sam2.1_hiera_test" in ml.sam.SAM2_VARIANTS, the sam2.1 tiny config with hydra overrides) and
save randomly initialised weights in the published file layouts, so the whole path (variant read
from the file's weights, checkpoint loading, prompts, embedding reuse) runs for real; the masks
mean nothing.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch

TINY = "vit_tiny"
TINY_SAM1 = {"embed_dim": 64, "depth": 2}
TINY_SAM2 = "sam2.1_hiera_test"
#: A Hiera trunk 8 wide with 5 blocks on 256-pixel inputs, 32-wide heads; memory modules (video
#: only) shrunk to match. ~0.7 M parameters, ~0.15 s per image on one core.
TINY_SAM2_OVERRIDES = (
    "++model.image_size=256",
    "++model.image_encoder.trunk.embed_dim=8",
    "++model.image_encoder.trunk.stages=[1,1,2,1]",
    "++model.image_encoder.trunk.global_att_blocks=[3]",
    "++model.image_encoder.neck.backbone_channel_list=[64,32,16,8]",
    "++model.image_encoder.neck.d_model=32",
    "++model.image_encoder.neck.position_encoding.num_pos_feats=32",
    "++model.memory_attention.d_model=32",
    "++model.memory_attention.num_layers=1",
    "++model.memory_attention.layer.d_model=32",
    "++model.memory_attention.layer.dim_feedforward=32",
    "++model.memory_attention.layer.self_attention.embedding_dim=32",
    "++model.memory_attention.layer.self_attention.feat_sizes=[16,16]",
    "++model.memory_attention.layer.cross_attention.embedding_dim=32",
    "++model.memory_attention.layer.cross_attention.feat_sizes=[16,16]",
    "++model.memory_attention.layer.cross_attention.kv_in_dim=16",
    "++model.memory_encoder.out_dim=16",
    "++model.memory_encoder.in_dim=32",
    "++model.memory_encoder.position_encoding.num_pos_feats=16",
    "++model.memory_encoder.fuser.layer.dim=32",
    "++model.memory_encoder.fuser.num_layers=1",
)


def tiny_builder():  # type: ignore[no-untyped-def]
    from segment_anything.build_sam import _build_sam

    return partial(
        _build_sam, encoder_embed_dim=TINY_SAM1["embed_dim"], encoder_depth=TINY_SAM1["depth"], encoder_num_heads=2,
        encoder_global_attn_indexes=[1],
    )


def tiny_sam2_variant():  # type: ignore[no-untyped-def]
    from ml.sam import SAM2_VARIANTS, Sam2Variant

    return Sam2Variant(SAM2_VARIANTS["sam2.1_hiera_tiny"].config, embed_dim=8, depth=5, overrides=TINY_SAM2_OVERRIDES)


@pytest.fixture(scope="session")
def tiny_sam_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sam") / f"sam_{TINY}_test.pth"
    torch.save(tiny_builder()().state_dict(), path)
    return path


@pytest.fixture(scope="session")
def tiny_sam2_file(tmp_path_factory) -> Path:
    """Random weights for the tiny SAM 2.1, saved as sam2 publishes them ({"model": state_dict})."""
    import sam2  # noqa: F401 - initialises hydra's config search path to the sam2 package
    from hydra import compose
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    torch.manual_seed(0)
    variant = tiny_sam2_variant()
    cfg = compose(config_name=variant.config, overrides=list(variant.overrides))
    OmegaConf.resolve(cfg)
    model = instantiate(cfg.model, _recursive_=True)
    # A neutral name: the variant must be recognised from the weights, not from the file name.
    path = tmp_path_factory.mktemp("sam2") / "tiny-random.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


@pytest.fixture
def tiny_variants(monkeypatch) -> None:
    """The tiny SAM 1 and SAM 2.1 variants known to segment_anything and ml.sam for this test."""
    from segment_anything import sam_model_registry

    from ml.sam import SAM1_VARIANTS, SAM2_VARIANTS, Sam1Variant

    torch.set_num_threads(1)
    monkeypatch.setitem(sam_model_registry, TINY, tiny_builder())
    monkeypatch.setitem(SAM1_VARIANTS, TINY, Sam1Variant(**TINY_SAM1))
    monkeypatch.setitem(SAM2_VARIANTS, TINY_SAM2, tiny_sam2_variant())


@pytest.fixture
def tiny_sam(tiny_sam_file: Path, tiny_variants: None) -> Path:
    """The tiny SAM 1 checkpoint, with its variant registered."""
    return tiny_sam_file


@pytest.fixture
def tiny_sam2(tiny_sam2_file: Path, tiny_variants: None) -> Path:
    """The tiny SAM 2.1 checkpoint, with its variant registered."""
    return tiny_sam2_file
