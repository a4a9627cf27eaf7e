"""The bulk import path: one thumbnail per image, chunks all or nothing, the same rows as a save.

Imports are handled in chunks (decode, store, clean: no row) and written in one transaction with
bulk inserts. These tests pin what that must not change: the rows are those that saving each
image's objects one at a time made (on COCO's own ground truth), the workflow counts follow the
bulk insert, and a chunk that fails leaves no row, no label and no file behind.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from annotator.annotations.models import Annotation, Revision, RevisionAction
from annotator.annotations.services import annotation_digest, annotations_replace
from annotator.core.errors import DomainError
from annotator.core.files import temp_folder
from annotator.datasets import imports
from annotator.datasets.services import ImportOptions, dataset_import
from annotator.images import imaging
from annotator.images.imaging import image_decode
from annotator.images.models import Image, ImageStatus
from annotator.images.selectors import image_status_counts
from annotator.images.services import image_store
from annotator.projects.models import Label, Project
from tests.datasets import DATASETS
from tests.factories import ProjectFactory, make_images, png_bytes

TINYCOCO = DATASETS / "coco_tinycoco"

pytestmark = pytest.mark.django_db


def _coco(folder: Path, count: int, *, corrupt: int | None = None, bad_score: int | None = None, seed: int = 0) -> Path:
    """`count` distinct images with two objects each; image `corrupt` is not an image file."""
    rng = random.Random(seed)
    (folder / "images").mkdir(parents=True)
    images, annotations = [], []
    for k in range(count):
        color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        data = b"not an image at all" if k == corrupt else png_bytes(40, 30, color=color)
        (folder / "images" / f"{k}.png").write_bytes(data)
        images.append({"id": k + 1, "file_name": f"{k}.png", "width": 40, "height": 30})
        for j in range(2):
            annotations.append({
                "id": 2 * k + j + 1, "image_id": k + 1, "category_id": 1 + j, "iscrowd": 0,
                "segmentation": [[2 + j, 2, 20 + j, 2, 20, 20, 2, 20]],
                **({"score": 1.5} if k == bad_score and j == 1 else {}),
            })
    path = folder / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]}))
    return path


def _project_files(project: Project) -> set[str]:
    """The project's stored files. Test databases roll back, the media folder does not: tests
    compare with what was there before (each test's images are its own, by seed)."""
    root = Path(settings.MEDIA_ROOT) / "projects" / str(project.pk)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.is_dir() else set()


def test_each_imported_image_is_decoded_and_thumbnailed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = ProjectFactory()
    made: list[int] = []
    real = imaging._thumbnail
    monkeypatch.setattr(imaging, "_thumbnail", lambda image: made.append(1) or real(image))

    report = dataset_import(project=project, fmt="coco", path=_coco(tmp_path / "src", 5), options=ImportOptions(), user=None)

    assert report["created_count"] == 5
    assert len(made) == 5, "one thumbnail per image (the check and the store used to make one each)"
    assert all(image.thumbnail and image.thumbnail.storage.exists(image.thumbnail.name) for image in Image.objects.filter(project=project))


@pytest.mark.parametrize("status", ["new", "submitted", "accepted"])
def test_bulk_import_keeps_the_workflow_counts_right(tmp_path: Path, status: str) -> None:
    project = ProjectFactory()
    make_images(project, 2)  # counts from before the import stay right too
    dataset_import(project=project, fmt="coco", path=_coco(tmp_path / "src", 7), options=ImportOptions(status=status), user=None)

    counted = dict(Image.objects.filter(project=project).order_by().values_list("status").annotate(n=Count("id")))
    assert counted == {ImageStatus.NEW: 2 + 7} if status == "new" else {ImageStatus.NEW: 2, status: 7}
    assert {s: n for s, n in image_status_counts(project).items() if n} == counted, "the trigger-kept counts"
    if status == "submitted":
        assert not Image.objects.filter(project=project, status=status, submitted_at__isnull=True).exists()


@pytest.mark.parametrize("failure", ["corrupt image", "score out of range"])
def test_a_failing_chunk_leaves_no_row_no_label_and_no_file(tmp_path: Path, settings, failure: str) -> None:  # type: ignore[no-untyped-def]
    settings.ANNOTATOR_IMPORT_CHUNK_IMAGES = 2
    project = ProjectFactory()
    # image 6 is in the fourth chunk: the first three are stored by then
    source = _coco(tmp_path / "src", 8, seed=7, **({"corrupt": 6} if failure == "corrupt image" else {"bad_score": 6}))
    before = _project_files(project)
    chunks: list[int] = []
    real = imports.import_chunk
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(imports, "import_chunk", lambda **kw: chunks.append(1) or real(**kw))
        with pytest.raises(DomainError) as error:
            dataset_import(project=project, fmt="coco", path=source, options=ImportOptions(status="accepted"), user=None)

    assert "6.png" in error.value.detail
    assert len(chunks) == 4
    assert not Image.objects.filter(project=project).exists()
    assert not Annotation.objects.filter(image__project=project).exists()
    assert not Label.objects.filter(project=project).exists(), "the labels the import created are removed again"
    assert _project_files(project) == before, "the files the earlier chunks stored are removed"


def test_a_retry_after_a_failure_imports_everything(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ANNOTATOR_IMPORT_CHUNK_IMAGES = 3
    project = ProjectFactory()
    before = _project_files(project)
    with pytest.raises(DomainError):
        dataset_import(project=project, fmt="coco", path=_coco(tmp_path / "bad", 7, corrupt=5, seed=3), options=ImportOptions(), user=None)
    report = dataset_import(project=project, fmt="coco", path=_coco(tmp_path / "good", 7, seed=3), options=ImportOptions(), user=None)

    assert (report["created_count"], report["annotation_count"], report["labels_created"]) == (7, 14, ["cat", "dog"])
    rows = Image.objects.filter(project=project)
    stored = {name.removeprefix(f"projects/{project.pk}/") for row in rows for name in (row.file.name, row.thumbnail.name)}
    assert _project_files(project) - before == stored - before and stored <= _project_files(project)


def _one_at_a_time(project: Project, path: Path, user: Any = None) -> dict[str, Any]:
    """The import as it was before the bulk path: each image stored, then its objects saved with
    annotations_replace (its own revision), then its status set — one image at a time."""
    options = ImportOptions(status="submitted")
    with temp_folder("reference") as workdir:
        dataset, _root = imports.dataset_read("coco", path, images_dir=TINYCOCO / "images" / "train2017", workdir=workdir)
        mapping, to_create = imports._resolve_labels(project, dataset, options)
        for name in to_create:
            Label.objects.create(project=project, name=name, color="#ff0000", order=Label.objects.filter(project=project).count())
        label_ids = dict(Label.objects.filter(project=project).values_list("name", "pk"))
        source_ids = {source: label_ids[target] for source, target in mapping.items()}
        repairs = [str(note) for note in dataset.repairs]
        for image in dataset.images:
            row = image_store(project=project, name=image.file_name, decoded=image_decode(image.read_bytes() or b"", name=image.file_name), written=[])
            if image.instances:
                row, _rows, repaired = annotations_replace(
                    image=row, user=user, base_version=row.version, items=imports._items(image.instances, source_ids),
                    action=RevisionAction.IMPORT, simplify=True,
                )
                repairs += [f"{image.file_name}: object {imports._source_name(image.instances[r['index']], r['index'])}: {r['message']}" for r in repaired]
            Image.objects.filter(pk=row.pk).update(status=ImageStatus.SUBMITTED, submitted_at=timezone.now())
    return {"repairs": repairs}


def _rows(project: Project) -> tuple[list[Any], list[Any], list[Any]]:
    names = dict(Label.objects.filter(project=project).values_list("pk", "name"))
    images = list(Image.objects.filter(project=project).order_by("original_name").values_list(
        "original_name", "width", "height", "checksum", "status", "version", "assignee", "reviewer"))
    annotations = [
        (row.image.original_name, names[row.label_id], row.kind, row.polygons, row.rle, row.bbox, row.area, row.z_order,
         row.source, row.score, row.attributes, row.author_id)
        for row in Annotation.objects.filter(image__project=project).select_related("image").order_by("image__original_name", "z_order")
    ]
    revisions = [
        (rev.image.original_name, rev.version, rev.action, rev.object_count, rev.summary,
         [{**{k: v for k, v in obj.items() if k not in ("uid", "created_at", "updated_at")}, "label": names[obj["label"]]}
          for obj in rev.annotations])
        for rev in Revision.objects.filter(image__project=project).select_related("image").order_by("image__original_name", "version")
    ]
    return images, annotations, revisions


def test_the_bulk_import_writes_the_rows_saving_one_image_at_a_time_wrote(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ANNOTATOR_IMPORT_CHUNK_IMAGES = 3  # several chunks
    source = TINYCOCO / "annotations" / "instances_train2017.json"
    reference = ProjectFactory(name="one at a time")
    bulk = ProjectFactory(name="bulk")

    expected = _one_at_a_time(reference, source)
    report = dataset_import(project=bulk, fmt="coco", path=source,
                            options=ImportOptions(status="submitted", images_dir=TINYCOCO / "images" / "train2017"), user=None)

    assert report["created_count"] == Image.objects.filter(project=reference).count() > 3
    assert report["repairs"] == expected["repairs"][:imports.REPORT_LIMIT] and report["repaired_count"] == len(expected["repairs"])
    ours, theirs = _rows(bulk), _rows(reference)
    assert ours[0] == theirs[0], "images"
    assert ours[1] == theirs[1], "annotations"
    assert ours[2] == theirs[2], "revisions"
    assert all(row.digest == annotation_digest(row) for row in Annotation.objects.filter(image__project=bulk))


@pytest.mark.parametrize(("total", "setting", "expected"), [
    (1000, 200, 63),  # 16 chunks: two workers share them evenly (5 of 200 would leave one waiting)
    (5000, 200, 200),  # the setting is the largest chunk
    (100, 200, 25),  # never smaller than CHUNK_MIN_IMAGES …
    (7, 2, 2),  # … unless the setting says so
    (3, 0, 1),
])
def test_chunks_are_small_enough_for_several_workers(settings, total: int, setting: int, expected: int) -> None:  # type: ignore[no-untyped-def]
    settings.ANNOTATOR_IMPORT_CHUNK_IMAGES = setting
    assert imports.chunk_size(total) == expected
