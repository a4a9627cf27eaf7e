"""Pre-annotation overhead: the job's images/s against the same model called directly on decoded images.

The job path is the real one a worker runs (jobs.services.job_execute → learning.services.preannotate):
claim the job, read each JPEG from Django storage, decode it, run the model, convert masks to COCO
RLE, suppress duplicates, and replace the images' predictions in the database, a group of batches
at a time. The baseline calls ``segmenter.predict`` batch by batch on the same images already
decoded in memory, with the same batch size, dropping each batch's masks as the job does. The
difference is our overhead (target: at most 10%). Broker queueing is a one-off per job and is not
included (a few milliseconds per job on Redis).

torch gets the threads a pool process of `make run`'s worker gets (annotator.celery.pool_process_threads:
the cores over the Procfile's 2 pool processes, 1 each on 2 cores); `--threads 0` gives torch every
core instead. Decoding and storing run beside the model in threads only where it leaves CPU free (a
GPU, or fewer torch threads than cores: learning.services.preannotation.pipeline_overlaps), else they
take turns with it; ``--stages both`` measures both ways in each round. Measured here (2 cores,
--repeat 9): with the worker's 1 thread, model 22.6 img/s, job in threads +4.0% (rounds -1.7% to
+6.9%; in turn +8.4%), on PostgreSQL +4.1% (-6.1% to +10.9%, --repeat 7); with torch on both cores
(--threads 0), model 33.9 img/s, job in turn +10.7% and +12.4% in two runs (in threads +16.0%): of
the 0.35 s the job adds per 100 images there, decoding is 0.17 s, the rows (RLE, NMS) 0.05 s and
storing 0.08 s. (Before, the baseline held every image's masks until the end, which cost it page
faults and swung it by 30%.)

The model is by default the CPU worker's configuration ("small" architecture at 256-384 px, see
learning.services.train_defaults), about 20 ms an image on 2 cores, the case where our per-image
work weighs most; `--arch maskrcnn_resnet50_fpn` measures the COCO model's architecture at
torchvision's 800-1333 px instead. The script creates the model: by default its heads are set so that it
returns a fixed number of confident detections per image (`--detections`, boxes with full masks),
which is what costs conversion and saving time; its compute is that of a trained model of the same
configuration. `--train-epochs N` trains it on synthetic shapes instead (slow on 2 busy cores). No
downloadable weights are needed. The images are 640x480 JPEGs of synthetic shapes.

Run:  .venv/bin/python bench/preannotate_overhead.py [--images 100] [--batch-size 4] [--repeat 9] [--detections 8] [--arch small]
      [--stages auto|threads|in-turn|both] [--profile]
Set DATABASE_URL to measure against PostgreSQL (SQLite in a temporary data dir by default).
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.models.maskrcnn import ARCHS  # noqa: E402  (no Django imports in ml/)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=9, help="Rounds of one run of each side, in alternating order")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: a pool process's share as `make run`'s worker gives it, "
                             "WORKER_CONCURRENCY or the Procfile's 2 processes; 0: torch's default, every core)")
    parser.add_argument("--detections", type=int, default=8, help="Confident detections per image (created model)")
    parser.add_argument("--train-epochs", type=int, default=0, help="Train the model on synthetic shapes instead")
    parser.add_argument("--profile", action="store_true", help="Only profile one run of the job (cProfile) instead of measuring")
    parser.add_argument("--stages", choices=("auto", "threads", "in-turn", "both"), default="auto",
                        help="Decoding and saving beside the model in threads, in turn with it, as the job decides "
                             "(pipeline_overlaps), or both ways in each round")
    parser.add_argument("--arch", default="small", choices=ARCHS,
                        help="small: the CPU worker's trained model; the others at torchvision's default sizes")
    args = parser.parse_args()
    if args.train_epochs and args.arch != "small":
        parser.error("--train-epochs trains the small model only")

    os.environ.setdefault("ANNOTATOR_DATA_DIR", tempfile.mkdtemp(prefix="annotator-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")
    os.environ.setdefault("ANNOTATOR_HTTPS", "0")
    import django

    django.setup()
    import numpy as np
    import torch
    from django.conf import settings
    from django.core.management import call_command
    from PIL import Image as PILImage

    from annotator.annotations.models import Prediction
    from annotator.images.services import images_add
    from annotator.jobs import services as job_services
    from annotator.jobs.models import Job
    from annotator.learning.models import ModelVersion
    from annotator.learning.params import PreannotateParams
    from annotator.learning.pixels import read_rgb_array
    from annotator.learning.services import model_load, preannotate_start, preannotation
    from annotator.projects.services import project_create
    from ml.models.maskrcnn import TrainConfig, build_model, save_checkpoint, train
    from ml.synthetic import SHAPES, generate_dataset

    call_command("migrate", verbosity=0)
    if args.threads is None:
        from annotator.celery import pool_process_threads

        # What the worker's pool process gets (annotator.celery sets OMP_NUM_THREADS to it); the
        # Procfile starts 2 pool processes unless WORKER_CONCURRENCY says otherwise.
        args.threads = pool_process_threads(int(os.environ.get("WORKER_CONCURRENCY") or 2))
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, database {settings.DATABASES['default']['ENGINE']}")

    started = time.perf_counter()
    # The CPU worker's default configuration for its own model; torchvision's defaults otherwise.
    model_kwargs: dict = {"min_size": 256, "max_size": 384} if args.arch == "small" else {}
    checkpoint = Path(settings.ANNOTATOR_MODEL_DIR) / "bench" / f"{args.arch}.pt"
    if args.train_epochs:
        train(
            generate_dataset(48, seed=1, size=(192, 256), objects=(1, 4)),
            config=TrainConfig(arch="small", class_names=list(SHAPES), epochs=args.train_epochs, batch_size=4,
                               held_out=0.0, model_kwargs=model_kwargs),
            output_path=checkpoint,
        )
        print(f"trained the benchmark model in {time.perf_counter() - started:.0f}s ({checkpoint})")
    else:
        torch.manual_seed(0)
        model_kwargs.update(box_detections_per_img=args.detections, box_score_thresh=0.05)
        model = build_model(args.arch, len(SHAPES), **model_kwargs)
        with torch.no_grad():
            # Every proposal becomes a confident (0.83) "disc" whose mask fills its box: a fixed,
            # realistic number of instances to convert and save per image.
            scores = model.roi_heads.box_predictor.cls_score
            scores.weight.zero_()
            scores.bias.copy_(torch.tensor([0.0, 3.0] + [0.0] * (len(SHAPES) - 1)))
            logits = model.roi_heads.mask_predictor.mask_fcn_logits
            logits.weight.zero_()
            logits.bias.fill_(4.0)
        save_checkpoint(checkpoint, model=model, arch=args.arch, class_names=list(SHAPES), config={"model_kwargs": model_kwargs})

    project = project_create(name=f"bench-preannotate-{os.getpid()}", creator=None,
                             labels=[{"name": name} for name in SHAPES])
    samples = generate_dataset(args.images, seed=2, size=(480, 640), objects=(2, 6))

    def jpeg(array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        PILImage.fromarray(array).save(buffer, format="JPEG", quality=90)
        return buffer.getvalue()

    images = images_add(project=project, sources=[(f"{i}.jpg", lambda s=s: jpeg(s.image)) for i, s in enumerate(samples)]).created
    decoded = [read_rgb_array(image) for image in images]  # the baseline gets the same (JPEG-decoded) pixels

    first = preannotate_start(project=project, user=None, params=PreannotateParams(
        model=str(checkpoint), threshold=args.threshold, batch_size=args.batch_size, scope="all"), allow_any_path=True, enqueue=False)
    version = ModelVersion.objects.get(pk=first.params["model_version"])
    segmenter = model_load(version)  # what a worker process holds after its first job
    segmenter.predict(decoded[:2], threshold=args.threshold)  # warm-up (allocator, kernels)

    def run_direct() -> tuple[float, float, int]:
        # Batch by batch, each batch's masks dropped before the next, as the job does: holding all
        # of them (8 full-size masks an image) cost the baseline page faults and varied it by 30%.
        wall, cpu, found = time.perf_counter(), time.process_time(), 0
        for start in range(0, len(decoded), args.batch_size):
            batch = decoded[start : start + args.batch_size]
            found += sum(len(r) for r in segmenter.predict(batch, threshold=args.threshold, batch_size=args.batch_size))
        return time.perf_counter() - wall, time.process_time() - cpu, found

    def run_job(overlap: bool | None) -> tuple[float, float, int]:
        job = Job.objects.create(kind=first.kind, project=project, params=first.params)
        preannotation.PIPELINE_OVERLAP = overlap
        wall, cpu = time.perf_counter(), time.process_time()
        job_services.job_execute(job_id=job.pk)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        preannotation.PIPELINE_OVERLAP = None
        job.refresh_from_db()
        assert job.state == "succeeded", job.error
        assert Prediction.objects.filter(model_version=version).count() == job.result["predictions"]
        return wall, cpu, job.result["predictions"]

    modes = {"auto": {"job": None}, "threads": {"job, stages in threads": True}, "in-turn": {"job, stages in turn": False},
             "both": {"job, stages in turn": False, "job, stages in threads": True}}[args.stages]
    print(f"stages: {'beside the model in threads' if preannotation.pipeline_overlaps(segmenter) else 'in turn with the model'}"
          " by the job's own rule (pipeline_overlaps)")

    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(run_job, next(iter(modes.values())))
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)
        stats.sort_stats("cumulative").print_callees("_save_batch|predictions_replace|_prediction_rows")
        return

    # This machine is shared (other processes, a virtual machine's neighbours): each round runs
    # both sides back to back, in alternating order, and the overhead is taken per round, so a
    # drift in load hits both sides of a pair; the median over rounds is the figure to report.
    direct_runs: list[tuple[float, float, int]] = []
    job_runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in modes}
    overheads: dict[str, list[float]] = {name: [] for name in modes}
    sides: list[str] = ["direct", *modes]
    for round_ in range(args.repeat):
        order = sides if round_ % 2 == 0 else sides[::-1]
        for side in order:
            if side == "direct":
                direct_runs.append(run_direct())
            else:
                job_runs[side].append(run_job(modes[side]))
        d = direct_runs[-1]
        line = f"round {round_ + 1}: direct {len(images) / d[0]:6.2f} img/s (cpu {d[1]:5.1f}s, {d[2]} instances)"
        for name in modes:
            j = job_runs[name][-1]
            overheads[name].append(100 * (j[0] - d[0]) / d[0])
            line += f"   {name} {len(images) / j[0]:6.2f} img/s (cpu {j[1]:5.1f}s, {j[2]} saved) {overheads[name][-1]:+.1f}%"
        print(line)
    n = len(images)
    print(f"\n{args.arch} model, {n} images of 640x480, batch {args.batch_size}, threshold {args.threshold}, torch threads {torch.get_num_threads()}")
    d = statistics.median(r[0] for r in direct_runs)
    d_cpu = statistics.median(r[1] for r in direct_runs)
    print(f"median run: model directly {n / d:6.2f} img/s, cpu {d_cpu:.1f}s (all threads)")
    for name in modes:
        j = statistics.median(r[0] for r in job_runs[name])
        j_cpu = statistics.median(r[1] for r in job_runs[name])
        print(f"{name:<24}: {n / j:6.2f} img/s, overhead median of rounds {statistics.median(overheads[name]):+.1f}% "
              f"(rounds from {min(overheads[name]):+.1f}% to {max(overheads[name]):+.1f}%), cpu {j_cpu:.1f}s, "
              f"extra work {100 * (j_cpu - d_cpu) / d_cpu:+.1f}%")
    print("target: overhead <= 10%")


if __name__ == "__main__":
    main()
