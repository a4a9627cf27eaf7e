"""Benchmark: resident memory of `make run` (web + worker + beat), idle and after each kind of job.

Starts `scripts/run.sh` the way `make run` does (its own data dir; SQLite and the filesystem
broker unless DATABASE_URL / REDIS_URL are set), waits until the web answers and the worker has
reported in, then sums the resident memory (RSS, and PSS, which counts a page shared by forked
processes once) of every process under it: idle, after an import, after an export and after a
pre-annotation (the one job that loads torch). The jobs are started from this process through
the same services the API calls, on the same database and broker, and run in the server's worker.

The floor printed next to the total is what the same number of bare Python processes take
(the interpreter alone, measured in this run): what no change to the application can remove.

    .venv/bin/python bench/footprint.py [--images 20] [--settle 5]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _server import free_port  # noqa: E402


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for child in _children(pid):
        pids += _tree(child)
    return pids


def _memory(pid: int) -> tuple[str, float, float]:
    """(command, RSS MB, PSS MB) of one process."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return "", 0.0, 0.0
    values = {line.split(":")[0]: int(line.split()[1]) for line in rollup.splitlines()[1:] if line.split()[1:2]}
    return cmd, values.get("Rss", 0) / 1024, values.get("Pss", 0) / 1024


def _snapshot(root: int, title: str) -> dict[str, float]:
    rows = [(pid, *_memory(pid)) for pid in _tree(root)]
    rows = [row for row in rows if row[1]]
    print(f"\n{title}")
    for pid, cmd, rss, pss in rows:
        print(f"  {pid:>7}  RSS {rss:6.0f} MB  PSS {pss:6.0f} MB  {_short(cmd)}")
    total_rss, total_pss = sum(r[2] for r in rows), sum(r[3] for r in rows)
    torch_loaded = [pid for pid, *_ in rows if _has_torch(pid)]
    print(f"  total    RSS {total_rss:6.0f} MB  PSS {total_pss:6.0f} MB  ({len(rows)} processes; torch loaded in {len(torch_loaded)})")
    return {"rss": total_rss, "pss": total_pss, "processes": len(rows)}


def _has_torch(pid: int) -> bool:
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def _short(cmd: str) -> str:
    cmd = cmd.replace(str(ROOT) + "/", "")
    return cmd if len(cmd) < 90 else cmd[:87] + "..."


def _bare_python_rss() -> float:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    time.sleep(0.5)
    rss = _memory(process.pid)[1]
    process.kill()
    process.wait()
    return rss


def _coco_zip(count: int) -> bytes:
    import numpy as np
    from PIL import Image as PILImage

    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    images = []
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(count):
            pixels = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
            jpeg = io.BytesIO()
            PILImage.fromarray(pixels).save(jpeg, format="JPEG", quality=80)
            archive.writestr(f"images/{index}.jpg", jpeg.getvalue())
            images.append({"id": index + 1, "file_name": f"{index}.jpg", "width": 320, "height": 240})
        coco = {"images": images, "annotations": [], "categories": [{"id": 1, "name": "disc"}]}
        archive.writestr("instances.json", json.dumps(coco))
    return buffer.getvalue()


def _wait_job(job_id: int, timeout: float = 600) -> None:
    from annotator.jobs.models import Job

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.state in ("succeeded", "failed", "cancelled"):
            assert job.state == "succeeded", f"{job.kind} job {job.state}: {job.error}"
            return
        time.sleep(0.5)
    raise TimeoutError(f"job {job_id} did not finish")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20, help="images in the import (and pre-annotated)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait before each measurement")
    parser.add_argument("--skip-preannotate", action="store_true")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="annotator-footprint-")
    env = {**os.environ, "ANNOTATOR_DATA_DIR": data_dir, "PORT": str(free_port()), "ANNOTATOR_HTTPS": "0"}
    os.environ.update({"ANNOTATOR_DATA_DIR": data_dir, "ANNOTATOR_HTTPS": "0", "DJANGO_SETTINGS_MODULE": "annotator.settings"})
    server = subprocess.Popen(["scripts/run.sh"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        url = f"http://127.0.0.1:{env['PORT']}/healthz"
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("make run did not start") from None
                time.sleep(0.5)
        import django

        django.setup()
        from annotator.jobs.models import JobKind
        from annotator.jobs.services import job_start
        from annotator.jobs.workers import workers_alive

        while not workers_alive():
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not report in")
            time.sleep(0.5)
        time.sleep(args.settle)
        floor = _bare_python_rss()
        results = {"idle": _snapshot(server.pid, "idle")}

        from django.core.files.base import ContentFile
        from django.db import transaction

        from annotator.datasets.services import upload_store
        from annotator.projects.services import project_create

        project = project_create(name=f"footprint-{os.getpid()}", creator=None, labels=[{"name": "disc"}])
        stored = upload_store(ContentFile(_coco_zip(args.images)), name="bench.zip")
        options = {"status": "new", "label_map": {}, "create_labels": True}
        with transaction.atomic():
            job = job_start(kind=JobKind.IMPORT, project=project, user=None,
                            params={"format": "coco", "upload": stored, "filename": "bench.zip", "options": options})
        _wait_job(job.pk)
        time.sleep(args.settle)
        results["after import"] = _snapshot(server.pid, f"after an import of {args.images} images")

        params = {"format": "coco", "name": "", "status": "all", "labels": None, "include_images": True,
                  "predictions": False, "model_version": None}
        with transaction.atomic():
            job = job_start(kind=JobKind.EXPORT, project=project, params=params, user=None)
        _wait_job(job.pk)
        time.sleep(args.settle)
        results["after export"] = _snapshot(server.pid, "after an export (with images)")

        if not args.skip_preannotate:
            import torch

            from annotator.learning.params import PreannotateParams
            from annotator.learning.services import preannotate_start
            from ml.models.maskrcnn import build_model, save_checkpoint

            torch.manual_seed(0)
            checkpoint = Path(data_dir) / "bench-small.pt"
            kwargs = {"min_size": 256, "max_size": 384}
            save_checkpoint(checkpoint, model=build_model("small", 1, **kwargs), arch="small", class_names=["disc"],
                            config={"model_kwargs": kwargs})
            with transaction.atomic():
                job = preannotate_start(project=project, user=None, params=PreannotateParams(
                    model=str(checkpoint), threshold=0.5, scope="all"), allow_any_path=True)
            _wait_job(job.pk)
            time.sleep(args.settle)
            results["after pre-annotation"] = _snapshot(server.pid, "after a pre-annotation (loads torch in one pool process)")

        print("\nsummary (sum of RSS; floor = the same number of bare Python interpreters)")
        for name, figures in results.items():
            floor_total = floor * figures["processes"]
            print(f"  {name:<22} RSS {figures['rss']:6.0f} MB   PSS {figures['pss']:6.0f} MB   "
                  f"floor {floor_total:4.0f} MB ({figures['processes']} x {floor:.0f})   RSS/floor {figures['rss'] / floor_total:5.1f}x"
                  f"   target 700 MB: {'met' if figures['rss'] <= 700 else 'NOT met'}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
