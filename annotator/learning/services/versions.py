"""Model versions: the COCO model, checkpoint files and trained versions of a project; activation; loading.

Loading goes through ml.models.maskrcnn.get_model, so a worker process loads each version once.
torch is imported only inside the functions that need it: the web process resolves and
activates versions without it.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotator.core.errors import DomainError
from annotator.projects.models import Project

from ..models import ModelKind, ModelVersion
from ..selectors import active_model_of

if TYPE_CHECKING:
    from ml.models.maskrcnn import MaskRCNNSegmenter, ModelSpec

COCO_VERSION_NAME = "COCO Mask R-CNN (torchvision)"
COCO_ARCH = "maskrcnn_resnet50_fpn"


def model_dir() -> Path:
    """The folder that holds trained checkpoints (and the only one web users may name files in)."""
    return Path(settings.ANNOTATOR_MODEL_DIR)


def model_version_coco(*, project: Project, user: AbstractBaseUser | None) -> ModelVersion:
    """The project's record of torchvision's COCO model (created the first time it is used)."""
    from ml.models.maskrcnn import coco_class_names

    version = ModelVersion.objects.filter(project=project, kind=ModelKind.COCO).order_by("id").first()
    if version is None:
        version = ModelVersion.objects.create(
            project=project, name=COCO_VERSION_NAME, kind=ModelKind.COCO, arch=COCO_ARCH,
            checkpoint=settings.ANNOTATOR_COCO_CHECKPOINT or "", class_names=coco_class_names(COCO_ARCH),
            params={"source": "torchvision weights enum" if not settings.ANNOTATOR_COCO_CHECKPOINT else "ANNOTATOR_COCO_CHECKPOINT"},
            created_by=user,
        )
    return version


def model_version_from_checkpoint(
    *, project: Project, path: str, user: AbstractBaseUser | None, allow_any_path: bool = False
) -> ModelVersion:
    """Register a checkpoint file as a model version of the project (once per path)."""
    from ml.models import CheckpointError
    from ml.models.maskrcnn import load_checkpoint

    try:
        resolved = Path(path).expanduser().resolve()
    except (OSError, ValueError, RuntimeError) as exc:
        raise DomainError(f"model: {path!r} is not a usable path ({exc})") from None
    if not allow_any_path and not resolved.is_relative_to(model_dir().resolve()):
        # A web user must not make the server open arbitrary files; commands run by the admin may.
        raise DomainError(f"model: a checkpoint path must lie under the model folder ({model_dir()})")
    existing = ModelVersion.objects.filter(project=project, kind=ModelKind.CHECKPOINT, checkpoint=str(resolved)).first()
    if existing is not None:
        return existing
    try:
        loaded = load_checkpoint(resolved)
    except CheckpointError as exc:
        raise DomainError(f"model: {exc}") from None
    return ModelVersion.objects.create(
        project=project, name=resolved.name, kind=ModelKind.CHECKPOINT, arch=loaded.arch, checkpoint=str(resolved),
        class_names=loaded.class_names, metrics=loaded.metrics, params={"source": "checkpoint file"}, created_by=user,
    )


def model_version_resolve(
    *, project: Project, model: str | int, user: AbstractBaseUser | None, allow_any_path: bool = False
) -> ModelVersion:
    """`model` is "active", "coco", a model version id of this project, or a checkpoint path."""
    if isinstance(model, int) or (isinstance(model, str) and model.isdigit()):
        version = ModelVersion.objects.filter(project=project, pk=int(model)).first()
        if version is None:
            raise DomainError(f"model: {model} is not a model version of this project")
        return version
    if not isinstance(model, str) or not model.strip():
        raise DomainError('model: give "active", "coco", a model version id or a checkpoint path')
    model = model.strip()
    if model == "active":
        version = active_model_of(project)
        if version is None:
            raise DomainError(
                'model: this project has no active model yet; train one, activate a version, or use model="coco"'
            )
        return version
    if model == "coco":
        return model_version_coco(project=project, user=user)
    return model_version_from_checkpoint(project=project, path=model, user=user, allow_any_path=allow_any_path)


@transaction.atomic
def model_version_activate(*, version: ModelVersion) -> ModelVersion:
    """Make `version` the project's active model (the one "active" pre-annotation uses)."""
    if version.kind != ModelKind.COCO and version.checkpoint and not Path(version.checkpoint).is_file():
        raise DomainError(f"The checkpoint of {version.name} is missing ({version.checkpoint}); it cannot be activated.")
    # Lock the project's versions so two managers activating at once end with exactly one active.
    list(ModelVersion.objects.select_for_update().filter(project=version.project_id).values_list("pk", flat=True))
    ModelVersion.objects.filter(project=version.project_id, is_active=True).exclude(pk=version.pk).update(is_active=False)
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
    version.is_active = True
    return version


def model_spec(version: ModelVersion) -> ModelSpec:
    from ml.models.maskrcnn import ModelSpec

    if version.kind == ModelKind.COCO:
        checkpoint = version.checkpoint or settings.ANNOTATOR_COCO_CHECKPOINT or None
        return ModelSpec(checkpoint=checkpoint, arch=version.arch)
    return ModelSpec(checkpoint=version.checkpoint)


def model_load(version: ModelVersion) -> MaskRCNNSegmenter:
    """The version's model, loaded once per worker process (ml.models.maskrcnn.get_model caches it)."""
    from ml.models import ModelError, WeightsUnavailable
    from ml.models.maskrcnn import get_model

    try:
        return get_model(model_spec(version))
    except WeightsUnavailable as exc:
        raise DomainError(
            f"{exc} On this server: run `python manage.py download_weights`, or copy the weights file here "
            "and set ANNOTATOR_COCO_CHECKPOINT to its path."
        ) from None
    except ModelError as exc:
        raise DomainError(f"Cannot load model {version.name}: {exc}") from None


def label_mapping_resolve(
    *, project: Project, class_names: Sequence[str], label_map: dict[str, Any] | None
) -> dict[str, int]:
    """Model class name → project label id.

    By default a class maps to the project label of the same name (case-insensitive); `label_map`
    entries ({class: label name or id, or null to drop}) override that. Classes left without a label
    are dropped from the predictions.
    """
    labels = list(project.labels.all())
    by_name = {label.name.lower(): label.pk for label in labels}
    ids = {label.pk for label in labels}
    mapping = {name: by_name[name.lower()] for name in class_names if name.lower() in by_name}
    if label_map is not None and not isinstance(label_map, dict):
        raise DomainError("label_map must be an object {model class: project label}")
    known = set(class_names)
    for cls, target in (label_map or {}).items():
        if cls not in known:
            sample = ", ".join(sorted(n for n in known if n != "N/A")[:12])
            raise DomainError(f"label_map: the model has no class {cls!r} (it knows: {sample}…)")
        if target is None or target == "":
            mapping.pop(cls, None)
            continue
        if isinstance(target, int) and not isinstance(target, bool):
            if target not in ids:
                raise DomainError(f"label_map: {target} is not a label id of this project")
            mapping[cls] = target
        elif isinstance(target, str) and target.lower() in by_name:
            mapping[cls] = by_name[target.lower()]
        else:
            raise DomainError(f"label_map: {target!r} is not a label of this project")
    if not mapping:
        raise DomainError(
            "None of the model's classes matches a project label; give a label_map such as "
            '{"' + (class_names[0] if class_names else "class") + '": "<project label>"}'
        )
    return mapping
