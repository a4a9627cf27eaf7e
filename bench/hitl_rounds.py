"""The human-in-the-loop number: corrections per object, round after round, through the real services.

A project of synthetic shapes (exact ground truth known) goes through the loop the product runs:

* round 0: people annotate the first batch from scratch (every object is an "add");
* each later round: train a model version on the accepted images (learning.services.model_train,
  the small CPU configuration, continuing from the previous version), pre-annotate the next batch
  and a fixed held-out set (learning.services.preannotate), then the simulated annotator corrects
  the batch to ground truth and it is accepted.

Corrections per object = (objects to add + proposals to delete + proposals to fix) / objects, where a
proposal needs fixing when its label is wrong or its mask IoU with the matched object is below 0.9
(ml.metrics.correction_stats with unchanged_iou=0.9; also printed with 0.75). Measured on the held-out set, which is never
trained on, and on the batch people actually corrected. It should go down from round to round.

Run:  .venv/bin/python bench/hitl_rounds.py [--rounds 4] [--batch 16] [--held-out 20] [--epochs 20] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLASSES = ["disc", "rectangle", "triangle"]
FIX_IOU = 0.9
#: A second, looser reading: only masks that are clearly off (IoU < 0.75) count as needing a fix.
LOOSE_FIX_IOU = 0.75


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4, help="Training rounds after round 0")
    parser.add_argument("--batch", type=int, default=16, help="Images people finish per round")
    parser.add_argument("--held-out", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=20, help="Epochs per training round")
    parser.add_argument("--size", type=int, default=128, help="Side of the synthetic images")
    parser.add_argument("--threshold", type=float, default=0.7, help="Proposals below this score are not shown to people")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads; on a shared 2-core machine one thread is several times faster than two")
    args = parser.parse_args()

    os.environ.setdefault("ANNOTATOR_DATA_DIR", tempfile.mkdtemp(prefix="annotator-hitl-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")
    os.environ.setdefault("ANNOTATOR_HTTPS", "0")
    import django

    django.setup()
    import io

    import numpy as np
    import torch
    from django.core.management import call_command
    from PIL import Image as PILImage

    from annotator.annotations.models import Prediction
    from annotator.annotations.services import annotations_replace
    from annotator.images.models import Image, ImageStatus
    from annotator.images.services import images_add
    from annotator.jobs.models import Job
    from annotator.jobs.services import JobContext
    from annotator.learning import services
    from annotator.learning.models import ModelVersion
    from annotator.learning.params import PreannotateParams, TrainParams
    from annotator.learning.selectors import model_version_corrections
    from annotator.projects.services import project_create
    from ml.geometry import mask_to_rle, rle_to_mask
    from ml.metrics import correction_stats
    from ml.synthetic import generate_dataset

    call_command("migrate", verbosity=0)
    torch.set_num_threads(args.threads)
    project = project_create(name=f"hitl-{os.getpid()}", creator=None, labels=[{"name": n} for n in CLASSES])
    labels = {label.name: label.pk for label in project.labels.all()}
    total = args.batch * (args.rounds + 1) + args.held_out
    samples = generate_dataset(total, seed=5, size=args.size, classes=CLASSES, objects=(1, 4))

    def png(array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        PILImage.fromarray(array).save(buffer, format="PNG")
        return buffer.getvalue()

    images = images_add(project=project, sources=[(f"{i:04d}.png", lambda s=s: png(s.image)) for i, s in enumerate(samples)]).created
    truth = {image.pk: sample for image, sample in zip(images, samples)}
    held_out = images[-args.held_out :]
    batches = [images[i * args.batch : (i + 1) * args.batch] for i in range(args.rounds + 1)]

    def run(job: Job, handler) -> Job:  # type: ignore[no-untyped-def]
        result = handler(job=job, ctx=JobContext(job))
        job.result = result
        return job

    def corrections(batch: list[Image], version: ModelVersion | None, fix_iou: float = FIX_IOU) -> tuple[float, dict[str, int]]:
        """Corrections a person needs to turn the version's proposals on `batch` into the ground truth."""
        counts = {"objects": 0, "added": 0, "deleted": 0, "fixed": 0}
        names = dict((v, k) for k, v in labels.items())
        for image in batch:
            gt = [{"label": name, "mask": mask} for name, mask in truth[image.pk].objects]
            proposals = [] if version is None else [
                {"label": names[p.label_id], "score": p.score, "mask": rle_to_mask(p.rle)}
                for p in Prediction.objects.filter(image=image, model_version=version)
            ]
            stats = correction_stats(proposals, gt, width=image.width, height=image.height, unchanged_iou=fix_iou)
            counts["objects"] += len(gt)
            counts["added"] += stats["added"]
            counts["deleted"] += stats["deleted"]
            counts["fixed"] += stats["edited"]
        per_object = (counts["added"] + counts["deleted"] + counts["fixed"]) / max(1, counts["objects"])
        return per_object, counts

    def accept(batch: list[Image], version: ModelVersion | None) -> None:
        """The annotator fixes the batch to ground truth, keeping the link to proposals they kept, and it is accepted."""
        for image in batch:
            proposals = list(Prediction.objects.filter(image=image, model_version=version)) if version else []
            items = []
            for name, mask in truth[image.pk].objects:
                item = {"label": labels[name], "geometry": {"type": "mask", "rle": mask_to_rle(mask)}}
                best = max(proposals, key=lambda p: _iou(rle_to_mask(p.rle), mask), default=None)
                if best is not None and _iou(rle_to_mask(best.rle), mask) >= 0.5:
                    item.update(prediction=best.pk, source="model", model_version=version.pk)  # type: ignore[union-attr]
                    proposals.remove(best)
                items.append(item)
            annotations_replace(image=image, user=None, base_version=image.version, items=items)
        Image.objects.filter(pk__in=[i.pk for i in batch]).update(status=ImageStatus.ACCEPTED)

    print(f"{len(images)} synthetic {args.size}px images, {len(CLASSES)} classes; batches of {args.batch}, "
          f"held-out {args.held_out}; {args.epochs} epochs per round, torch threads {torch.get_num_threads()}\n")
    header = (f"{'round':>5} {'accepted':>8} {'train s':>8} {'mask AP':>8} {'held-out corr/obj':>18} {'(fix<0.75)':>10} "
              f"{'batch corr/obj':>15}   add/del/fix on held-out   page: unchanged@0.99, mean IoU")
    print(header)
    per_object, counts = corrections(held_out, None)
    batch_per_object, _ = corrections(batches[0], None)
    print(f"{0:>5} {0:>8} {'-':>8} {'-':>8} {per_object:>18.3f} {per_object:>10.3f} {batch_per_object:>15.3f}   "
          f"{counts['added']}/{counts['deleted']}/{counts['fixed']} of {counts['objects']}")
    accept(batches[0], None)
    started_all = time.perf_counter()
    for round_ in range(1, args.rounds + 1):
        accepted = Image.objects.filter(project=project, status=ImageStatus.ACCEPTED).count()
        started = time.perf_counter()
        job = services.train_start(project=project, user=None, params=TrainParams(
            epochs=args.epochs, held_out=0.0, batch_size=4, min_size=args.size), enqueue=False)
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
        ap = _held_out_ap(held_out, truth, version, labels)
        print(f"{round_:>5} {accepted:>8} {train_seconds:>8.0f} {ap:>8.3f} {per_object:>18.3f} {loose:>10.3f} {batch_per_object:>15.3f}   "
              f"{counts['added']}/{counts['deleted']}/{counts['fixed']} of {counts['objects']}"
              f"{'':>14}{_pct(page['unchanged_share'])}, {_num(page['mean_iou'])}")
    print(f"\ntotal loop time {time.perf_counter() - started_all:.0f}s")


def _iou(a, b) -> float:  # type: ignore[no-untyped-def]
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 0.0


def _held_out_ap(held_out, truth, version, labels) -> float:  # type: ignore[no-untyped-def]
    """Mask AP of the version's stored proposals on the held-out set (scores >= the threshold only)."""
    from annotator.annotations.models import Prediction
    from ml.geometry import rle_to_mask
    from ml.metrics import coco_evaluate

    names = dict((v, k) for k, v in labels.items())
    gt, dt = [], []
    for index, image in enumerate(held_out):
        gt.append({"id": index, "width": image.width, "height": image.height,
                   "instances": [{"label": n, "mask": m} for n, m in truth[image.pk].objects]})
        dt.append({"id": index, "width": image.width, "height": image.height, "instances": [
            {"label": names[p.label_id], "score": p.score, "mask": rle_to_mask(p.rle)}
            for p in Prediction.objects.filter(image=image, model_version=version)
        ]})
    return coco_evaluate(gt, dt, categories=list(labels), iou_types=("segm",))["segm"]["AP"] or 0.0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
