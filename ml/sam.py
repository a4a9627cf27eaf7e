"""Segment Anything for the editor's click and box prompts: SAM 1 and SAM 2.1, picked by the checkpoint file.

One :class:`SamAssist` per process loads each checkpoint once and keeps image embeddings in an
LRU bounded in bytes, keyed by (checkpoint, image key): the image encoder is nearly all of SAM's
cost, and a person refining an object sends several prompts on the same image. Behind it, a
folder of embedding files (also bounded in bytes) is shared by every process that is given the
same folder, so a prompt that reaches another web process than the first one still skips the
encoder. Which family and
variant a file holds is read from its weights (the shapes of the image encoder), not trusted
from its name. Prompts follow the shared geometry contract: [x, y] in image pixels, boxes as
[x, y, w, h].
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
import time
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
#: The default bound of the embedding files shared by the processes (when a folder is given).
DEFAULT_DISK_CACHE_BYTES = 2048 * 1024**2

logger = logging.getLogger(__name__)


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


def _numpy(tensor: Any) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().cpu().numpy())


def _expect(arrays: Mapping[str, np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
    """``arrays[name]`` if it is a float32 array of ``shape``; ValueError otherwise (a file that is not ours)."""
    array = arrays[name]
    if array.dtype != np.float32 or array.shape != shape:
        raise ValueError(f"{name} is {array.dtype} {array.shape}, this model's is float32 {shape}")
    return array


def _size(arrays: Mapping[str, np.ndarray], name: str) -> tuple[int, int]:
    array = arrays[name]
    if array.shape != (2,) or array.dtype.kind not in "iu" or (array <= 0).any():
        raise ValueError(f"{name} is not an image size")
    return int(array[0]), int(array[1])


class _Engine(Protocol):
    def embed(self, image: np.ndarray) -> Embedding: ...

    def encode(self, embedding: Embedding) -> dict[str, np.ndarray]:
        """The embedding as plain arrays, to be written to the shared cache (no pickle)."""
        ...

    def decode(self, arrays: Mapping[str, np.ndarray]) -> Embedding:
        """The embedding back from :meth:`encode`'s arrays; ValueError or KeyError if they do not fit this model."""
        ...

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
        self.device = device
        prompts = model.prompt_encoder
        self.feature_shape = (1, int(prompts.embed_dim), *(int(n) for n in prompts.image_embedding_size))

    def embed(self, image: np.ndarray) -> Embedding:
        p = self.predictor
        p.set_image(image)
        state = {"features": p.features, "original_size": p.original_size, "input_size": p.input_size}
        return Embedding(state, _tensor_bytes(p.features))

    def encode(self, embedding: Embedding) -> dict[str, np.ndarray]:
        state = embedding.state
        return {
            "features": _numpy(state["features"]),
            "original_size": np.asarray(state["original_size"], np.int64),
            "input_size": np.asarray(state["input_size"], np.int64),
        }

    def decode(self, arrays: Mapping[str, np.ndarray]) -> Embedding:
        import torch

        features = torch.from_numpy(_expect(arrays, "features", self.feature_shape)).to(self.device)
        state = {"features": features, "original_size": _size(arrays, "original_size"), "input_size": _size(arrays, "input_size")}
        return Embedding(state, _tensor_bytes(features))

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
        self.device = device
        decoder, prompts = model.sam_mask_decoder, model.sam_prompt_encoder
        self.shapes = {
            "image_embed": (1, int(prompts.embed_dim), *(int(n) for n in prompts.image_embedding_size)),
            "high_res_0": (1, int(decoder.conv_s0.out_channels), size // 4, size // 4),
            "high_res_1": (1, int(decoder.conv_s1.out_channels), size // 8, size // 8),
        }

    def embed(self, image: np.ndarray) -> Embedding:
        p = self.predictor
        p.set_image(image)
        features = p._features
        state = {"features": features, "orig_hw": list(p._orig_hw)}
        return Embedding(state, _tensor_bytes(features["image_embed"], *features["high_res_feats"]))

    def encode(self, embedding: Embedding) -> dict[str, np.ndarray]:
        features = embedding.state["features"]
        high_res = features["high_res_feats"]
        if len(high_res) != 2 or len(embedding.state["orig_hw"]) != 1:
            raise ValueError("a SAM 2 embedding of one image has two high-resolution maps")
        return {
            "image_embed": _numpy(features["image_embed"]),
            "high_res_0": _numpy(high_res[0]),
            "high_res_1": _numpy(high_res[1]),
            "orig_hw": np.asarray(embedding.state["orig_hw"][0], np.int64),
        }

    def decode(self, arrays: Mapping[str, np.ndarray]) -> Embedding:
        import torch

        tensors = {name: torch.from_numpy(_expect(arrays, name, shape)).to(self.device) for name, shape in self.shapes.items()}
        features = {"image_embed": tensors["image_embed"], "high_res_feats": [tensors["high_res_0"], tensors["high_res_1"]]}
        return Embedding({"features": features, "orig_hw": [_size(arrays, "orig_hw")]}, _tensor_bytes(*tensors.values()))

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
    """How the embedding caches have served this process (for tests, benches and logs)."""

    hits: int = 0  # prompts answered from this process's memory
    misses: int = 0  # prompts that ran the image encoder
    evictions: int = 0  # embeddings dropped from memory to stay under its bound
    disk_hits: int = 0  # prompts answered from an embedding file (another process's, or an evicted one)
    disk_evictions: int = 0  # files this process removed to keep the folder under its bound
    disk_errors: int = 0  # files that could not be read back (removed) or written


#: The layout of the files. A change to what is written must change this, so that files in the
#: old layout are never read as the new one (they are simply never asked for, and age out).
_DISK_FORMAT = "sam-embedding-1"
_DISK_NAME = re.compile(r"[0-9a-f]{64}\.npz")
#: A temporary file this old was left by a process killed while writing it.
_STALE_TEMPORARY_SECONDS = 3600


def _stable_repr(value: object) -> str | None:
    """The same text in every process for keys made of numbers, strings and tuples; None for others."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return repr(value)
    if isinstance(value, tuple):
        parts = [_stable_repr(part) for part in value]
        return None if any(part is None for part in parts) else "(" + ", ".join(parts) + ",)"  # type: ignore[arg-type]
    return None


class _DiskCache:
    """Embeddings as ``.npz`` files in one folder, shared by every process given it, bounded in bytes.

    A file's name is the SHA-256 of its key, so no key can name a path outside the folder, and the
    key is stored in the file too (checked on reading). Files are written under a temporary name
    and renamed into place (``os.replace``), so a reader sees a whole file or none; one that cannot
    be read back anyway (a truncated or damaged file: the zip's checksums catch it; arrays that do
    not fit the model) is a miss and is removed. No pickle: arrays only, read with
    ``allow_pickle=False``. A file's mtime is its last use, set when written and on each hit;
    after a write the least recently used files go until the folder is under its bound. No lock
    is needed between processes: rename and unlink are atomic, a file removed while another
    process reads it stays readable to that reader (POSIX), and processes evicting at the same
    time pick the same oldest files. Errors of the file system are logged, never raised: the
    cache only saves time.
    """

    def __init__(self, folder: Path, max_bytes: int, stats: CacheStats) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.stats = stats

    def path(self, key: str) -> Path:
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()}.npz"

    def get(self, key: str, decode: Callable[[Mapping[str, np.ndarray]], Embedding]) -> Embedding | None:
        path = self.path(key)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            return None
        except OSError as exc:  # the folder itself is unreadable: nothing to remove
            self.stats.disk_errors += 1
            logger.warning("SAM embedding files in %s cannot be read (%s)", self.folder, exc)
            return None
        try:
            with handle, np.load(handle, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            if str(arrays.pop("cache_key", "")) != key:
                raise ValueError("the file holds another key")
            embedding = decode(arrays)
        except Exception as exc:  # noqa: BLE001 - numpy and zipfile raise many types for a damaged file
            self.stats.disk_errors += 1
            logger.warning("SAM embedding file %s cannot be read back (%s: %s); removed", path.name, type(exc).__name__, exc)
            path.unlink(missing_ok=True)
            return None
        self._touch(path)
        return embedding

    def put(self, key: str, arrays: dict[str, np.ndarray], nbytes: int) -> None:
        if nbytes > self.max_bytes:
            return
        temporary = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
            members: dict[str, Any] = {"cache_key": np.array(key), **arrays}
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, allow_pickle=False, **members)
            self._touch(Path(temporary))
            os.replace(temporary, self.path(key))
            temporary = None
            self._evict()
        except OSError as exc:  # a full disk or a read-only folder: the prompt is answered all the same
            self.stats.disk_errors += 1
            logger.warning("SAM embedding not written to %s (%s)", self.folder, exc)
        finally:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)

    @staticmethod
    def _touch(path: Path) -> None:
        # An explicit time: the file system's own clock may be too coarse to order two quick uses.
        now = time.time_ns()
        try:
            os.utime(path, ns=(now, now))
        except OSError:
            pass  # removed meanwhile by another process

    def _evict(self) -> None:
        files: list[tuple[int, str, int]] = []
        stale = time.time() - _STALE_TEMPORARY_SECONDS
        with os.scandir(self.folder) as entries:
            for entry in entries:
                try:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if _DISK_NAME.fullmatch(entry.name):
                    files.append((info.st_mtime_ns, entry.name, info.st_size))
                elif entry.name.startswith(".") and entry.name.endswith(".tmp") and info.st_mtime < stale:
                    Path(entry.path).unlink(missing_ok=True)
        total = sum(size for _, _, size in files)
        for _, name, size in sorted(files):
            if total <= self.max_bytes:
                break
            (self.folder / name).unlink(missing_ok=True)
            total -= size
            self.stats.disk_evictions += 1


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

    One instance per process: each web process holds one (annotator.learning). With a
    ``disk_cache_dir``, embeddings are also written there as files (at most ``disk_cache_bytes``
    in all), which every process given the same folder reads: a prompt on an image that another
    process embedded loads the file instead of running the encoder. docs/sam.md has the
    measurements behind both levels.
    """

    cache_bytes: int = DEFAULT_CACHE_BYTES
    device: str | None = None
    stats: CacheStats = field(default_factory=CacheStats)
    disk_cache_dir: str | Path | None = None
    disk_cache_bytes: int = DEFAULT_DISK_CACHE_BYTES

    def __post_init__(self) -> None:
        self._engines: dict[str, _Engine] = {}
        self._identities: dict[str, str] = {}
        self._checkpoints: dict[str, SamCheckpoint] = {}
        self._cache = _EmbeddingCache(self.cache_bytes, self.stats)
        self._disk = (
            _DiskCache(Path(self.disk_cache_dir), self.disk_cache_bytes, self.stats)
            if self.disk_cache_dir is not None and self.disk_cache_bytes > 0 else None
        )
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
                identity = self._checkpoint_identity(ckpt)
                engine = self._engines[ckpt.path] = _ENGINES[ckpt.family](ckpt, device)
                self._identities[ckpt.path] = identity
            key = (ckpt.path, image_key)
            embedding = self._cache.get(key) if image_key is not None else None
            if embedding is not None:
                self.stats.hits += 1
            else:
                embedding = self._embedding(engine, image, image_key, self._identities[ckpt.path])
                if image_key is not None and embedding.nbytes <= self.cache_bytes:
                    self._cache[key] = embedding
            masks, scores = engine.predict(embedding, points=coords, labels=point_labels, box=box_xyxy, multimask=multimask)
        order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
        return [Candidate(np.asarray(masks[i], dtype=bool), float(scores[i])) for i in order]

    @staticmethod
    def _checkpoint_identity(ckpt: SamCheckpoint) -> str:
        """The checkpoint as the embedding files name it: its file's path, size and mtime, read as it is loaded.

        Files outlive processes, so the path alone is not enough: a file replaced under the same
        name is another model, whose embeddings must not be mixed with the old one's.
        """
        info = os.stat(ckpt.path)
        return f"{os.path.realpath(ckpt.path)}|{info.st_size}|{info.st_mtime_ns}|{ckpt.family}/{ckpt.variant}"

    def _embedding(self, engine: _Engine, image: np.ndarray, image_key: Hashable | None, identity: str) -> Embedding:
        """The image's embedding from the shared files when one is there, else from the encoder (then written there)."""
        shared = _stable_repr(image_key) if self._disk is not None and image_key is not None else None
        disk_key = f"{_DISK_FORMAT}\n{identity}\n{shared}" if shared is not None else None
        if self._disk is not None and disk_key is not None:
            found = self._disk.get(disk_key, engine.decode)
            if found is not None:
                self.stats.disk_hits += 1
                return found
        self.stats.misses += 1
        embedding = engine.embed(image)
        if self._disk is not None and disk_key is not None:
            try:
                arrays = engine.encode(embedding)
            except (TypeError, ValueError) as exc:  # e.g. a bfloat16 map, which numpy cannot hold
                logger.warning("SAM embedding not shareable (%s)", exc)
            else:
                self._disk.put(disk_key, arrays, embedding.nbytes)
        return embedding
