"""Benchmark: the COCO import job next to a floor measured in the same run, with 1 and 2 workers.

A synthetic COCO zip is generated in a temporary folder (640×480 JPEGs, --polygons polygons of
--points points per image, --classes classes) for each size in --sizes. For each size:

- floor: every image decoded with Pillow, its SHA-256 and one thumbnail (what storing an image
  must at least do), then a bulk insert of the same rows the import makes (images, annotations,
  one revision per image) with ``bulk_create`` in batches;
- ours: the import job as the API starts it (``dataset_import_start`` of an upload kept in
  storage), run by real Celery worker processes (``--workers``, e.g. ``1 2``), timed from the
  moment a worker takes the job to its success (``Job.started_at`` → ``finished_at``), with the
  report checked (every image and object imported).

PostgreSQL with ``--db postgres`` (a fresh database on the server of DATABASE_URL, default
postgres://postgres@127.0.0.1:5432, dropped at the end; Redis at REDIS_URL as the broker), SQLite
with ``--db sqlite`` (a file in a temporary data dir, the filesystem broker).

    .venv/bin/python bench/import.py [--db sqlite|postgres] [--sizes 1000 5000] [--workers 1 2]
    .venv/bin/python bench/import.py --profile 1000   # cProfile of the import in this process
"""
from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WIDTH, HEIGHT = 640, 480


# --------------------------------------------------------------------------------------------
# Set-up
# --------------------------------------------------------------------------------------------


def _environment(db: str, data_dir: str) -> str | None:
    """Point this process (and the workers it starts) at a fresh database; returns a PostgreSQL name to drop."""
    os.environ.update(DJANGO_SETTINGS_MODULE="annotator.settings", ANNOTATOR_HTTPS="0", ANNOTATOR_DATA_DIR=data_dir,
                      ANNOTATOR_QUEUE_PREFIX=f"bench-import-{uuid.uuid4().hex[:6]}-")
    if db == "sqlite":
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("REDIS_URL", None)  # the filesystem broker, as `make run` uses without Redis
        return None
    import psycopg

    url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    base, _, _ = url.rpartition("/")
    name = f"bench_import_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = f"{base}/{name}"
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    return name


def _drop_postgres(name: str) -> None:
    import psycopg

    base, _, _ = os.environ["DATABASE_URL"].rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _setup_django() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _jpeg(seed: int) -> bytes:
    """A distinct 640×480 photo-like JPEG (smooth colour fields, like most photos, ~30 KB)."""
    import numpy as np
    from PIL import Image as PILImage

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    image = PILImage.fromarray(small).resize((WIDTH, HEIGHT), PILImage.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _polygon(rng: Any, points: int) -> list[float]:
    """A simple (non-crossing) star-shaped outline of `points` vertices inside the image."""
    import numpy as np

    cx, cy = rng.uniform(60, WIDTH - 60), rng.uniform(60, HEIGHT - 60)
    radius = rng.uniform(15, 50)
    angles = np.sort(rng.uniform(0, 2 * np.pi, points))
    radii = radius * rng.uniform(0.6, 1.0, points)
    ring = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
    return [round(float(v), 2) for v in ring.ravel()]


def make_dataset(folder: Path, *, images: int, polygons: int, points: int, classes: int) -> Path:
    """A COCO zip (annotations/instances_default.json + images/) of synthetic images; its path."""
    import numpy as np

    rng = np.random.default_rng(images)
    out = folder / f"coco-{images}.zip"
    categories = [{"id": k + 1, "name": f"class{k + 1}"} for k in range(classes)]
    entries, annotations = [], []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for k in range(images):
            name = f"{k:06d}.jpg"
            archive.writestr(f"images/{name}", _jpeg(k))
            entries.append({"id": k + 1, "file_name": name, "width": WIDTH, "height": HEIGHT})
            for j in range(polygons):
                annotations.append({
                    "id": len(annotations) + 1, "image_id": k + 1, "category_id": 1 + (k * polygons + j) % classes,
                    "segmentation": [_polygon(rng, points)], "iscrowd": 0, "area": 0.0, "bbox": [0, 0, 0, 0],
                })
        archive.writestr("annotations/instances_default.json",
                         json.dumps({"images": entries, "annotations": annotations, "categories": categories}))
    return out


# --------------------------------------------------------------------------------------------
# The floor
# --------------------------------------------------------------------------------------------


def floor(source: Path, workdir: Path) -> float:
    """Decode + SHA-256 + one thumbnail per image, then a bulk insert of the rows an import makes."""
    from django.db import transaction
    from django.utils import timezone
    from PIL import Image as PILImage

    from annotator.annotations.models import Annotation, GeometryKind, Revision, RevisionAction, Source
    from annotator.images.models import Image
    from annotator.projects.models import Label, Project

    folder = workdir / "floor"
    with zipfile.ZipFile(source) as archive:
        archive.extractall(folder)
    start = time.perf_counter()
    document = json.loads((folder / "annotations" / "instances_default.json").read_text())
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in document["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    decoded = []
    for entry in document["images"]:
        data = (folder / "images" / entry["file_name"]).read_bytes()
        with PILImage.open(io.BytesIO(data)) as picture:
            picture.load()
            thumb = picture.copy()
            thumb.thumbnail((256, 256))
            buffer = io.BytesIO()
            thumb.save(buffer, format="JPEG", quality=80)
        decoded.append((entry, hashlib.sha256(data).hexdigest()))
    now = timezone.now()
    with transaction.atomic():
        project = Project.objects.create(name=f"floor-{uuid.uuid4().hex[:6]}")
        labels = {c["id"]: Label.objects.create(project=project, name=c["name"], color="#ff0000", order=c["id"])
                  for c in document["categories"]}
        rows = Image.objects.bulk_create(
            [Image(project=project, file=f"floor/{sha}.jpg", thumbnail=f"floor/t-{sha}.jpg", original_name=entry["file_name"],
                   width=entry["width"], height=entry["height"], checksum=sha, version=1) for entry, sha in decoded],
            batch_size=1000,
        )
        objects, revisions = [], []
        for row, (entry, _sha) in zip(rows, decoded):
            mine = []
            for z, ann in enumerate(by_image.get(entry["id"], [])):
                ring = ann["segmentation"][0]
                exterior = [[ring[i], ring[i + 1]] for i in range(0, len(ring), 2)]
                mine.append(Annotation(
                    image=row, label=labels[ann["category_id"]], kind=GeometryKind.POLYGONS,
                    polygons=[{"exterior": exterior, "holes": []}], bbox=[0, 0, 1, 1], area=1.0, z_order=z,
                    source=Source.IMPORT, created_at=now, updated_at=now,
                ))
            objects += mine
            revisions.append(Revision(image=row, version=1, action=RevisionAction.IMPORT, object_count=len(mine),
                                      annotations=[{"label": a.label_id, "geometry": a.geometry} for a in mine]))
        Annotation.objects.bulk_create(objects, batch_size=2000)
        Revision.objects.bulk_create(revisions, batch_size=500)
    elapsed = time.perf_counter() - start
    _drop(project)
    shutil.rmtree(folder)
    return elapsed


def _drop(project: Any) -> None:
    """Remove a project of the bench (its objects first: they protect its labels)."""
    from annotator.images.models import Image

    Image.objects.filter(project=project).delete()
    project.delete()


# --------------------------------------------------------------------------------------------
# Ours: the job, run by real worker processes
# --------------------------------------------------------------------------------------------


def _start_workers(processes: int) -> subprocess.Popen:  # type: ignore[type-arg]
    from django.conf import settings

    prefix = settings.ANNOTATOR_QUEUE_PREFIX
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "annotator", "worker", "--pool", "prefork", "--concurrency", str(processes),
         "-Q", f"{prefix}default", "--loglevel", "WARNING", "--hostname", f"bench-import-{uuid.uuid4().hex[:6]}@%h",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.DEVNULL,
    )
    return worker


def _run_job(source: Path, *, expect_images: int, expect_objects: int, timeout: float = 1800) -> float:
    from annotator.datasets.services import dataset_import_start, upload_store
    from annotator.jobs.models import JobState
    from annotator.projects.models import Project

    project = Project.objects.create(name=f"ours-{uuid.uuid4().hex[:6]}")
    with source.open("rb") as fh:
        upload = upload_store(fh, name=source.name)
    start = time.perf_counter()
    job = dataset_import_start(project=project, fmt="coco", user=None, options={}, upload=upload, filename=source.name)
    deadline = time.monotonic() + timeout
    while True:
        job.refresh_from_db()
        if job.is_finished:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"import job {job.pk} stuck: {job.state} {job.message}")
        time.sleep(0.05)
    # From the moment a worker took the job: the broker's delivery delay (the filesystem broker
    # polls once a second) is not the import's.
    elapsed = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else time.perf_counter() - start
    if job.state != JobState.SUCCEEDED:
        raise RuntimeError(f"import job {job.pk} {job.state}: {job.error}")
    result = job.result
    assert (result["created_count"], result["annotation_count"]) == (expect_images, expect_objects), result
    _drop(project)
    return elapsed


def _warm_up(workers: int, source: Path) -> None:
    """One tiny import per worker process first, so that start-up is not in the figures."""
    for _ in range(workers):
        _run_job(source, expect_images=2, expect_objects=2 * 3)


def profile(size: int, workdir: Path) -> None:
    """cProfile of the import job run in this process as a worker runs it (its chunk jobs included,
    no other worker taking any): where the time goes."""
    from annotator.datasets.services import dataset_import_start, upload_store
    from annotator.jobs.models import Job, JobState
    from annotator.jobs.services import job_execute
    from annotator.projects.models import Project

    source = make_dataset(workdir, images=size, polygons=10, points=16, classes=5)
    project = Project.objects.create(name=f"profile-{uuid.uuid4().hex[:6]}")
    with source.open("rb") as fh:
        upload = upload_store(fh, name=source.name)
    job = dataset_import_start(project=project, fmt="coco", user=None, options={}, upload=upload, filename=source.name,
                               enqueue=False)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    job_execute(job_id=job.pk)
    profiler.disable()
    job = Job.objects.get(pk=job.pk)
    assert job.state == JobState.SUCCEEDED, (job.state, job.error)
    print(f"import job of {size} images: {time.perf_counter() - start:.1f} s (under cProfile)")
    if os.environ.get("BENCH_PROFILE_STATS"):
        profiler.dump_stats(os.environ["BENCH_PROFILE_STATS"])  # for pstats' callers/callees
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker processes to measure with")
    parser.add_argument("--polygons", type=int, default=10)
    parser.add_argument("--points", type=int, default=16)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--profile", type=int, metavar="IMAGES", help="only profile an in-process import of IMAGES images")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="annotator-bench-import-") as tmp:
        workdir = Path(tmp)
        dropped = _environment(args.db, str(workdir / "data"))
        try:
            _setup_django()
            if args.profile:
                profile(args.profile, workdir)
                return
            _bench(args, workdir)
        finally:
            if dropped:
                from django.db import connections

                connections.close_all()
                _drop_postgres(dropped)


def _bench(args: argparse.Namespace, workdir: Path) -> None:
    from django.db import connection

    from annotator.core.collector import collector_tune

    collector_tune()  # the floor runs with the collector settings the worker processes have
    tiny = make_dataset(workdir, images=2, polygons=3, points=args.points, classes=args.classes)
    sources = {size: make_dataset(workdir, images=size, polygons=args.polygons, points=args.points, classes=args.classes)
               for size in args.sizes}
    floors: dict[int, float] = {}
    for size, source in sources.items():
        floors[size] = floor(source, workdir)
        print(f"floor, {size} images: {floors[size]:.2f} s", flush=True)
    ours: dict[tuple[int, int], float] = {}
    for processes in args.workers:
        worker = _start_workers(processes)
        try:
            _warm_up(processes, tiny)
            for size, source in sources.items():
                ours[(size, processes)] = _run_job(source, expect_images=size, expect_objects=size * args.polygons)
                print(f"ours, {size} images, {processes} worker processes: {ours[(size, processes)]:.2f} s", flush=True)
        finally:
            worker.terminate()
            worker.wait(timeout=60)

    print(f"database: {connection.vendor}; {args.polygons} polygons × {args.points} points per {WIDTH}×{HEIGHT} image, "
          f"{args.classes} classes")
    header = f"{'images':>8}{'floor (s)':>11}" + "".join(f"{f'ours, {n} worker' + ('s' if n > 1 else '') + ' (s)':>22}{'ratio':>7}"
                                                       for n in args.workers)
    print(header)
    for size in args.sizes:
        line = f"{size:>8}{floors[size]:>11.2f}"
        for processes in args.workers:
            took = ours[(size, processes)]
            line += f"{took:>22.2f}{took / floors[size]:>6.2f}x"
        print(line)
    if len(args.workers) > 1:
        first, *rest = args.workers
        for size in args.sizes:
            print(f"{size} images: speed-up " + ", ".join(
                f"{n} vs {first} workers {ours[(size, first)] / ours[(size, n)]:.2f}x" for n in rest))


if __name__ == "__main__":
    main()
