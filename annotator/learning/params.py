"""The parameters of the learning jobs (pre-annotation, training, evaluation), validated in one place.

Each is a frozen dataclass that checks itself when it is made, so the API, the models page, the
management commands and the job handlers share the rules: a bad value is a DomainError (400)
naming the parameter, whichever door it came in by, and a job reads back (``from_dict`` on its
stored params) exactly what was checked when it was started. Checks that need the database (do
these images exist, which model is "active") belong to the start services.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from annotator.core.errors import DomainError
from ml.models import ARCHS
from ml.nms import DEFAULT_NMS_IOU

MAX_BATCH = 64
MAX_TRAIN_BATCH = 32
MAX_EPOCHS = 500
SCOPES = ("unannotated", "all")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_number(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise DomainError(f"{name} must be a number between {low:g} and {high:g}")


def _check_integer(name: str, value: Any, low: int, high: int, unit: str = "") -> None:
    if value is not None and (not _is_int(value) or not low <= value <= high):
        raise DomainError(f"{name} must be an integer between {low} and {high}{unit}")


def _check_label_map(value: Any) -> None:
    if value is not None and (not isinstance(value, dict) or not all(isinstance(k, str) for k in value)):
        raise DomainError("label_map must be an object {model class: project label}")


def _check_resolved(version: Any, mapping: Any) -> None:
    if version is not None and not _is_int(version):
        raise DomainError("model_version must be a model version id")
    if mapping is not None and (not isinstance(mapping, dict) or not all(_is_int(v) for v in mapping.values())):
        raise DomainError("mapping must map model classes to label ids")


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``data`` that are fields of ``cls``; None means "the default"."""
    if not isinstance(data, Mapping):
        raise DomainError("the parameters must be an object")
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names and v is not None}


@dataclass(frozen=True)
class PreannotateParams:
    """What a pre-annotation runs: which model, which images, what to keep."""

    #: "active", "coco", a model version id, or a checkpoint path under the model folder.
    model: str = "active"
    threshold: float = 0.5
    #: Explicit image ids, or None for ``scope``; kept sorted and unique.
    images: tuple[int, ...] | None = None
    scope: str = "unannotated"
    #: {model class: project label name or id, or None to drop}; None: classes map to labels of their name.
    label_map: dict[str, Any] | None = None
    batch_size: int = 4
    #: Proposals of one label whose masks overlap more than this are one object: the best-scoring
    #: one is kept (1 keeps every proposal).
    nms_iou: float = DEFAULT_NMS_IOU
    # Resolved by the start service:
    model_version: int | None = None
    mapping: dict[str, int] | None = None

    def __post_init__(self) -> None:
        model = str(self.model) if _is_int(self.model) else self.model
        if not isinstance(model, str) or not model.strip():
            raise DomainError('model: give "active", "coco", a model version id or a checkpoint path')
        object.__setattr__(self, "model", model.strip())
        _check_number("threshold", self.threshold, 0, 1)
        if self.images is not None:
            if not isinstance(self.images, (list, tuple)) or not all(_is_int(v) for v in self.images):
                raise DomainError("images must be a list of ids")
            if not self.images:
                raise DomainError("images: the list is empty")
            object.__setattr__(self, "images", tuple(sorted(set(self.images))))
        if self.scope not in SCOPES:
            raise DomainError('scope must be "unannotated" or "all"')
        _check_label_map(self.label_map)
        if self.label_map == {}:
            object.__setattr__(self, "label_map", None)
        _check_integer("batch_size", self.batch_size, 1, MAX_BATCH)
        _check_number("nms_iou", self.nms_iou, 0, 1)
        _check_resolved(self.model_version, self.mapping)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreannotateParams:
        return cls(**_known(cls, data))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "images": list(self.images) if self.images is not None else None, "label_map": self.label_map or {}}


@dataclass(frozen=True)
class TrainParams:
    """One training round; None picks the machine's default (services.training.train_defaults)."""

    epochs: int | None = None
    #: Share of the accepted images kept aside for evaluation.
    held_out: float = 0.2
    arch: str | None = None
    batch_size: int | None = None
    #: Shorter image side the model works at.
    min_size: int | None = None
    #: Continue from the active trained version when it has the same architecture and classes.
    warm_start: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        _check_integer("epochs", self.epochs, 1, MAX_EPOCHS)
        _check_number("held_out", self.held_out, 0, 0.5)
        if self.arch is not None and self.arch not in ARCHS:
            raise DomainError(f"arch must be one of {', '.join(ARCHS)}")
        _check_integer("batch_size", self.batch_size, 1, MAX_TRAIN_BATCH)
        _check_integer("min_size", self.min_size, 64, 1333, " (pixels)")
        if not isinstance(self.warm_start, bool):
            raise DomainError("warm_start must be true or false")
        _check_integer("seed", self.seed, 0, 2**31 - 1)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainParams:
        return cls(**_known(cls, data))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EvaluateParams:
    """An evaluation of one model version on accepted images it did not train on."""

    label_map: dict[str, Any] | None = None
    # Resolved by the start service:
    model_version: int | None = None
    mapping: dict[str, int] | None = None

    def __post_init__(self) -> None:
        _check_label_map(self.label_map)
        _check_resolved(self.model_version, self.mapping)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluateParams:
        return cls(**_known(cls, data))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label_map": self.label_map or {}}
