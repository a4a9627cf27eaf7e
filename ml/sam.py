"""Segment Anything for the editor's click and box prompts: SAM 1 and SAM 2.1, picked by the checkpoint file.

One :class:`SamAssist` per process loads each checkpoint once and keeps image embeddings in an
LRU bounded in bytes, keyed by (checkpoint, image key): the image encoder is nearly all of SAM's
cost, and a person refining an object sends several prompts on the same image. Which family and
variant a file holds is read from its weights (the shapes of the image encoder), not trusted
from its name. Prompts follow the shared geometry contract: [x, y] in image pixels, boxes as
[x, y, w, h].
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from cachetools import LRUCache

from ml.assist import AssistError, AssistUnavailable

Point = Sequence[float]
Family = Literal["sam1", "sam2"]

#: The default bound of the embedding cache. One image costs 4 MiB with SAM 1 (a 256x64x64 float
#: map) and 16 MiB with SAM 2.1 (that map plus two high-resolution feature maps).
DEFAULT_CACHE_BYTES = 512 * 1024**2


@dataclass(frozen=True)
class Sam1Variant:
    """A segment_anything model type and the image-encoder shape its weights have."""

    embed_dim: int
    depth: int


@dataclass(frozen=True)
class Sam2Variant:
    """A sam2 model: its hydra config in the sam2 package and the Hiera trunk shape its weights have."""

    config: str
    embed_dim: int
    depth: int
    #: SAM 2.1 weights carry the spatial no-object embedding that SAM 2.0 has not.
    v21: bool = True
    #: Hydra overrides applied to the config (tests build small models this way).
    overrides: tuple[str, ...] = ()


#: Keys are segment_anything's model registry names.
SAM1_VARIANTS: dict[str, Sam1Variant] = {
    "vit_b": Sam1Variant(embed_dim=768, depth=12),
    "vit_l": Sam1Variant(embed_dim=1024, depth=24),
    "vit_h": Sam1Variant(embed_dim=1280, depth=32),
}

#: Keys are the published checkpoint names (sam2.1_hiera_tiny.pt …) without the suffix.
SAM2_VARIANTS: dict[str, Sam2Variant] = {
    "sam2.1_hiera_tiny": Sam2Variant("configs/sam2.1/sam2.1_hiera_t.yaml", embed_dim=96, depth=12),
    "sam2.1_hiera_small": Sam2Variant("configs/sam2.1/sam2.1_hiera_s.yaml", embed_dim=96, depth=16),
    "sam2.1_hiera_base_plus": Sam2Variant("configs/sam2.1/sam2.1_hiera_b+.yaml", embed_dim=112, depth=24),
    "sam2.1_hiera_large": Sam2Variant("configs/sam2.1/sam2.1_hiera_l.yaml", embed_dim=144, depth=48),
    "sam2_hiera_tiny": Sam2Variant("configs/sam2/sam2_hiera_t.yaml", embed_dim=96, depth=12, v21=False),
    "sam2_hiera_small": Sam2Variant("configs/sam2/sam2_hiera_s.yaml", embed_dim=96, depth=16, v21=False),
    "sam2_hiera_base_plus": Sam2Variant("configs/sam2/sam2_hiera_b+.yaml", embed_dim=112, depth=24, v21=False),
    "sam2_hiera_large": Sam2Variant("configs/sam2/sam2_hiera_l.yaml", embed_dim=144, depth=48, v21=False),
}


@dataclass(frozen=True)
class SamCheckpoint:
    """What a checkpoint file holds, as read from its weights."""

    path: str
    family: Family
    variant: str


@dataclass(frozen=True)
class Candidate:
    """One mask SAM proposes for a prompt, with the model's own estimate of its IoU."""

    mask: np.ndarray
    score: float


def _state_dict(path: Path) -> Mapping[str, Any]:
    import torch

    try:
        try:
            # mmap: only the few tensors whose shapes we look at are read, not the whole (GB) file.
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            # Files in torch's pre-1.6 (non-zip) format cannot be mapped: read them whole.
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a file it cannot read
        raise AssistUnavailable(f"{path.name} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    # sam2 checkpoints wrap the weights as {"model": state_dict}; SAM 1 files are the state dict.
    state = loaded.get("model", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, Mapping):
        raise AssistUnavailable(f"{path.name} holds no model weights (a state dict was expected)")
    return state


def _depth(state: Mapping[str, Any], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return len({m.group(1) for key in state if (m := pattern.match(key))})


def identify_checkpoint(path: str | Path) -> SamCheckpoint:
    """The family (SAM 1 or SAM 2.x) and variant of a checkpoint file, read from its weights' shapes.

    Raises AssistUnavailable when the file is missing, unreadable, or no known variant matches.
    """
    file = Path(path)
    if not file.is_file():
        raise AssistUnavailable(f"no SAM checkpoint file at {str(path)!r}")
    state = _state_dict(file)
    if "image_encoder.trunk.patch_embed.proj.weight" in state:
        embed_dim = int(state["image_encoder.trunk.patch_embed.proj.weight"].shape[0])
        depth = _depth(state, "image_encoder.trunk.blocks.")
        v21 = "no_obj_embed_spatial" in state
        for name, v2 in SAM2_VARIANTS.items():
            if (v2.embed_dim, v2.depth, v2.v21) == (embed_dim, depth, v21):
                return SamCheckpoint(str(file), "sam2", name)
        shape = f"Hiera trunk {embed_dim} wide, {depth} blocks, SAM {'2.1' if v21 else '2.0'}"
    elif "image_encoder.patch_embed.proj.weight" in state:
        embed_dim = int(state["image_encoder.patch_embed.proj.weight"].shape[0])
        depth = _depth(state, "image_encoder.blocks.")
        for name, v1 in SAM1_VARIANTS.items():
            if (v1.embed_dim, v1.depth) == (embed_dim, depth):
                return SamCheckpoint(str(file), "sam1", name)
        shape = f"ViT encoder {embed_dim} wide, {depth} blocks"
    else:
        raise AssistUnavailable(f"{file.name} is not a SAM checkpoint (it has no SAM image encoder)")
    known = ", ".join([*SAM1_VARIANTS, *SAM2_VARIANTS])
    raise AssistUnavailable(f"{file.name}: no known SAM variant has a {shape} (known: {known})")


@dataclass(frozen=True)
class Published:
    """A checkpoint as its authors publish it: where, its MD5 where they name it, its rough size."""

    url: str
    md5: str | None
    about_mb: int

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


#: The official checkpoints by variant. SAM 1 file names carry the start of their MD5, and the
#: full sums are the ones the authors' tools check; SAM 2.1 publishes no sums, so a download is
#: checked by reading it back as the variant it should be (identify_checkpoint).
PUBLISHED: dict[str, Published] = {
    "vit_b": Published("https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth", "01ec64d29a2fca3f0661936605ae66f8", 375),
    "vit_l": Published("https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth", "0b3195507c641ddb6910d2bb5adee89c", 1250),
    "vit_h": Published("https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth", "4b8939a88964f0f4ff5f5b2642c598a6", 2560),
    **{
        f"sam2.1_hiera_{size}": Published(f"https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_{size}.pt", None, mb)
        for size, mb in (("tiny", 156), ("small", 185), ("base_plus", 324), ("large", 898))
    },
}


class DownloadFailed(RuntimeError):
    """A checkpoint could not be fetched or is not what it should be (the reason is the message)."""


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checkpoint(path: Path, variant: str) -> None:
    """Raise DownloadFailed unless ``path`` is the published ``variant`` (its MD5, else its weights' shapes)."""
    expected = PUBLISHED[variant].md5
    if expected is not None and (actual := _md5(path)) != expected:
        raise DownloadFailed(f"{path.name} has MD5 {actual}, the published {variant} file has {expected}")
    try:
        found = identify_checkpoint(path).variant
    except AssistUnavailable as exc:
        raise DownloadFailed(str(exc)) from None
    if found != variant:
        raise DownloadFailed(f"{path.name} holds SAM variant {found}, not {variant}")


def download_checkpoint(variant: str, directory: Path, *, url: str | None = None, timeout: float = 10.0, progress: bool = False) -> Path:
    """Fetch the published ``variant`` into ``directory`` (from ``url``, a mirror, if given) and check it.

    The file only takes its final name once it has passed :func:`verify_checkpoint`, so a broken
    or interrupted download never looks like a checkpoint. Raises DownloadFailed with the reason.
    """
    import socket
    from urllib.parse import urlparse

    from torch.hub import download_url_to_file

    source = url or PUBLISHED[variant].url
    target = directory / PUBLISHED[variant].filename
    parsed = urlparse(source)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise DownloadFailed(f"{source!r} is not an http(s) address")
    try:
        # Fail in seconds on an offline machine instead of waiting for the download to time out.
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as exc:
        raise DownloadFailed(f"cannot reach {parsed.hostname} ({exc})") from None
    directory.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".download")
    try:
        download_url_to_file(source, str(staging), progress=progress)
        verify_checkpoint(staging, variant)
        staging.replace(target)
    except DownloadFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - network, HTTP and disk errors all end the same way
        raise DownloadFailed(f"the download failed ({type(exc).__name__}: {exc})") from None
    finally:
        staging.unlink(missing_ok=True)
    return target


@dataclass
class Embedding:
    """An image as the mask decoder needs it (the encoder's output and the image's sizes)."""

    state: dict[str, Any]
    nbytes: int


def _tensor_bytes(*tensors: Any) -> int:
    return sum(int(t.element_size() * t.nelement()) for t in tensors)


class _Engine(Protocol):
    def embed(self, image: np.ndarray) -> Embedding: ...

    def predict(
        self, embedding: Embedding, *, points: np.ndarray | None, labels: np.ndarray | None, box: np.ndarray | None,
        multimask: bool,
    ) -> tuple[np.ndarray, np.ndarray]: ...


class _Sam1Engine:
    """segment_anything's SamPredictor, its image state swapped in from the cache for each prompt."""

    def __init__(self, checkpoint: SamCheckpoint, device: str) -> None:
        try:
            from segment_anything import SamPredictor, sam_model_registry
        except ImportError as exc:
            raise AssistUnavailable("SAM 1 checkpoints need the 'segment_anything' package (pip install segment-anything)") from exc
        if checkpoint.variant not in sam_model_registry:
            raise AssistUnavailable(f"segment_anything has no model type {checkpoint.variant!r}")
        model = sam_model_registry[checkpoint.variant](checkpoint=checkpoint.path)
        self.predictor = SamPredictor(model.to(device).eval())

    def embed(self, image: np.ndarray) -> Embedding:
        p = self.predictor
        p.set_image(image)
        state = {"features": p.features, "original_size": p.original_size, "input_size": p.input_size}
        return Embedding(state, _tensor_bytes(p.features))

    def predict(
        self, embedding: Embedding, *, points: np.ndarray | None, labels: np.ndarray | None, box: np.ndarray | None,
        multimask: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        p = self.predictor
        p.features = embedding.state["features"]
        p.original_size = embedding.state["original_size"]
        p.input_size = embedding.state["input_size"]
        p.is_image_set = True
        masks, scores, _ = p.predict(point_coords=points, point_labels=labels, box=box, multimask_output=multimask)
        return masks, scores


class _Sam2Engine:
    """sam2's SAM2ImagePredictor over the model built from the variant's config, state swapped in likewise."""

    def __init__(self, checkpoint: SamCheckpoint, device: str) -> None:
        try:
            from sam2.build_sam import build_sam2
            from sam2.sam2_image_predictor import SAM2ImagePredictor
        except ImportError as exc:
            raise AssistUnavailable("SAM 2.1 checkpoints need the 'sam2' package (see requirements.txt)") from exc
        variant = SAM2_VARIANTS[checkpoint.variant]
        model = build_sam2(variant.config, checkpoint.path, device=device, hydra_overrides_extra=list(variant.overrides))
        self.predictor = SAM2ImagePredictor(model)
        # The predictor's feature-map sizes are written for 1024-pixel models; derive them from the
        # model's own input size (the same values at 1024) so that smaller test models work too.
        size = int(model.image_size)
        self.predictor._bb_feat_sizes = [(size // 4, size // 4), (size // 8, size // 8), (size // 16, size // 16)]

    def embed(self, image: np.ndarray) -> Embedding:
        p = self.predictor
        p.set_image(image)
        features = p._features
        state = {"features": features, "orig_hw": list(p._orig_hw)}
        return Embedding(state, _tensor_bytes(features["image_embed"], *features["high_res_feats"]))

    def predict(
        self, embedding: Embedding, *, points: np.ndarray | None, labels: np.ndarray | None, box: np.ndarray | None,
        multimask: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        p = self.predictor
        p._features = embedding.state["features"]
        p._orig_hw = embedding.state["orig_hw"]
        p._is_image_set, p._is_batch = True, False
        masks, scores, _ = p.predict(point_coords=points, point_labels=labels, box=box, multimask_output=multimask)
        return masks, scores


_ENGINES: dict[Family, Callable[[SamCheckpoint, str], _Engine]] = {"sam1": _Sam1Engine, "sam2": _Sam2Engine}


def _check_prompts(
    image: np.ndarray, box: Sequence[float] | None, points: Sequence[Point] | None, labels: Sequence[int] | None
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise AssistError(f"expected an RGB uint8 image (H, W, 3), got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    if box is None and not points:
        raise AssistError("SAM needs a box or at least one point")
    box_xyxy = None
    if box is not None:
        if len(box) != 4:
            raise AssistError("box must be [x, y, width, height]")
        x, y, w, h = (float(v) for v in box)
        if not (w > 0 and h > 0):
            raise AssistError(f"box must have a positive width and height, got {w} x {h}")
        if x >= width or y >= height or x + w <= 0 or y + h <= 0:
            raise AssistError("box lies outside the image")
        box_xyxy = np.array([x, y, x + w, y + h], np.float32)
    if not points:
        return None, None, box_xyxy
    if labels is None or len(labels) != len(points):
        raise AssistError("each SAM point needs a label (1 = object, 0 = background)")
    if any(label not in (0, 1) for label in labels):
        raise AssistError("SAM point labels are 1 (object) or 0 (background)")
    coords = np.asarray(points, np.float32)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise AssistError("each SAM point is [x, y]")
    if (coords < 0).any() or (coords[:, 0] > width).any() or (coords[:, 1] > height).any():
        raise AssistError(f"a SAM point lies outside the {width}x{height} image")
    return coords, np.asarray(labels, np.int32), box_xyxy


@dataclass
class CacheStats:
    """How the embedding cache has served this process (for tests, benches and logs)."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0


class _EmbeddingCache(LRUCache[Hashable, Embedding]):
    def __init__(self, max_bytes: int, stats: CacheStats) -> None:
        super().__init__(maxsize=max_bytes, getsizeof=lambda e: e.nbytes)
        self.stats = stats

    def popitem(self) -> tuple[Hashable, Embedding]:
        item = super().popitem()
        self.stats.evictions += 1
        return item


@dataclass
class SamAssist:
    """SAM models loaded once each, and image embeddings kept in an LRU of at most ``cache_bytes``.

    One instance per process: each web process holds one (annotator.learning), so an embedding
    serves the prompts that reach that process; docs/sam.md has the measurements behind that.
    """

    cache_bytes: int = DEFAULT_CACHE_BYTES
    device: str | None = None
    stats: CacheStats = field(default_factory=CacheStats)

    def __post_init__(self) -> None:
        self._engines: dict[str, _Engine] = {}
        self._checkpoints: dict[str, SamCheckpoint] = {}
        self._cache = _EmbeddingCache(self.cache_bytes, self.stats)
        self._lock = threading.Lock()

    @property
    def cached_bytes(self) -> int:
        with self._lock:
            return int(self._cache.currsize)

    def checkpoint(self, path: str | Path) -> SamCheckpoint:
        """What ``path`` holds (read once per process)."""
        with self._lock:
            return self._identify(str(path))

    def _identify(self, path: str) -> SamCheckpoint:
        found = self._checkpoints.get(path)
        if found is None:
            found = self._checkpoints[path] = identify_checkpoint(path)
        return found

    def segment(
        self,
        image: np.ndarray,
        *,
        checkpoint: str | Path | None,
        box: Sequence[float] | None = None,
        points: Sequence[Point] | None = None,
        labels: Sequence[int] | None = None,
        image_key: Hashable | None = None,
    ) -> list[Candidate]:
        """SAM's masks for a box [x, y, w, h] and/or points (labels: 1 object, 0 background), best first.

        A lone box or a lone click is ambiguous (a part, or the whole?): SAM then proposes three
        masks, all returned with their scores. More prompts ask for one mask. ``image_key`` names
        the image and must change when its pixels do (an id and a checksum); prompts on a key
        already embedded skip the encoder. Without a key nothing is cached.
        """
        if not checkpoint:
            raise AssistUnavailable("no SAM checkpoint configured (a sam_vit_*.pth or sam2.1_hiera_*.pt file)")
        coords, point_labels, box_xyxy = _check_prompts(image, box, points, labels)
        multimask = (box_xyxy is not None) + (0 if coords is None else len(coords)) == 1
        import torch

        with self._lock, torch.inference_mode():
            ckpt = self._identify(str(checkpoint))
            engine = self._engines.get(ckpt.path)
            if engine is None:
                device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
                engine = self._engines[ckpt.path] = _ENGINES[ckpt.family](ckpt, device)
            key = (ckpt.path, image_key)
            embedding = self._cache.get(key) if image_key is not None else None
            if embedding is None:
                self.stats.misses += 1
                embedding = engine.embed(image)
                if image_key is not None and embedding.nbytes <= self.cache_bytes:
                    self._cache[key] = embedding
            else:
                self.stats.hits += 1
            masks, scores = engine.predict(embedding, points=coords, labels=point_labels, box=box_xyxy, multimask=multimask)
        order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
        return [Candidate(np.asarray(masks[i], dtype=bool), float(scores[i])) for i in order]
