"""The human-in-the-loop number: corrections per object, round after round, through the real services.

A project goes through the loop the product runs:

* round 0: people annotate the first batch from scratch (every object is an "add");
* each later round: train a model version on the accepted images (learning.services.model_train,
  continuing from the previous version), pre-annotate the next batch and a fixed held-out set
  (learning.services.preannotate), then the simulated annotator corrects the batch to ground truth
  and it is accepted.

The project's data (``--data``):

* ``synthetic`` (default): shapes with exact ground truth (ml.synthetic), 3 classes;
* ``coco_tinycoco``: the 38 COCO photos in shared/datasets (43 classes, cluttered scenes); the
  dataset's own split: its val images are the held-out set, its train images the round batches;
* a COCO file, zip or folder: imported the same way; with a ``val`` subset (instances_val*.json)
  that is the held-out set, otherwise ``--held-out`` images drawn with ``--seed``.

Real data comes in through the product's import (datasets.services.dataset_import: the COCO reader
and its repairs of odd geometry); the imported objects are the ground truth, then taken off the
images so that the project starts unannotated. Batches are drawn from the rest with ``--seed``.

Per round, on the held-out set (never trained on):

* mask AP and AP50: ml.metrics.evaluate_model of the version, all scores >= 0.05 (the number a model
  version records); "shown AP" is the AP of the proposals people see (score >= --threshold);
* corrections per object = (objects to add + proposals to delete + proposals to fix) / objects, where
  a proposal needs fixing when its label is wrong or its mask IoU with the matched object is below
  0.9 (ml.metrics.correction_stats with unchanged_iou=0.9; also printed with 0.75). It should go
  down from round to round; also measured on the batch people corrected;
* "kept@0.9": the share of held-out proposals a person could accept unchanged (right label, IoU >= 0.9);
  "page": the models page's own figures for the batch (share unchanged at IoU 0.99, mean IoU).

Run (CPU, the small model from scratch):

    .venv/bin/python bench/hitl_rounds.py [--rounds 4] [--batch 16] [--held-out 20] [--epochs 20] [--threads 1]
    .venv/bin/python bench/hitl_rounds.py --data coco_tinycoco --rounds 3 --epochs 6 --threads 1

On a GPU with COCO weights (ResNet-50 Mask R-CNN fine-tuned from torchvision's COCO checkpoint):

    .venv/bin/python manage.py download_weights      # or copy maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth by hand,
    export ANNOTATOR_COCO_CHECKPOINT=/path/to/maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth   # see docs/hitl.md
    .venv/bin/python bench/hitl_rounds.py --data coco_tinycoco --device cuda --arch maskrcnn_resnet50_fpn \\
        --weights coco --rounds 3 --epochs 10 --threads 4
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLASSES = ["disc", "rectangle", "triangle"]
FIX_IOU = 0.9
#: A second, looser reading: only masks that are clearly off (IoU < 0.75) count as needing a fix.
LOOSE_FIX_IOU = 0.75
#: Where named datasets are looked for: shared/datasets in the checkout or next to it.
DATASET_DIRS = (ROOT / "shared" / "datasets", ROOT.parent / "shared" / "datasets")


@dataclass
class Truth:
    """One object of the ground truth: what the simulated annotator ends with."""

    label: str
    mask: Any  # bool array (H, W)
    attributes: dict[str, Any] = field(default_factory=dict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="synthetic",
                        help="synthetic, coco_tinycoco (or another folder name under shared/datasets), or a COCO json/zip/folder")
    parser.add_argument("--rounds", type=int, default=4, help="Training rounds after round 0")
    parser.add_argument("--batch", type=int, default=None,
                        help="Images people finish per round (synthetic: 16; real data: its images shared over the rounds)")
    parser.add_argument("--held-out", type=int, default=None,
                        help="Held-out images (synthetic: 20; real data: its val subset, else 20%%)")
    parser.add_argument("--epochs", type=int, default=20, help="Epochs per training round")
    parser.add_argument("--size", type=int, default=128, help="Side of the synthetic images")
    parser.add_argument("--min-size", type=int, default=None,
                        help="Shorter side the model works at (synthetic: --size; real data: the arch's default configuration)")
    parser.add_argument("--train-batch", type=int, default=4, help="Training batch size")
    parser.add_argument("--arch", default=None,
                        help="Model architecture (ml.models.ARCHS); default: the machine's (small on CPU, maskrcnn_resnet50_fpn on CUDA)")
    parser.add_argument("--weights", choices=("scratch", "coco"), default="scratch",
                        help="coco: fine-tune maskrcnn_resnet50_fpn from torchvision's COCO weights (placed by hand, see docs/hitl.md)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--seed", type=int, default=0, help="Draws the batches (and the held-out set without a val subset)")
    parser.add_argument("--threshold", type=float, default=0.7, help="Proposals below this score are not shown to people")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; on a shared 2-core machine one thread is several times faster than two")
    args = parser.parse_args()

    if args.device == "cpu":
        # The services use CUDA whenever torch sees it; hidden, the same code runs the CPU configuration.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ.setdefault("ANNOTATOR_DATA_DIR", tempfile.mkdtemp(prefix="annotator-hitl-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")
    os.environ.setdefault("ANNOTATOR_HTTPS", "0")
    import django

    django.setup()
    import torch
    from django.core.management import call_command

    from annotator.annotations.models import Prediction
    from annotator.annotations.services import annotations_replace
    from annotator.images.models import Image, ImageStatus
    from annotator.jobs.models import Job
    from annotator.jobs.services import JobContext
    from annotator.learning import services
    from annotator.learning.models import ModelVersion
    from annotator.learning.params import PreannotateParams, TrainParams
    from annotator.learning.pixels import read_rgb_array
    from annotator.learning.selectors import model_version_corrections
    from annotator.learning.services.training import EVAL_THRESHOLD, _coco_init
    from annotator.learning.services.versions import COCO_ARCH, model_load
    from ml.geometry import mask_to_rle, rle_to_mask
    from ml.metrics import coco_evaluate, correction_stats, evaluate_model
    from ml.models import ARCHS, TrainingSample

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: torch sees no CUDA device on this machine (torch.cuda.is_available() is False)")
    if args.arch is not None and args.arch not in ARCHS:
        sys.exit(f"--arch must be one of {', '.join(ARCHS)}")
    arch = args.arch or services.train_defaults(cuda=args.device == "cuda")["arch"]
    if args.weights == "coco":
        if arch != COCO_ARCH:
            sys.exit(f"--weights coco: the training service starts only {COCO_ARCH} from COCO weights; add --arch {COCO_ARCH}")
        if _coco_init() is None:
            sys.exit(_no_weights_message())
    elif arch == COCO_ARCH and _coco_init() is not None:
        sys.exit(f"{COCO_ARCH} always starts from the COCO weights this machine has ({_coco_init()}); say --weights coco")

    call_command("migrate", verbosity=0)
    torch.set_num_threads(args.threads)
    if args.data == "synthetic":
        project, images, truth, held_out, pool, described = _synthetic_project(args)
        batch_size = args.batch or 16
        min_size = args.min_size or args.size
    else:
        project, images, truth, held_out, pool, described = _imported_project(args, _dataset_path(args.data))
        batch_size = args.batch or max(1, len(pool) // (args.rounds + 1))
        min_size = args.min_size
    if batch_size * (args.rounds + 1) > len(pool):
        sys.exit(f"{len(pool)} images outside the held-out set: too few for {args.rounds + 1} batches of {batch_size}")
    batches = [pool[i * batch_size : (i + 1) * batch_size] for i in range(args.rounds + 1)]
    labels = {label.name: label.pk for label in project.labels.all()}
    names = {pk: name for name, pk in labels.items()}

    def run(job: Job, handler) -> Job:  # type: ignore[no-untyped-def]
        result = handler(job=job, ctx=JobContext(job))
        job.result = result
        return job

    def proposals_of(image: Image, version: ModelVersion | None) -> list[Prediction]:
        return [] if version is None else list(Prediction.objects.filter(image=image, model_version=version))

    def corrections(batch: list[Image], version: ModelVersion | None, fix_iou: float = FIX_IOU) -> tuple[float, dict[str, int]]:
        """Corrections a person needs to turn the version's proposals on `batch` into the ground truth."""
        counts = {"objects": 0, "added": 0, "deleted": 0, "fixed": 0, "proposals": 0, "unchanged": 0}
        for image in batch:
            gt = [{"label": t.label, "mask": t.mask} for t in truth[image.pk]]
            proposals = [{"label": names[p.label_id], "score": p.score, "mask": rle_to_mask(p.rle)} for p in proposals_of(image, version)]
            stats = correction_stats(proposals, gt, width=image.width, height=image.height, unchanged_iou=fix_iou)
            counts["objects"] += len(gt)
            counts["added"] += stats["added"]
            counts["deleted"] += stats["deleted"]
            counts["fixed"] += stats["edited"]
            counts["proposals"] += stats["proposals"]
            counts["unchanged"] += stats["unchanged"]
        per_object = (counts["added"] + counts["deleted"] + counts["fixed"]) / max(1, counts["objects"])
        return per_object, counts

    def accept(batch: list[Image], version: ModelVersion | None) -> None:
        """The annotator fixes the batch to ground truth, keeping the link to proposals they kept, and it is accepted."""
        for image in batch:
            proposals = [(p, rle_to_mask(p.rle)) for p in proposals_of(image, version)]
            items = []
            for t in truth[image.pk]:
                item = {"label": labels[t.label], "geometry": {"type": "mask", "rle": mask_to_rle(t.mask)}, "attributes": t.attributes}
                best = max(proposals, key=lambda pm: _iou(pm[1], t.mask), default=None)
                if best is not None and _iou(best[1], t.mask) >= 0.5:
                    item.update(prediction=best[0].pk, source="model", model_version=version.pk)  # type: ignore[union-attr]
                    proposals.remove(best)
                items.append(item)
            image.refresh_from_db(fields=["version"])
            annotations_replace(image=image, user=None, base_version=image.version, items=items)
        Image.objects.filter(pk__in=[i.pk for i in batch]).update(status=ImageStatus.ACCEPTED)

    def held_out_metrics(version: ModelVersion) -> dict[str, Any]:
        """evaluate_model of the version on the held-out images and their ground truth (what a version records)."""
        samples = [TrainingSample(image=read_rgb_array(image), objects=[(t.label, t.mask) for t in truth[image.pk]], key=image.pk)
                   for image in held_out]
        return evaluate_model(model_load(version), samples, categories=list(version.class_names), threshold=EVAL_THRESHOLD,
                              batch_size=args.train_batch)

    def shown_ap(version: ModelVersion) -> float:
        """Mask AP of the version's stored proposals on the held-out set (scores >= the threshold only)."""
        gt, dt = [], []
        for index, image in enumerate(held_out):
            gt.append({"id": index, "width": image.width, "height": image.height,
                       "instances": [{"label": t.label, "mask": t.mask} for t in truth[image.pk]]})
            dt.append({"id": index, "width": image.width, "height": image.height, "instances": [
                {"label": names[p.label_id], "score": p.score, "mask": rle_to_mask(p.rle)} for p in proposals_of(image, version)
            ]})
        return coco_evaluate(gt, dt, categories=list(labels), iou_types=("segm",))["segm"]["AP"] or 0.0

    objects = sum(len(truth[i.pk]) for i in images)
    print(f"{described}: {len(images)} images, {objects} objects, {len(labels)} labels; held-out {len(held_out)} images "
          f"({sum(len(truth[i.pk]) for i in held_out)} objects), batches of {batch_size} (seed {args.seed})")
    print(f"arch {arch} ({'COCO weights' if args.weights == 'coco' else 'from scratch'}) on {args.device}, "
          f"{args.epochs} epochs per round, training batch {args.train_batch}, min size {min_size or 'the default'}, "
          f"torch threads {torch.get_num_threads()}\n")
    print(f"{'round':>5} {'accepted':>8} {'train s':>8} {'mask AP':>8} {'AP50':>6} {'shown AP':>8} {'held-out corr/obj':>18} "
          f"{'(fix<0.75)':>10} {'batch corr/obj':>15} {'kept@0.9':>9}   add/del/fix on held-out   page: unchanged@0.99, mean IoU")
    per_object, counts = corrections(held_out, None)
    batch_per_object, _ = corrections(batches[0], None)
    print(f"{0:>5} {0:>8} {'-':>8} {'-':>8} {'-':>6} {'-':>8} {per_object:>18.3f} {per_object:>10.3f} {batch_per_object:>15.3f} {'-':>9}   "
          f"{counts['added']}/{counts['deleted']}/{counts['fixed']} of {counts['objects']}")
    accept(batches[0], None)
    started_all = time.perf_counter()
    for round_ in range(1, args.rounds + 1):
        accepted = Image.objects.filter(project=project, status=ImageStatus.ACCEPTED).count()
        started = time.perf_counter()
        job = services.train_start(project=project, user=None, params=TrainParams(
            epochs=args.epochs, held_out=0.0, arch=args.arch, batch_size=args.train_batch, min_size=min_size, seed=args.seed),
            enqueue=False)
        job = run(job, services.model_train)
        train_seconds = time.perf_counter() - started
        version = ModelVersion.objects.get(pk=job.result["model_version"])
        services.model_version_activate(version=version)
        batch = batches[round_]
        job = services.preannotate_start(project=project, user=None, params=PreannotateParams(
            model=str(version.pk), threshold=args.threshold, images=tuple(i.pk for i in batch + held_out), batch_size=8), enqueue=False)
        run(job, services.preannotate)
        per_object, counts = corrections(held_out, version)
        loose, _ = corrections(held_out, version, fix_iou=LOOSE_FIX_IOU)
        batch_per_object, _ = corrections(batch, version)
        accept(batch, version)
        page = model_version_corrections(version)
        metrics = held_out_metrics(version)
        kept = counts["unchanged"] / counts["proposals"] if counts["proposals"] else None
        print(f"{round_:>5} {accepted:>8} {train_seconds:>8.0f} {_num(metrics['mask_AP']):>8} {_num(metrics['mask_AP50']):>6} "
              f"{shown_ap(version):>8.3f} {per_object:>18.3f} {loose:>10.3f} {batch_per_object:>15.3f} {_pct(kept):>9}   "
              f"{counts['added']}/{counts['deleted']}/{counts['fixed']} of {counts['objects']}"
              f"{'':>14}{_pct(page['unchanged_share'])}, {_num(page['mean_iou'])}"
              + (f"   (started from {version.params.get('init_from') or 'scratch'})" if round_ == 1 else ""))
    print(f"\ntotal loop time {time.perf_counter() - started_all:.0f}s")


def _synthetic_project(args: argparse.Namespace) -> tuple[Any, list[Any], dict[int, list[Truth]], list[Any], list[Any], str]:
    """Synthetic shapes, held-out set last; the batches in order (the figures do not depend on --seed)."""
    import io

    import numpy as np
    from PIL import Image as PILImage

    from annotator.images.services import images_add
    from annotator.projects.services import project_create
    from ml.synthetic import generate_dataset

    project = project_create(name=f"hitl-{os.getpid()}", creator=None, labels=[{"name": n} for n in CLASSES])
    held_count = 20 if args.held_out is None else args.held_out
    total = (args.batch or 16) * (args.rounds + 1) + held_count
    samples = generate_dataset(total, seed=5, size=args.size, classes=CLASSES, objects=(1, 4))

    def png(array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        PILImage.fromarray(array).save(buffer, format="PNG")
        return buffer.getvalue()

    images = images_add(project=project, sources=[(f"{i:04d}.png", lambda s=s: png(s.image)) for i, s in enumerate(samples)]).created
    truth = {image.pk: [Truth(name, mask) for name, mask in sample.objects] for image, sample in zip(images, samples)}
    return project, images, truth, images[len(images) - held_count :], images[: len(images) - held_count], f"synthetic {args.size}px shapes"


def _dataset_path(data: str) -> Path:
    path = Path(data)
    if path.exists():
        return path.resolve()
    for folder in DATASET_DIRS:
        if (folder / data).exists():
            return folder / data
    sys.exit(f"--data {data!r}: no such file or folder, nor a dataset of that name in {' or '.join(map(str, DATASET_DIRS))}")


def _imported_project(args: argparse.Namespace, path: Path) -> tuple[Any, list[Any], dict[int, list[Truth]], list[Any], list[Any], str]:
    """A COCO dataset imported into a new project; its objects become the ground truth, then leave the images."""
    from annotator.annotations.models import Annotation
    from annotator.annotations.services import annotations_replace
    from annotator.core.files import temp_folder
    from annotator.datasets.services import ImportOptions, dataset_import, dataset_read
    from annotator.images.models import Image, ImageStatus
    from annotator.projects.services import project_create
    from ml.geometry import geometry_to_mask

    project = project_create(name=f"hitl-{os.getpid()}", creator=None, labels=[])
    started = time.perf_counter()
    report = dataset_import(project=project, fmt="coco", path=path, options=ImportOptions(status="new"), user=None)
    print(f"imported {path.name}: {report['created_count']} images, {report['annotation_count']} objects, "
          f"{report['repaired_count']} repaired, {len(report['warnings'])} warnings, in {time.perf_counter() - started:.1f}s")
    with temp_folder("hitl") as workdir:
        dataset, _root = dataset_read("coco", path, images_dir=None, workdir=workdir)
    subset = {image.file_name: str(image.attributes.get("subset", "")) for image in dataset.images}
    images = list(Image.objects.filter(project=project).order_by("original_name"))
    truth: dict[int, list[Truth]] = {image.pk: [] for image in images}
    for a in Annotation.objects.filter(image__project=project).select_related("label", "image").order_by("image_id", "z_order", "id"):
        attributes = {"iscrowd": True} if (a.attributes or {}).get("iscrowd") else {}
        truth[a.image_id].append(Truth(a.label.name, geometry_to_mask(a.geometry, width=a.image.width, height=a.image.height), attributes))
    for image in images:
        if truth[image.pk]:
            annotations_replace(image=image, user=None, base_version=image.version, items=[])
    Image.objects.filter(project=project).update(status=ImageStatus.NEW)
    images = list(Image.objects.filter(project=project).order_by("original_name"))
    val = [image for image in images if subset.get(image.original_name, "").startswith("val")]
    rest = [image for image in images if image not in val]
    random.Random(args.seed).shuffle(rest)
    if val and args.held_out is None:
        held_out, pool, split = val, rest, "its val subset held out"
    else:
        count = args.held_out if args.held_out is not None else max(1, len(images) // 5)
        random.Random(args.seed).shuffle(images)
        held_out, pool, split = images[:count], images[count:], f"{count} images held out at random"
    return project, sorted(held_out + pool, key=lambda i: i.pk), truth, held_out, pool, f"{path.name} ({split})"


def _no_weights_message() -> str:
    import torch
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

    url = MaskRCNN_ResNet50_FPN_Weights.DEFAULT.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    return (
        "--weights coco: no COCO weights on this machine, and the bench does not download them.\n"
        f"  1. on a machine with internet: download {url} (about 170 MB)\n"
        "     (or run `python manage.py download_weights` where there is internet)\n"
        f"  2. copy it onto this machine, for example to {Path.home() / 'weights' / Path(url).name}\n"
        "  3. export ANNOTATOR_COCO_CHECKPOINT=<that path> before running the bench\n"
        f"     (or put the file in the torch hub cache: {cached})"
    )


def _iou(a, b) -> float:  # type: ignore[no-untyped-def]
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 0.0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
