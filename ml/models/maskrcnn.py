"""torchvision Mask R-CNN behind the SegmentationModel interface: building, checkpoints, inference, training.

Three architectures:

* ``maskrcnn_resnet50_fpn`` / ``maskrcnn_resnet50_fpn_v2`` — torchvision's full models, for a GPU
  worker; fine-tuned from COCO weights when those are available.
* ``small`` — a light convolutional backbone with an FPN, small input sizes and few proposals, so
  a CPU-only worker can train a project model from scratch in minutes.

Checkpoints are either our own format (a dict with ``arch``, ``class_names``, ``state_dict``,
``config``, ``metrics``) or a raw torchvision ``state_dict`` (e.g. the COCO file from
download.pytorch.org copied onto an offline machine).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.models import resnet50
from torchvision.models.detection import (
    MaskRCNN,
    MaskRCNN_ResNet50_FPN_V2_Weights,
    MaskRCNN_ResNet50_FPN_Weights,
    maskrcnn_resnet50_fpn_v2,
)
from torchvision.models.detection._utils import overwrite_eps
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN, _resnet_fpn_extractor
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads
from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor as MaskHeadPredictor
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.models.detection.transform import resize_boxes
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.misc import FrozenBatchNorm2d

from ml.metrics import evaluate_model
from ml.models.base import (
    ARCHS,
    CheckpointError,
    FitResult,
    Instance,
    ModelError,
    Prediction,
    ProgressCallback,
    SegmentationModel,
    StopCallback,
    TrainingCancelled,
    TrainingSample,
    WeightsUnavailable,
)

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "annotator.maskrcnn/1"
#: Environment variable / setting name that deployments use to point a worker at a local checkpoint.
CHECKPOINT_SETTING = "ANNOTATOR_COCO_CHECKPOINT"

_COCO_WEIGHTS = {
    "maskrcnn_resnet50_fpn": MaskRCNN_ResNet50_FPN_Weights.DEFAULT,
    "maskrcnn_resnet50_fpn_v2": MaskRCNN_ResNet50_FPN_V2_Weights.DEFAULT,
}
#: Predictor-head parameters that depend on the number of classes; everything else transfers.
_CLASS_DEPENDENT_PREFIXES = ("roi_heads.box_predictor.", "roi_heads.mask_predictor.mask_fcn_logits.")


def coco_class_names(arch: str = "maskrcnn_resnet50_fpn") -> list[str]:
    """The 90 COCO category names (index 1..90 of torchvision's labels; 'N/A' marks unused ids)."""
    weights = _COCO_WEIGHTS.get(arch, MaskRCNN_ResNet50_FPN_Weights.DEFAULT)
    return list(weights.meta["categories"][1:])


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The requested device, or CUDA when available, else CPU."""
    if device is not None and str(device) != "auto":
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# --------------------------------------------------------------------------------------------
# Building


class _ConvBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class _SmallBody(nn.Module):
    """A plain strided CNN (strides 4, 8, 16, 32): cheap enough to train from scratch on a CPU."""

    def __init__(self, widths: Sequence[int] = (32, 64, 96, 128)) -> None:
        super().__init__()
        self.stem = nn.Sequential(_ConvBlock(3, widths[0] // 2, 2), _ConvBlock(widths[0] // 2, widths[0], 2))
        self.layer1 = _ConvBlock(widths[0], widths[0], 1)
        stages = []
        for cin, cout in zip(widths[:-1], widths[1:]):
            stages.append(nn.Sequential(_ConvBlock(cin, cout, 2), _ConvBlock(cout, cout, 1)))
        self.layer2, self.layer3, self.layer4 = stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BackboneWithFPN reads the intermediate outputs by name; this is never called directly.
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


def _build_small(num_classes: int, *, fpn_channels: int = 64, **kwargs: Any) -> MaskRCNN:
    widths = (32, 64, 96, 128)
    backbone = BackboneWithFPN(
        _SmallBody(widths),
        return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
        in_channels_list=list(widths),
        out_channels=fpn_channels,
    )
    # Objects in the small configuration are 10-150 px at input sizes of ~128-320 px, so the anchors
    # start smaller than torchvision's 32 px default.
    anchors = AnchorGenerator(sizes=((12,), (24,), (48,), (96,), (192,)), aspect_ratios=((0.5, 1.0, 2.0),) * 5)
    box_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2", "3"], output_size=7, sampling_ratio=2)
    mask_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2", "3"], output_size=14, sampling_ratio=2)
    defaults: dict[str, Any] = {
        "min_size": 128,
        "max_size": 320,
        "rpn_pre_nms_top_n_train": 600,
        "rpn_post_nms_top_n_train": 300,
        "rpn_pre_nms_top_n_test": 300,
        "rpn_post_nms_top_n_test": 150,
        "rpn_batch_size_per_image": 128,
        "box_batch_size_per_image": 128,
        "box_detections_per_img": 50,
    }
    defaults.update(kwargs)
    return MaskRCNN(
        backbone,
        num_classes=None,
        rpn_anchor_generator=anchors,
        box_roi_pool=box_pool,
        box_head=TwoMLPHead(fpn_channels * 7 * 7, 256),
        box_predictor=FastRCNNPredictor(256, num_classes + 1),
        mask_roi_pool=mask_pool,
        mask_head=MaskRCNNHeads(fpn_channels, [fpn_channels] * 3, 1),
        mask_predictor=MaskHeadPredictor(fpn_channels, fpn_channels, num_classes + 1),
        **defaults,
    )


def build_model(
    arch: str,
    num_classes: int,
    *,
    trainable_backbone_layers: int = 3,
    **kwargs: Any,
) -> MaskRCNN:
    """An untrained Mask R-CNN for ``num_classes`` object classes (background is added internally).

    ``kwargs`` go to torchvision's ``MaskRCNN`` (``min_size``, ``max_size``, ``box_detections_per_img``…).
    """
    if num_classes < 1:
        raise ModelError("a model needs at least one class")
    if arch == "small":
        return _build_small(num_classes, **kwargs)
    if arch == "maskrcnn_resnet50_fpn":
        # Frozen batch norm, as torchvision builds it whenever pretrained weights are involved: the
        # COCO state_dict has no num_batches_tracked entries and was trained with eps=0.
        body = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
        model = MaskRCNN(_resnet_fpn_extractor(body, trainable_backbone_layers), num_classes=num_classes + 1, **kwargs)
        overwrite_eps(model, 0.0)
        return model
    if arch == "maskrcnn_resnet50_fpn_v2":
        return maskrcnn_resnet50_fpn_v2(
            weights=None,
            weights_backbone=None,
            num_classes=num_classes + 1,
            trainable_backbone_layers=trainable_backbone_layers,
            **kwargs,
        )
    raise ModelError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")


# --------------------------------------------------------------------------------------------
# Weights and checkpoints


def coco_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """torchvision's COCO weights for ``arch`` (from the torch hub cache, or downloaded).

    Raises WeightsUnavailable with a pointer to the checkpoint setting when they cannot be fetched.
    """
    weights = _COCO_WEIGHTS.get(arch)
    if weights is None:
        raise WeightsUnavailable(
            f"there are no COCO weights for architecture {arch!r}; train it from scratch (init_from=None) "
            f"or use one of {', '.join(_COCO_WEIGHTS)}"
        )
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # URLError, OSError, hash mismatch: all mean "no usable weights here"
        raise WeightsUnavailable(
            f"could not load pretrained COCO weights {weights} for {arch} from {weights.url} "
            f"({type(exc).__name__}: {exc}). This machine probably has no internet access: download the file "
            f"elsewhere and point the {CHECKPOINT_SETTING} setting (checkpoint path) at it, or put it in the "
            f"torch hub cache ({torch.hub.get_dir()}/checkpoints/)."
        ) from exc


def _infer_arch(state_dict: dict[str, torch.Tensor]) -> str:
    if "backbone.body.stem.0.0.weight" in state_dict:
        return "small"
    if "roi_heads.box_head.fc6.weight" in state_dict and "backbone.body.layer4.0.conv1.weight" in state_dict:
        return "maskrcnn_resnet50_fpn"
    if "roi_heads.box_head.0.0.weight" in state_dict:
        return "maskrcnn_resnet50_fpn_v2"
    raise CheckpointError("cannot tell the architecture of this state_dict; pass arch= explicitly")


def _class_count(state_dict: dict[str, torch.Tensor]) -> int:
    weight = state_dict.get("roi_heads.box_predictor.cls_score.weight")
    if weight is None:
        raise CheckpointError("state_dict has no roi_heads.box_predictor.cls_score.weight: not a Mask R-CNN")
    return int(weight.shape[0]) - 1


def _read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path} (check the {CHECKPOINT_SETTING} setting)")
    try:
        # weights_only: a checkpoint is data, never code to execute.
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: not a valid torch file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(data).__name__}, expected a dict")
    return data


def load_state_into(model: nn.Module, state_dict: dict[str, torch.Tensor], *, allow_new_classes: bool) -> None:
    """Load weights; with ``allow_new_classes`` the class-dependent predictor heads may differ (fine-tuning)."""
    if allow_new_classes:
        own = model.state_dict()
        state_dict = {
            key: value
            for key, value in state_dict.items()
            if not (key.startswith(_CLASS_DEPENDENT_PREFIXES) and key in own and own[key].shape != value.shape)
        }
    try:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint does not fit the model: {exc}") from exc
    allowed_missing = [k for k in missing if allow_new_classes and k.startswith(_CLASS_DEPENDENT_PREFIXES)]
    bad_missing = sorted(set(missing) - set(allowed_missing))
    if bad_missing or unexpected:
        raise CheckpointError(
            f"checkpoint does not fit the model: missing {bad_missing[:5]}{'…' if len(bad_missing) > 5 else ''}, "
            f"unexpected {list(unexpected)[:5]}{'…' if len(unexpected) > 5 else ''}"
        )


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: nn.Module,
    arch: str,
    class_names: Sequence[str],
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint in our format atomically (a crashed worker never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "arch": arch,
        "class_names": list(class_names),
        "config": dict(config or {}),
        "metrics": dict(metrics or {}),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


@dataclass
class LoadedCheckpoint:
    model: MaskRCNN
    arch: str
    class_names: list[str]
    config: dict[str, Any]
    metrics: dict[str, Any]


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    arch: str | None = None,
    class_names: Sequence[str] | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> LoadedCheckpoint:
    """Load our checkpoint format or a raw torchvision state_dict.

    For a raw state_dict the architecture is inferred from its keys unless given; class names
    default to COCO's when it has the 90 COCO classes, otherwise they must be passed.
    """
    data = _read_checkpoint(path)
    if "state_dict" in data and "arch" in data:
        state_dict = data["state_dict"]
        arch = arch or data["arch"]
        if arch != data["arch"]:
            raise CheckpointError(f"checkpoint {path} is a {data['arch']} model, not {arch}")
        names = list(class_names) if class_names is not None else list(data.get("class_names") or [])
        config = dict(data.get("config") or {})
        metrics = dict(data.get("metrics") or {})
    elif data and all(isinstance(v, torch.Tensor) for v in data.values()):
        state_dict = data
        arch = arch or _infer_arch(state_dict)
        count = _class_count(state_dict)
        if class_names is not None:
            names = list(class_names)
        elif count == 90:
            names = coco_class_names(arch)
        else:
            raise CheckpointError(
                f"raw state_dict {path} has {count} classes and no class names; pass class_names"
            )
        config, metrics = {}, {}
    else:
        raise CheckpointError(f"checkpoint {path} is neither our format nor a torchvision state_dict")
    if arch not in ARCHS:
        raise CheckpointError(f"checkpoint {path} has unknown architecture {arch!r}")
    count = _class_count(state_dict)
    if len(names) != count:
        raise CheckpointError(f"checkpoint {path} predicts {count} classes but {len(names)} class names were given")
    build_kwargs = dict(config.get("model_kwargs") or {})
    build_kwargs.update(model_kwargs or {})
    model = build_model(arch, count, **build_kwargs)
    load_state_into(model, state_dict, allow_new_classes=False)
    return LoadedCheckpoint(model=model, arch=arch, class_names=names, config=config, metrics=metrics)


# --------------------------------------------------------------------------------------------
# Inference


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ModelError(f"expected an RGB uint8 image (H, W, 3), got {image.shape} {image.dtype}")
    # A read-only array (the web process's shared image cache) is copied: torch tensors are writable.
    array = np.ascontiguousarray(image) if image.flags.writeable else image.copy()
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)


#: torchvision pastes each mask into its box grown by (M + 2) / M (M: the mask head's resolution, 28;
#: roi_heads.paste_masks_in_image); the bounds allow for M down to 8, and for rounding.
_PASTE_GROWTH = 1.25


def _paste_bounds(boxes: torch.Tensor, shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) per detection box (x0, y0, x1, y1 in pixels) that hold every pixel its mask was pasted on."""
    height, width = int(shape[0]), int(shape[1])
    out = []
    for bx0, by0, bx1, by1 in boxes.cpu().tolist():
        half_w, half_h = (bx1 - bx0) * 0.5 * _PASTE_GROWTH + 2, (by1 - by0) * 0.5 * _PASTE_GROWTH + 2
        cx, cy = (bx0 + bx1) * 0.5, (by0 + by1) * 0.5
        out.append((max(0, math.floor(cx - half_w)), max(0, math.floor(cy - half_h)),
                    min(width, math.ceil(cx + half_w) + 1), min(height, math.ceil(cy + half_h) + 1)))
    return out


class MaskRCNNSegmenter(SegmentationModel):
    """A loaded Mask R-CNN that predicts instances; one instance per worker process (see get_model)."""

    def __init__(
        self,
        model: MaskRCNN,
        class_names: Sequence[str],
        *,
        arch: str,
        config: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        self.arch = arch
        self.config = dict(config or {})
        self.metrics = dict(metrics or {})
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self._class_names = list(class_names)

    @property
    def class_names(self) -> list[str]:
        return list(self._class_names)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        *,
        arch: str | None = None,
        class_names: Sequence[str] | None = None,
        device: str | torch.device | None = None,
    ) -> MaskRCNNSegmenter:
        loaded = load_checkpoint(path, arch=arch, class_names=class_names)
        return cls(
            loaded.model, loaded.class_names, arch=loaded.arch, config=loaded.config, metrics=loaded.metrics, device=device
        )

    @classmethod
    def from_pretrained(cls, arch: str = "maskrcnn_resnet50_fpn", *, device: str | torch.device | None = None) -> MaskRCNNSegmenter:
        """torchvision's COCO model (needs the weights in the hub cache or network access)."""
        state = coco_state_dict(arch)
        model = build_model(arch, 90)
        load_state_into(model, state, allow_new_classes=False)
        return cls(model, coco_class_names(arch), arch=arch, device=device)

    def predict(
        self, images: Sequence[np.ndarray], *, threshold: float = 0.5, batch_size: int = 4
    ) -> list[Prediction]:
        results: list[Prediction] = []
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                batch = [_to_tensor(image).to(self.device) for image in images[start : start + batch_size]]
                for output in self.model(batch):
                    results.append(self._instances(output, threshold))
        return results

    def _instances(self, output: dict[str, torch.Tensor], threshold: float) -> Prediction:
        keep = output["scores"] >= threshold
        scores = output["scores"][keep].cpu().numpy()
        labels = output["labels"][keep].cpu().numpy()
        # Masks are per-pixel probabilities pasted into the full image; 0.5 is torchvision's own cut.
        # The cut is written column-major (each mask an (H, W) view of W x H memory): COCO RLE
        # runs down the columns, so pycocotools encodes these masks without a transposing copy,
        # which cost more than the cut itself.
        probabilities = output["masks"][keep, 0].cpu()
        columns = torch.empty(probabilities.shape[0], probabilities.shape[2], probabilities.shape[1], dtype=torch.bool)
        torch.gt(probabilities.transpose(1, 2), 0.5, out=columns)
        masks = columns.numpy().transpose(0, 2, 1)
        instances = []
        for score, label, mask, bounds in zip(scores, labels, masks, _paste_bounds(output["boxes"][keep], masks.shape[1:])):
            x0, y0, x1, y1 = bounds
            if not mask[y0:y1, x0:x1].any():
                continue  # a box whose mask vanished at 0.5 has no geometry to offer
            instances.append(Instance(label=self._class_names[int(label) - 1], score=float(score), mask=mask, bounds=bounds))
        return instances

    def segment_box(self, image: np.ndarray, box: Sequence[float], *, label: str | None = None) -> tuple[np.ndarray, str]:
        """The mask head's mask for the object in ``box`` = [x, y, w, h]: the box is the proposal.

        ``label`` is the class whose mask channel is read (the class a person is drawing); when
        it is None or not one of the model's classes, the box head's most likely class is used.
        Returns the full-image boolean mask and the class used. The mask may be empty when the
        model sees nothing in the box; the caller decides what to offer instead.
        """
        height, width = image.shape[:2]
        x, y, w, h = (float(v) for v in box)
        if not (w > 0 and h > 0):
            raise ModelError(f"box must have a positive width and height, got {w} x {h}")
        model = self.model
        model.eval()
        with torch.inference_mode():
            tensor = _to_tensor(image).to(self.device)
            batch, _ = model.transform([tensor])
            features = model.backbone(batch.tensors)
            original = torch.tensor([[x, y, x + w, y + h]], dtype=torch.float32, device=self.device)
            proposal = resize_boxes(original, (height, width), batch.image_sizes[0])
            heads = model.roi_heads
            if label in self._class_names:
                index = self._class_names.index(label) + 1
            else:
                pooled = heads.box_head(heads.box_roi_pool(features, [proposal], batch.image_sizes))
                class_logits, _ = heads.box_predictor(pooled)
                index = int(class_logits[0, 1:].argmax()) + 1
            mask_features = heads.mask_head(heads.mask_roi_pool(features, [proposal], batch.image_sizes))
            logits = heads.mask_predictor(mask_features)
            probabilities = logits[:, index : index + 1].sigmoid()
            # Pasted into the original image through the box in its coordinates, as torchvision's
            # own postprocess does; 0.5 is its cut too.
            pasted = paste_masks_in_image(probabilities, original, (height, width))
        return (pasted[0, 0] > 0.5).cpu().numpy(), self._class_names[index - 1]

    def save(self, path: str | os.PathLike[str]) -> Path:
        return save_checkpoint(
            path, model=self.model, arch=self.arch, class_names=self._class_names, config=self.config, metrics=self.metrics
        )

    def fit(
        self,
        dataset: Sequence[TrainingSample],
        *,
        config: TrainConfig,
        progress: ProgressCallback | None = None,
        should_stop: StopCallback | None = None,
    ) -> FitResult:
        """Train a new version; with ``config.init_from == "self"`` it starts from this model's weights."""
        return train(dataset, config=config, progress=progress, should_stop=should_stop, start_model=self)


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to load a model: a checkpoint path, or None for torchvision's COCO weights."""

    checkpoint: str | None = None
    arch: str | None = None
    device: str | None = None


_CACHE: dict[tuple[Any, ...], MaskRCNNSegmenter] = {}
_CACHE_LOCK = threading.Lock()


def get_model(spec: ModelSpec) -> MaskRCNNSegmenter:
    """Load a model once per process and reuse it; a checkpoint rewritten on disk is reloaded."""
    if spec.checkpoint is not None:
        try:
            stat = os.stat(spec.checkpoint)
        except OSError as exc:
            raise CheckpointError(
                f"checkpoint file not found: {spec.checkpoint} (check the {CHECKPOINT_SETTING} setting)"
            ) from exc
        key: tuple[Any, ...] = (spec, stat.st_mtime_ns, stat.st_size)
    else:
        key = (spec,)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is None:
            if spec.checkpoint is not None:
                cached = MaskRCNNSegmenter.from_checkpoint(spec.checkpoint, arch=spec.arch, device=spec.device)
            else:
                cached = MaskRCNNSegmenter.from_pretrained(spec.arch or "maskrcnn_resnet50_fpn", device=spec.device)
            # Only the newest version of one spec stays in memory.
            for old in [k for k in _CACHE if k[0] == spec]:
                del _CACHE[old]
            _CACHE[key] = cached
        return cached


def clear_model_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


# --------------------------------------------------------------------------------------------
# Training


@dataclass
class TrainConfig:
    """Knobs of one training run. ``lr=None`` picks a sensible default for the architecture."""

    arch: str = "small"
    class_names: list[str] | None = None
    epochs: int = 10
    batch_size: int = 4
    lr: float | None = None
    weight_decay: float = 1e-4
    #: Share of the samples kept aside for evaluation (mask mAP); 0 disables evaluation.
    held_out: float = 0.2
    seed: int = 0
    #: None (from scratch), "coco" (torchvision weights), "self" (the model fit() is called on) or a checkpoint path.
    init_from: str | None = None
    device: str | None = None
    hflip: bool = True
    #: Score threshold for the evaluation detections; low, because AP integrates over all scores.
    eval_threshold: float = 0.05
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    output_path: str | None = None


def _target(sample: TrainingSample, class_index: dict[str, int]) -> dict[str, torch.Tensor]:
    boxes, labels, masks = [], [], []
    for label, mask in sample.objects:
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            continue
        # Pixel (i, j) covers [j, j+1] x [i, i+1], so the box ends one past the last pixel.
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        labels.append(class_index[label])
        masks.append(mask)
    height, width = sample.image.shape[:2]
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "masks": torch.from_numpy(np.stack(masks).astype(np.uint8)) if masks else torch.zeros((0, height, width), dtype=torch.uint8),
    }


def _check_labels(sample: TrainingSample, class_names: Collection[str]) -> None:
    unknown = sorted({label for label, _ in sample.objects} - set(class_names))
    if unknown:
        where = f"sample {sample.key}" if sample.key is not None else "a sample"
        raise ModelError(f"{where} uses labels that are not among the model classes: {unknown}")


def _hflip(image: torch.Tensor, target: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    width = image.shape[-1]
    boxes = target["boxes"].clone()
    boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
    return image.flip(-1), {"boxes": boxes, "labels": target["labels"], "masks": target["masks"].flip(-1)}


def split_held_out(count: int, share: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic (train, held-out) index split; at least one image on each side when possible."""
    order = np.random.default_rng(seed).permutation(count).tolist()
    if share <= 0 or count < 2:
        return order, []
    held = min(count - 1, max(1, round(share * count)))
    return sorted(order[held:]), sorted(order[:held])


def _default_lr(arch: str, batch_size: int) -> float:
    if arch == "small":
        return 2e-3  # AdamW, from scratch: measured on the synthetic benchmark
    # SGD with torchvision's reference recipe (0.02 for 16 images per step), scaled linearly.
    return 0.02 * batch_size / 16


def train(
    samples: Sequence[TrainingSample],
    *,
    config: TrainConfig,
    output_path: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    start_model: MaskRCNNSegmenter | None = None,
) -> FitResult:
    """Train a Mask R-CNN on ``samples``, evaluate it on the held-out share, save a checkpoint.

    ``progress(iteration, total_iterations, info)`` is called after every iteration with the loss;
    ``should_stop()`` is polled before each one and raises TrainingCancelled when it returns True.
    """
    output = output_path or config.output_path
    if output is None:
        raise ModelError("train() needs an output_path for the checkpoint")
    class_names = list(config.class_names or (start_model.class_names if start_model else []))
    if not class_names:
        class_names = sorted({label for sample in samples for label, _ in sample.objects})
    if not class_names:
        raise ModelError("no class names given and the samples have no labelled objects")
    if len(samples) == 0:
        raise ModelError("cannot train on an empty dataset")

    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    arch = start_model.arch if config.init_from == "self" and start_model else config.arch
    model_kwargs = dict(config.model_kwargs)
    model = build_model(arch, len(class_names), **model_kwargs)
    if config.init_from == "coco":
        load_state_into(model, coco_state_dict(arch), allow_new_classes=True)
    elif config.init_from == "self":
        if start_model is None:
            raise ModelError('init_from="self" needs a model to start from')
        load_state_into(model, start_model.model.state_dict(), allow_new_classes=True)
    elif config.init_from:
        initial = _read_checkpoint(config.init_from)
        load_state_into(model, initial.get("state_dict", initial), allow_new_classes=True)
    model.to(device)

    train_idx, held_idx = split_held_out(len(samples), config.held_out, config.seed)
    class_index = {name: i + 1 for i, name in enumerate(class_names)}

    def example(position: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # Read when its batch comes: `samples` may be a lazy sequence (a project's accepted images),
        # so a training run holds one batch of pixels rather than the whole dataset.
        sample = samples[train_idx[position]]
        _check_labels(sample, class_index)
        return _to_tensor(sample.image), _target(sample, class_index)


    params = [p for p in model.parameters() if p.requires_grad]
    lr = config.lr or _default_lr(arch, config.batch_size)
    if arch == "small":
        optimizer: torch.optim.Optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(train_idx) / config.batch_size)
    total = steps_per_epoch * config.epochs
    warmup = min(50, max(1, total // 10))

    def lr_factor(step: int) -> float:
        # Linear warm-up (Mask R-CNN diverges easily in its first steps), then cosine decay.
        if step < warmup:
            return (step + 1) / warmup
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    rng = np.random.default_rng(config.seed)
    curve: list[dict[str, Any]] = []
    iteration = 0
    model.train()
    for epoch in range(config.epochs):
        started = time.perf_counter()
        sums: dict[str, float] = {}
        order = rng.permutation(len(train_idx))
        for start in range(0, len(order), config.batch_size):
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"training cancelled after {iteration} iterations", iterations_done=iteration)
            images, targets = [], []
            for i in order[start : start + config.batch_size]:
                image, target = example(int(i))
                if config.hflip and rng.random() < 0.5:
                    image, target = _hflip(image, target)
                images.append(image.to(device))
                targets.append({k: v.to(device) for k, v in target.items()})
            losses = model(images, targets)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                raise ModelError(f"training diverged at iteration {iteration} (loss {loss.item()}); lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            optimizer.step()
            scheduler.step()
            iteration += 1
            sums["loss"] = sums.get("loss", 0.0) + loss.item()
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + value.item()
            if progress is not None:
                progress(iteration, total, {"epoch": epoch + 1, "loss": loss.item(), "lr": optimizer.param_groups[0]["lr"]})
        steps = math.ceil(len(order) / config.batch_size)
        entry = {"epoch": epoch + 1, **{k: v / steps for k, v in sums.items()}, "seconds": time.perf_counter() - started}
        curve.append(entry)
        logger.info("epoch %d/%d loss %.4f (%.1fs)", epoch + 1, config.epochs, entry["loss"], entry["seconds"])

    config_record = {k: v for k, v in asdict(config).items() if k not in ("output_path",)}
    config_record["arch"] = arch
    config_record["class_names"] = class_names
    segmenter = MaskRCNNSegmenter(model, class_names, arch=arch, config=config_record, device=device)
    metrics: dict[str, Any] = {"train_images": len(train_idx), "held_out_images": len(held_idx), "iterations": iteration}
    if held_idx:
        held = [samples[i] for i in held_idx]
        for sample in held:
            _check_labels(sample, class_names)
        metrics.update(evaluate_model(segmenter, held, categories=class_names, threshold=config.eval_threshold))
    segmenter.metrics = metrics
    path = segmenter.save(output)
    return FitResult(checkpoint_path=path, metrics=metrics, curve=curve)
