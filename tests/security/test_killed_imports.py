"""A killed import leaves no litter: a retry reuses what it stored, the sweeper removes the rest.

The import runs in a real process that is killed with SIGKILL in the middle of storing images,
so nothing of its own clean-up runs; the rows roll back with its connection. The retry must end
with every file of the project's media folder referenced by a row (stored names are the image's
checksum, the same on every try), and the dead process's temporary folder lies under the data
dir, where the sweeper finds it.
"""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command

from annotator.core.sweep import orphans_sweep
from annotator.datasets.services import ImportOptions, dataset_import
from annotator.images.models import Image
from annotator.jobs.models import Job, JobKind, JobState
from tests.factories import ProjectFactory, png_bytes
from tests.integration.conftest import _database_url  # the test database, for another process

ROOT = Path(__file__).resolve().parents[2]
COUNT = 12
KILL_AFTER = 5  # images stored when the process dies

KILLED_IMPORT = r"""
import os, signal, sys
from pathlib import Path
import django
django.setup()
from annotator.datasets.services import ImportOptions, dataset_import
from annotator.projects.models import Project

def progress(done, total, message):
    # Files are stored as the images are checked (the rows come at the end, in one transaction).
    if message.startswith("Checking") and done >= int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)  # no except/finally runs: the clean-up a crash never gets

dataset_import(project=Project.objects.get(pk=int(sys.argv[1])), fmt="coco", path=Path(sys.argv[2]),
               options=ImportOptions(), user=None, progress=progress)
"""


def _coco_dataset(folder: Path) -> Path:
    (folder / "images").mkdir(parents=True)
    images, annotations = [], []
    for k in range(COUNT):
        (folder / "images" / f"{k}.png").write_bytes(png_bytes(32, 24, color=(k * 20, 100, 200 - k)))
        images.append({"id": k + 1, "file_name": f"{k}.png", "width": 32, "height": 24})
        annotations.append({"id": k + 1, "image_id": k + 1, "category_id": 1, "segmentation": [[2, 2, 20, 2, 20, 20, 2, 20]],
                            "bbox": [2, 2, 18, 18], "area": 324, "iscrowd": 0})
    path = folder / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "nut"}]}))
    return path


def _project_files(project_id: int) -> set[str]:
    root = Path(settings.MEDIA_ROOT)
    folder = root / "projects" / str(project_id)
    return {p.relative_to(root).as_posix() for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else set()


def _referenced(project_id: int) -> set[str]:
    pairs = Image.objects.filter(project_id=project_id).values_list("file", "thumbnail")
    return {name for pair in pairs for name in pair if name}


def _temp_entries() -> set[str]:
    return {p.name for p in Path(settings.ANNOTATOR_TMP_DIR).iterdir()}


def test_a_retry_after_a_kill_9_leaves_no_unreferenced_files(transactional_db, tmp_path: Path) -> None:
    project = ProjectFactory(name="Killed")
    dataset = _coco_dataset(tmp_path / "ds")
    temp_before = _temp_entries()
    # Rolled-back tests before this one may have left files under the same project id (SQLite
    # reuses ids): only what this test adds counts.
    files_before = _project_files(project.pk)
    env = {**os.environ, "DATABASE_URL": _database_url(), "PYTHONUNBUFFERED": "1"}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_IMPORT, str(project.pk), str(dataset), str(KILL_AFTER)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # What the dead process left: files of images that never got a row, its unpacking folder.
    assert not Image.objects.filter(project=project).exists()
    litter = _project_files(project.pk) - files_before
    assert len(litter) == 2 * KILL_AFTER  # image + thumbnail each
    left_temp = _temp_entries() - temp_before
    assert [name for name in left_temp if name.startswith("import-")], "the temp folder lives under the data dir"

    result = dataset_import(project=project, fmt="coco", path=dataset, options=ImportOptions(), user=None)
    assert result["created_count"] == COUNT
    files = _project_files(project.pk) - files_before
    assert files == _referenced(project.pk), f"unreferenced: {sorted(files - _referenced(project.pk))}"
    assert litter <= files  # the retry took the dead attempt's files over, under the same names
    assert _temp_entries() - temp_before == left_temp  # the retry's own folder is gone

    # The sweeper removes the dead process's folder once it is old enough, and no image file.
    # (Ageing it rather than sweeping with no age limit: other tests may be importing meanwhile.)
    assert not left_temp & set(orphans_sweep().folders)  # younger than ANNOTATOR_SWEEP_AFTER_HOURS
    for name in left_temp:
        _age_tree(Path(settings.ANNOTATOR_TMP_DIR) / name, hours=settings.ANNOTATOR_SWEEP_AFTER_HOURS + 1)
    report = orphans_sweep()
    assert left_temp <= set(report.folders)
    assert not [name for name in report.files if name.startswith(f"projects/{project.pk}/")]
    assert not left_temp & _temp_entries()
    assert _referenced(project.pk) <= _project_files(project.pk)


def _age_tree(path: Path, *, hours: float) -> None:
    past = time.time() - hours * 3600
    for item in [*path.rglob("*"), path]:
        os.utime(item, (past, past), follow_symlinks=False)


def _age(name: str, hours: float) -> None:
    past = time.time() - hours * 3600
    os.utime(default_storage.path(name), (past, past))


def test_the_sweeper_removes_only_old_unreferenced_files_and_stale_temp_entries(db) -> None:
    project = ProjectFactory(name="Swept")
    from annotator.images.services import images_add

    images_add(project=project, sources=[("kept.png", lambda: png_bytes(8, 8))])
    kept = _referenced(project.pk)
    for name in kept:
        _age(name, 48)
    orphan = default_storage.save(f"projects/{project.pk}/images/ab/orphan.png", ContentFile(b"x"))
    _age(orphan, 48)
    young = default_storage.save(f"projects/{project.pk}/images/ab/young.png", ContentFile(b"y"))
    cleanup = [young]
    pending = default_storage.save("imports/20250101/pending.zip", ContentFile(b"z"))
    _age(pending, 48)
    Job.objects.create(kind=JobKind.IMPORT, project=project, params={"upload": pending}, state=JobState.QUEUED)
    finished = default_storage.save("imports/20250101/finished.zip", ContentFile(b"z"))
    _age(finished, 48)
    Job.objects.create(kind=JobKind.IMPORT, project=project, params={"upload": finished}, state=JobState.FAILED)

    tmp = Path(settings.ANNOTATOR_TMP_DIR)
    stale = tmp / "import-stale"
    (stale / "extracted").mkdir(parents=True)
    (stale / "extracted" / "a.png").write_bytes(b"a")
    _age_tree(stale, hours=48)
    fresh = tmp / "import-fresh"
    fresh.mkdir()

    out = io.StringIO()
    call_command("sweep_orphans", "--dry-run", stdout=out)
    assert f"file   {orphan}" in out.getvalue() and "tmp    import-stale" in out.getvalue()
    assert default_storage.exists(orphan) and stale.exists()

    report = orphans_sweep()
    assert sorted(report.files) == sorted([orphan, finished])
    assert "import-stale" in report.folders and "import-fresh" not in report.folders
    assert not default_storage.exists(orphan) and not default_storage.exists(finished) and not stale.exists()
    for name in [*kept, young, pending]:
        assert default_storage.exists(name), name
    assert fresh.exists()
    fresh.rmdir()
    for name in cleanup:
        default_storage.delete(name)


def test_the_sweeper_runs_on_a_beat_schedule() -> None:
    from annotator.celery import app

    app.loader.import_default_modules()
    entry = settings.CELERY_BEAT_SCHEDULE["sweep-orphans"]
    assert entry["task"] == "core.sweep_orphans" and entry["task"] in app.tasks


def test_temporary_files_live_under_the_data_dir() -> None:
    tmp = Path(settings.ANNOTATOR_TMP_DIR)
    assert tmp.is_relative_to(Path(settings.DATA_DIR))
    assert Path(settings.FILE_UPLOAD_TEMP_DIR) == tmp


@pytest.mark.parametrize("pre_existing", ["torn", "whole"])
def test_an_image_stored_again_keeps_its_checksum_name(db, pre_existing: str) -> None:
    """What a dead attempt left under the image's name (a torn write, or the whole file) is replaced."""
    from annotator.images.services import images_add

    project = ProjectFactory(name="Names")
    files_before = _project_files(project.pk)
    data = png_bytes(8, 8, color=(5, 6, 7))
    first = images_add(project=project, sources=[("a.png", lambda: data)]).created[0]
    name, thumb = first.file.name, first.thumbnail.name
    content = default_storage.open(name).read()
    Image.objects.filter(pk=first.pk).delete()  # the row is gone, as after a rollback; the files stay
    if pre_existing == "torn":
        default_storage.delete(name)
        default_storage.save(name, ContentFile(content[:10]))
    again = images_add(project=project, sources=[("a.png", lambda: data)]).created[0]
    assert (again.file.name, again.thumbnail.name) == (name, thumb)
    assert default_storage.open(name).read() == content
    assert _project_files(project.pk) - files_before <= {name, thumb}
    assert {name, thumb} <= _project_files(project.pk)
