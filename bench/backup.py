"""Benchmark: project backup and restore (time and peak memory) next to a floor measured in the same run.

Builds a project of --images images (real JPEG files and thumbnails in the media folder) with
--per-image objects each (polygons and RLE masks), --revisions revisions per image (each holding
the image's objects as they stood) and predictions of a model version on a tenth of the images;
and a second, --small project of the same make-up, to show that memory does not grow with the
project. Then, each in a process of its own (peak RSS read from the kernel with wait4):

- floor backup: the same rows read with ``values()`` into memory and one ``json.dump``, zipped with
  the same media files (stored) — what any backup must at least do;
- our backup: ``backups.services.backup_create`` (archive, checksums, kept in storage);
- floor restore: the floor zip's media written back into storage, ``json.load`` and
  ``bulk_create`` of the same rows with their ids remapped;
- our restore: ``backups.services.restore`` of our archive (checksums verified, every row checked,
  then written in one transaction);
- an idle process (Django loaded) as the reference for the memory figures.

PostgreSQL when DATABASE_URL points at it (a fresh database is created and dropped), otherwise a
SQLite file in a temporary data dir.

    .venv/bin/python bench/backup.py [--images 5000] [--per-image 20] [--revisions 3] [--small 1000]
"""
from __future__ import annotations

import argparse
import io
import json
import os
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


# --------------------------------------------------------------------------------------------
# Set-up (parent process)
# --------------------------------------------------------------------------------------------


def _fresh_postgres() -> str | None:
    """A database of its own on the server of DATABASE_URL; returns its name (None without PostgreSQL)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        os.environ.pop("DATABASE_URL", None)
        return None
    import psycopg

    base, _, _ = url.rpartition("/")
    name = f"bench_backup_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = f"{base}/{name}"
    return name


def _drop_postgres(name: str) -> None:
    import psycopg

    base, _, _ = os.environ["DATABASE_URL"].rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")
    os.environ.setdefault("ANNOTATOR_HTTPS", "0")
    import django

    django.setup()


def _jpeg(width: int, height: int, seed: int) -> bytes:
    import numpy as np
    from PIL import Image as PILImage

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 255 // width), (y * 255 // height), ((x + y) * 127 // (width + height))], axis=-1).astype(np.int16)
    noisy = np.clip(base + rng.integers(-12, 12, base.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(noisy).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def build(*, name: str, images: int, per_image: int, revisions: int, seed: int = 0) -> int:
    """The project, its files in the media folder and its rows; returns its id."""
    import hashlib

    from django.conf import settings
    from django.utils import timezone

    from annotator.annotations.models import Annotation, GeometryKind, Prediction, Revision
    from annotator.annotations.selectors import annotation_to_dict
    from annotator.images.models import Image, ImageStatus
    from annotator.learning.models import ModelVersion
    from annotator.projects.models import Label, Project
    from bench.export import _shapes

    project = Project.objects.create(name=name, guidelines="Outline every object.")
    labels = [Label.objects.create(project=project, name=n, color="#ff0000", order=k) for k, n in enumerate(["date", "fig", "hazelnut"])]
    model = ModelVersion.objects.create(project=project, name="round 1", kind="trained", class_names=["date", "fig", "hazelnut"],
                                        metrics={"segm_map": 0.4}, curve=[{"epoch": 1, "loss": 1.0}])
    media = Path(settings.MEDIA_ROOT)
    photos = [_jpeg(640, 480, seed + k) for k in range(8)]
    thumb = _jpeg(256, 192, seed + 99)
    rows = []
    for k in range(images):
        # Distinct files (a trailer after the JPEG's end marker) without encoding 5,000 pictures.
        data = photos[k % len(photos)] + k.to_bytes(8, "big") + uuid.uuid4().bytes
        checksum = hashlib.sha256(data).hexdigest()
        file_name = f"projects/{project.pk}/images/{checksum[:2]}/{checksum}.jpg"
        thumb_name = f"projects/{project.pk}/thumbs/{checksum[:2]}/{checksum}.jpg"
        for stored, content in ((file_name, data), (thumb_name, thumb + k.to_bytes(8, "big"))):
            (media / stored).parent.mkdir(parents=True, exist_ok=True)
            (media / stored).write_bytes(content)
        rows.append(Image(project=project, file=file_name, thumbnail=thumb_name, original_name=f"photos/{k:06d}.jpg", width=640,
                          height=480, checksum=checksum, status=ImageStatus.ACCEPTED, version=revisions))
    Image.objects.bulk_create(rows, batch_size=1000)
    pool = _shapes(500, width=640, height=480, rle_fraction=0.3, seed=seed)
    now = timezone.now()
    annotations: list[Annotation] = []
    history: list[Revision] = []
    predictions: list[Prediction] = []
    n = 0
    for index, image_id in enumerate(Image.objects.filter(project=project).order_by("id").values_list("id", flat=True)):
        objects = []
        for z in range(per_image):
            shape = pool[(n * 7919) % len(pool)]
            geometry = shape["geometry"]
            is_mask = geometry["type"] == "mask"
            objects.append(Annotation(
                uid=uuid.uuid4(), image_id=image_id, label=labels[n % 3], kind=GeometryKind.MASK if is_mask else GeometryKind.POLYGONS,
                polygons=None if is_mask else geometry["polygons"], rle=geometry["rle"] if is_mask else None,
                bbox=shape["bbox"], area=shape["area"], z_order=z, source="manual", created_at=now, updated_at=now,
            ))
            n += 1
        annotations += objects
        for version in range(1, revisions + 1):
            state = objects[: max(1, per_image * version // revisions)]
            history.append(Revision(image_id=image_id, version=version, annotations=[annotation_to_dict(a) for a in state],
                                    object_count=len(state), summary={"added": len(state)}))
        if index % 10 == 0:
            for rank in range(2):
                shape = pool[(index + rank) % len(pool)]
                if shape["geometry"]["type"] == "mask":
                    predictions.append(Prediction(image_id=image_id, model_version=model, rank=rank, label=labels[rank], class_name="date",
                                                  score=0.9 - rank / 10, rle=shape["geometry"]["rle"], bbox=shape["bbox"], area=shape["area"]))
        if len(annotations) >= 5000:
            Annotation.objects.bulk_create(annotations)
            Revision.objects.bulk_create(history)
            annotations, history = [], []
    Annotation.objects.bulk_create(annotations)
    Revision.objects.bulk_create(history)
    Prediction.objects.bulk_create(predictions)
    return project.pk


# --------------------------------------------------------------------------------------------
# The measured steps (each in a child process)
# --------------------------------------------------------------------------------------------

_FLOOR_TABLES = ("images", "model_versions", "predictions", "annotations", "revisions")


def _floor_rows(project_id: int) -> dict[str, list[dict[str, Any]]]:
    from annotator.backups import tables as T
    from annotator.projects.models import Label

    rows = {"labels": list(Label.objects.filter(project_id=project_id).order_by("id").values())}
    for table in T.TABLES:
        if table.name in _FLOOR_TABLES:
            rows[table.name] = list(table.queryset(project_id).values())
    return rows


def floor_backup(project_id: int, out: Path) -> dict[str, Any]:
    from django.conf import settings

    from annotator.images.models import Image

    media = Path(settings.MEDIA_ROOT)
    rows = _floor_rows(project_id)
    with zipfile.ZipFile(out, "w", allowZip64=True) as archive:
        for file, thumbnail in Image.objects.filter(project_id=project_id).order_by("id").values_list("file", "thumbnail"):
            for name in (file, thumbnail):
                archive.write(media / name, f"media/{name}", compress_type=zipfile.ZIP_STORED)
        info = zipfile.ZipInfo("rows.json")
        info.compress_type = zipfile.ZIP_DEFLATED
        info._compresslevel = 1  # type: ignore[attr-defined]
        with archive.open(info, "w", force_zip64=True) as raw, io.TextIOWrapper(raw, encoding="utf-8") as text:
            json.dump(rows, text, default=str)
    return {"bytes": out.stat().st_size}


def floor_restore(path: Path) -> dict[str, Any]:
    from django.conf import settings
    from django.db import transaction

    from annotator.annotations.models import Annotation, Prediction, Revision
    from annotator.images.models import Image
    from annotator.learning.models import ModelVersion
    from annotator.projects.models import Label, Project

    media = Path(settings.MEDIA_ROOT)
    with zipfile.ZipFile(path) as archive, transaction.atomic():
        rows = json.load(archive.open("rows.json"))
        project = Project.objects.create(name=f"floor-{uuid.uuid4().hex[:6]}")
        maps: dict[str, dict[int, int]] = {}

        def insert(model: Any, table: str, refs: dict[str, str], **fixed: Any) -> None:
            objs = []
            for row in rows[table]:
                row = dict(row)
                old = row.pop("id", None)
                row.pop("project_id", None)
                for column, target in refs.items():
                    if row.get(column) is not None:
                        row[column] = maps[target][row[column]]
                objs.append((old, model(**row, **fixed)))
            created = model.objects.bulk_create([o for _, o in objs], batch_size=1000)
            maps[table] = {old: obj.pk for (old, _), obj in zip(objs, created)}

        insert(Label, "labels", {}, project_id=project.pk)
        insert(ModelVersion, "model_versions", {}, project_id=project.pk)
        for row in rows["images"]:
            for key in ("file", "thumbnail"):
                target = media / f"projects/{project.pk}/{row[key].split('/', 2)[2]}"
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(f"media/{row[key]}") as src, open(target, "wb") as dst:
                    dst.write(src.read())
                row[key] = str(target.relative_to(media))
        insert(Image, "images", {}, project_id=project.pk)
        insert(Prediction, "predictions", {"image_id": "images", "model_version_id": "model_versions", "label_id": "labels", "job_id": "jobs"})
        for row in rows["annotations"]:
            row["prediction_id"] = None
        insert(Annotation, "annotations", {"image_id": "images", "label_id": "labels", "model_version_id": "model_versions"})
        insert(Revision, "revisions", {"image_id": "images"})
    return {"project": project.pk}


def ours_backup(project_id: int, out: Path) -> dict[str, Any]:
    from django.core.files.storage import default_storage

    from annotator.backups.services import BackupOptions, backup_create
    from annotator.projects.models import Project

    start = time.perf_counter()
    backup = backup_create(project=Project.objects.get(pk=project_id), options=BackupOptions(images=True))
    seconds = time.perf_counter() - start
    out.write_text(default_storage.path(backup.file.name))  # where the restore step finds the archive
    return {"bytes": backup.size, "seconds": seconds}


def ours_restore(path: Path) -> dict[str, Any]:
    from annotator.backups.services import RestoreOptions, restore

    result = restore(path=path, archive_name=path.name, options=RestoreOptions(name=f"restored-{uuid.uuid4().hex[:6]}"))
    return {"project": result.project.pk, "counts": result.counts}


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def child(step: str, project_id: int, path: Path) -> None:
    _setup_django()
    from django.db import connection

    connection.ensure_connection()
    base = _status_kib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # restart the peak (VmHWM) from here
    except OSError:
        pass
    start = time.perf_counter()
    if step == "idle":
        result: dict[str, Any] = {}
    elif step == "floor-backup":
        result = floor_backup(project_id, path)
    elif step == "floor-restore":
        result = floor_restore(path)
    elif step == "backup":
        result = ours_backup(project_id, path)
    elif step == "restore":
        result = ours_restore(Path(path.read_text()))
    else:
        raise SystemExit(f"unknown step {step}")
    result.setdefault("seconds", time.perf_counter() - start)
    result["growth_mib"] = max(0, _status_kib("VmHWM") - base) / 1024
    print("RESULT " + json.dumps(result))


def run_child(step: str, project_id: int, path: Path) -> tuple[dict[str, Any], float]:
    """Run one step in a fresh process; its result and its peak RSS in MiB."""
    process = subprocess.Popen([sys.executable, __file__, "--child", step, "--project", str(project_id), "--path", str(path)],
                               stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"step {step} failed ({process.returncode}):\n{output}")
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--per-image", type=int, default=20)
    parser.add_argument("--revisions", type=int, default=3, help="revisions per image")
    parser.add_argument("--small", type=int, default=1000, help="images of the second project (memory comparison)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--project", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.project, Path(args.path))
        return
    if args.small >= args.images:
        parser.error("--small must be below --images")
    os.environ.setdefault("ANNOTATOR_DATA_DIR", tempfile.mkdtemp(prefix="annotator-bench-"))
    database = _fresh_postgres()
    try:
        _setup_django()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        t0 = time.perf_counter()
        big = build(name="bench-big", images=args.images, per_image=args.per_image, revisions=args.revisions)
        small = build(name="bench-small", images=args.small, per_image=args.per_image, revisions=args.revisions, seed=7)
        objects = args.images * args.per_image
        print(f"database: {connection.vendor}; built {args.images:,} images × {args.per_image} = {objects:,} objects, "
              f"{args.revisions} revisions per image (and a {args.small:,}-image project) in {time.perf_counter() - t0:.1f} s")
        connection.close()
        work = Path(os.environ["ANNOTATOR_DATA_DIR"]) / "bench"
        work.mkdir(exist_ok=True)
        idle, idle_rss = run_child("idle", 0, work / "none")
        floor_b, floor_b_rss = run_child("floor-backup", big, work / "floor.zip")
        ours_b, ours_b_rss = run_child("backup", big, work / "ours.path")
        floor_r, floor_r_rss = run_child("floor-restore", 0, work / "floor.zip")
        ours_r, ours_r_rss = run_child("restore", 0, work / "ours.path")
        small_b, small_b_rss = run_child("backup", small, work / "small.path")
        small_r, small_r_rss = run_child("restore", 0, work / "small.path")
        assert ours_r["counts"]["annotations"] == objects, ours_r["counts"]
    finally:
        if database:
            from django.db import connections

            connections.close_all()
            _drop_postgres(database)

    print(f"{'':44}{'time (s)':>9}{'peak RSS (MiB)':>16}{'growth (MiB)':>14}{'archive (MiB)':>15}")
    print(f"{'idle process (Django loaded)':44}{'':>9}{idle_rss:>16.0f}")
    table = [
        ("floor backup (values + json.dump + zip)", floor_b, floor_b_rss),
        ("our backup", ours_b, ours_b_rss),
        ("floor restore (unzip + json.load + bulk_create)", floor_r, floor_r_rss),
        ("our restore", ours_r, ours_r_rss),
        (f"our backup, {args.small:,} images", small_b, small_b_rss),
        (f"our restore, {args.small:,} images", small_r, small_r_rss),
    ]
    for label, result, rss in table:
        size = f"{result['bytes'] / 2**20:>15.1f}" if "bytes" in result else ""
        print(f"{label:44}{result['seconds']:>9.2f}{rss:>16.0f}{result['growth_mib']:>14.1f}{size}")
    print(f"ratio ours/floor: backup {ours_b['seconds'] / floor_b['seconds']:.2f}x, restore {ours_r['seconds'] / floor_r['seconds']:.2f}x")
    print(f"memory growth during the step, {args.small:,} → {args.images:,} images: backup {small_b['growth_mib']:.1f} → "
          f"{ours_b['growth_mib']:.1f} MiB, restore {small_r['growth_mib']:.1f} → {ours_r['growth_mib']:.1f} MiB "
          f"(floor: {floor_b['growth_mib']:.0f} and {floor_r['growth_mib']:.0f} MiB at {args.images:,})")


if __name__ == "__main__":
    main()
