"""Project backups: a full round trip, damaged archives, users, options, the commands and an old archive."""
from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import orjson
import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from annotator.annotations.models import Annotation, Revision
from annotator.backups.archive import FORMAT_VERSION, MANIFEST
from annotator.backups.models import ProjectBackup
from annotator.backups.services import (
    BackupOptions,
    RestoreOptions,
    backup_create,
    backup_write,
    duplicate_name,
    restore,
)
from annotator.consensus.models import Replica
from annotator.core.errors import DomainError
from annotator.groundtruth.models import GroundTruth
from annotator.images.models import Image
from annotator.learning.models import ModelVersion
from annotator.projects.models import Membership, Project
from annotator.review.models import ReviewComment
from tests.backup_helpers import assert_same_content, project_content, rich_project
from tests.factories import UserFactory, make_images

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "backups"


def _backup(project: Project, tmp_path: Path, **options: bool) -> Path:
    path = tmp_path / "project.zip"
    backup_write(project=project, out=path, options=BackupOptions(**options))
    return path


def _rows(model) -> int:  # type: ignore[no-untyped-def]
    return model.objects.count()


def test_round_trip_restores_every_row_revision_review_prediction_and_file(world, tmp_path: Path) -> None:
    project = rich_project(world)
    before = project_content(project)
    assert len(before["Image"]) >= 20 and len(before["Revision"]) >= 5 and before["ObjectDecision"] and before["ReviewComment"]
    assert len(before["GroundTruth"]) == 2 and before["project"]["ground_truth_rate"] == 0.25
    assert before["project"]["ground_truth_feedback"] is True
    assert sorted(a["status"] for a in before["GroundTruthAttempt"]) == ["in_progress", "submitted"]
    assert any(a["scores"] and a["scores"]["conflicts"] for a in before["GroundTruthAttempt"])
    assert sorted(r["status"] for r in before["Replica"]) == ["in_progress", "submitted", "submitted"]
    assert before["project"]["consensus_annotators"] == 2 and any(i["agreement"] is not None for i in before["Image"])
    path = _backup(project, tmp_path, images=True, models=True, datasets=True)

    result = restore(path=path, archive_name=path.name, options=RestoreOptions(name="Fruit copy"))

    restored = result.project
    assert restored.pk != project.pk and restored.name == "Fruit copy"
    assert_same_content(before, project_content(restored))
    # Geometry byte for byte, revisions in order with their authors and times, pins on the same objects.
    for table in (Annotation,):
        a = list(table.objects.filter(image__project=project).order_by("id").values_list("polygons", "rle"))
        b = list(table.objects.filter(image__project=restored).order_by("id").values_list("polygons", "rle"))
        assert [orjson.dumps(x) for x in a] == [orjson.dumps(x) for x in b]
    history = lambda p: list(Revision.objects.filter(image__project=p).order_by("image_id", "version")  # noqa: E731
                             .values_list("version", "action", "author__username", "created_at"))
    assert history(project) == history(restored)
    pins = lambda p: sorted(ReviewComment.objects.filter(image__project=p).values_list("annotation_uid", "x", "y", "resolved", "text"),  # noqa: E731
                            key=str)
    assert pins(project) == pins(restored)
    # The copy owns its files: other names in storage, the same bytes.
    original_files = set(Image.objects.filter(project=project).values_list("file", flat=True))
    assert not original_files & set(Image.objects.filter(project=restored).values_list("file", flat=True))
    weights = ModelVersion.objects.get(project=restored, name="round 1").checkpoint
    assert f"project-{restored.pk}" in weights
    assert result.counts["annotations"] == Annotation.objects.filter(image__project=project).count()


def test_a_restored_project_edits_like_the_original(world, tmp_path: Path) -> None:
    """Digests are recomputed with the new ids: saving the same set again changes nothing."""
    from annotator.annotations.selectors import annotation_to_dict
    from annotator.annotations.services import annotations_replace

    project = rich_project(world, fruits=False)
    restored = restore(path=_backup(project, tmp_path), archive_name="p.zip", options=RestoreOptions(name="Copy")).project
    image = Image.objects.filter(project=restored, annotations__isnull=False).order_by("id").first()
    items = [annotation_to_dict(a) for a in Annotation.objects.filter(image=image).order_by("z_order", "id")]
    saved, rows, _ = annotations_replace(image=image, user=None, base_version=image.version, items=items)
    assert Revision.objects.get(image=image, version=saved.version).summary == {"added": 0, "removed": 0, "changed": 0}


def _rewrite(source: Path, target: Path, change) -> Path:  # type: ignore[no-untyped-def]
    """Copy a zip member by member, letting `change(name, data)` return new bytes (or None to drop it)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            data = change(info.filename, src.read(info.filename))
            if data is not None:
                dst.writestr(info.filename, data)
    return target


def _manifest(change):  # type: ignore[no-untyped-def]
    def rewrite(name: str, data: bytes) -> bytes:
        if name == MANIFEST:
            manifest = orjson.loads(data)
            change(manifest)
            return orjson.dumps(manifest)
        return data
    return rewrite


def _assert_refused(path: Path, *words: str) -> None:
    counts = (Project.objects.count(), Image.objects.count(), Annotation.objects.count(), Membership.objects.count())
    stored = set(_all_stored())
    with pytest.raises(DomainError) as caught:
        restore(path=path, archive_name=path.name, options=RestoreOptions(name="Restored", create_users=True))
    for word in words:
        assert word in caught.value.detail, caught.value.detail
    assert (Project.objects.count(), Image.objects.count(), Annotation.objects.count(), Membership.objects.count()) == counts
    assert set(_all_stored()) == stored, "a refused restore left files behind"


def _all_stored(folder: str = "") -> list[str]:
    if folder and not default_storage.exists(folder):
        return []
    subfolders, files = default_storage.listdir(folder)
    names = [f"{folder}/{f}" if folder else f for f in files]
    for sub in subfolders:
        names += _all_stored(f"{folder}/{sub}" if folder else sub)
    return names


@pytest.fixture
def small_archive(world, tmp_path: Path) -> Path:
    from annotator.annotations.services import annotations_replace
    from tests.factories import polygon_geometry, square

    image = make_images(world.project, 2)[0]
    annotations_replace(image=image, user=world.users["annotator"], base_version=0,
                        items=[{"label": world.labels[0].pk, "geometry": polygon_geometry(square(2, 2, 10))}])
    return _backup(world.project, tmp_path)


def test_a_member_whose_checksum_does_not_match_is_named(small_archive: Path, tmp_path: Path) -> None:
    damaged = _rewrite(small_archive, tmp_path / "damaged.zip",
                       lambda name, data: data.replace(b'"z_order":0', b'"z_order":5') if name == "data/annotations.jsonl" else data)
    _assert_refused(damaged, "data/annotations.jsonl", "checksum mismatch")


def test_a_damaged_image_file_is_named(small_archive: Path, tmp_path: Path) -> None:
    damaged = _rewrite(small_archive, tmp_path / "damaged.zip",
                       lambda name, data: data[:-3] + b"xyz" if name.startswith("media/images/") else data)
    _assert_refused(damaged, "media/images/", "checksum mismatch")


def test_a_truncated_archive_is_refused(small_archive: Path, tmp_path: Path) -> None:
    data = small_archive.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 2])
    _assert_refused(truncated, "truncated.zip", "truncated")


def test_an_unknown_format_version_is_refused(small_archive: Path, tmp_path: Path) -> None:
    newer = _rewrite(small_archive, tmp_path / "newer.zip", _manifest(lambda m: m.update(format_version=FORMAT_VERSION + 98)))
    _assert_refused(newer, f"format version {FORMAT_VERSION + 98}", "newer than this server reads")


def test_a_member_climbing_out_with_dotdot_is_refused(small_archive: Path, tmp_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    shutil.copy(small_archive, evil)
    with zipfile.ZipFile(evil, "a") as archive:
        archive.writestr("../../etc/cron.d/evil", b"* * * * * root true")
    _assert_refused(evil, "../../etc/cron.d/evil", "outside the archive")


def test_a_member_missing_from_the_manifest_or_the_archive_is_named(small_archive: Path, tmp_path: Path) -> None:
    added = tmp_path / "added.zip"
    shutil.copy(small_archive, added)
    with zipfile.ZipFile(added, "a") as archive:
        archive.writestr("media/images/zz/extra.png", b"hello")
    _assert_refused(added, "media/images/zz/extra.png", "not in its manifest")
    dropped = _rewrite(small_archive, tmp_path / "dropped.zip", lambda name, data: None if name == "data/revisions.jsonl" else data)
    _assert_refused(dropped, "data/revisions.jsonl", "missing from the archive")


def test_a_reference_to_a_row_the_archive_lacks_is_named(small_archive: Path, tmp_path: Path) -> None:
    """A consistent but wrong archive (checksums rewritten to match): the check pass names the line."""
    import hashlib

    def change(name: str, data: bytes) -> bytes:
        return data.replace(b'"label":', b'"label":9999,"x":', 1) if name == "data/annotations.jsonl" else data

    broken = _rewrite(small_archive, tmp_path / "broken.zip", change)
    with zipfile.ZipFile(broken) as archive:
        fixed = archive.read("data/annotations.jsonl")

    def reseal(manifest: dict) -> None:
        for member in manifest["members"]:
            if member["path"] == "data/annotations.jsonl":
                member.update(size=len(fixed), sha256=hashlib.sha256(fixed).hexdigest())

    resealed = _rewrite(broken, tmp_path / "resealed.zip", _manifest(reseal))
    _assert_refused(resealed, "data/annotations.jsonl", "line 1", "label 9999")


def _resealed(source: Path, target: Path, member: str, change) -> Path:  # type: ignore[no-untyped-def]
    """The archive with one member changed and the manifest's checksum of it updated (a consistent archive)."""
    import hashlib

    changed = _rewrite(source, target.with_suffix(".tmp.zip"), lambda name, data: change(data) if name == member else data)
    with zipfile.ZipFile(changed) as archive:
        data = archive.read(member)

    def reseal(manifest: dict) -> None:
        for entry in manifest["members"]:
            if entry["path"] == member:
                entry.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())

    return _rewrite(changed, target, _manifest(reseal))


def test_a_failure_while_writing_leaves_no_rows_and_no_files(small_archive: Path, tmp_path: Path) -> None:
    """Every check passes; the database refuses the second copy of a revision (image, version) half-way
    through the writes: the transaction rolls back and the image files already stored are removed."""
    doubled = _resealed(small_archive, tmp_path / "doubled.zip", "data/revisions.jsonl", lambda data: data + data)
    _assert_refused(doubled, "breaks a rule of the database", "nothing was restored")


def test_unknown_users_are_named_and_can_be_mapped_or_created_inactive(world, small_archive: Path) -> None:
    world.users["annotator"].delete()  # the archive's annotator is not on this server (any more)
    with pytest.raises(DomainError) as caught:
        restore(path=small_archive, archive_name="a.zip", options=RestoreOptions(name="A"))
    assert "annotator" in caught.value.detail and "--create-users" in caught.value.detail
    assert not Project.objects.filter(name="A").exists()

    UserFactory(username="ann")
    mapped = restore(path=small_archive, archive_name="a.zip", options=RestoreOptions(name="B", map_users={"annotator": "ann"})).project
    assert set(Annotation.objects.filter(image__project=mapped).values_list("author__username", flat=True)) == {"ann"}
    assert Membership.objects.get(project=mapped, user__username="ann").role == "annotator"

    created = restore(path=small_archive, archive_name="a.zip", options=RestoreOptions(name="C", create_users=True))
    assert created.users_created == ["annotator"]
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="annotator")
    assert not user.is_active and not user.has_usable_password()


def test_a_taken_name_is_refused_before_anything_is_written(world, small_archive: Path) -> None:
    with pytest.raises(DomainError, match="already exists"):
        restore(path=small_archive, archive_name="a.zip", options=RestoreOptions())  # the original's name
    assert duplicate_name(world.project) == f"{world.project.name} (copy)"


def test_an_archive_without_images_restores_where_the_pictures_are_stored(world, tmp_path: Path) -> None:
    make_images(world.project, 3)
    path = _backup(world.project, tmp_path, images=False)
    with zipfile.ZipFile(path) as archive:
        assert not any(name.startswith("media/") for name in archive.namelist())
    restored = restore(path=path, archive_name=path.name, options=RestoreOptions(name="Same pictures")).project
    assert Image.objects.filter(project=restored).count() == 3
    for image in Image.objects.filter(project=restored):
        with image.file.open("rb") as fh:
            assert fh.read()  # a copy of its own, readable
    Image.objects.filter(project=world.project).delete()
    Image.objects.filter(project=restored).delete()
    _assert_refused(path, "--no-images", "not stored on this server")


def test_the_old_format_fixture_still_restores(db) -> None:
    """tests/fixtures/backups/project-v1.zip was written by format version 1 and must restore forever."""
    fixture = FIXTURES / "project-v1.zip"
    with zipfile.ZipFile(fixture) as archive:
        assert orjson.loads(archive.read(MANIFEST))["format_version"] == 1
    result = restore(path=fixture, archive_name=fixture.name, options=RestoreOptions(name="From v1", create_users=True))
    project = result.project
    assert sorted(result.users_created) == ["ann", "boss", "rev"]
    assert list(project.labels.values_list("name", "color", "order")) == [("apple", "#ff0000", 0), ("pear", "#00ff00", 1)]
    assert Image.objects.filter(project=project).count() == 2
    annotation = Annotation.objects.get(image__project=project, kind="polygons")
    assert annotation.polygons == [{"exterior": [[2.5, 2.0], [20.0, 2.0], [20.0, 18.75], [2.0, 18.0]],
                                    "holes": [[[5.0, 5.0], [10.0, 5.0], [10.0, 10.0], [5.0, 10.0]]]}]
    assert list(Revision.objects.filter(image__project=project).order_by("version").values_list("version", "author__username")) == [
        (1, "ann"), (2, "ann")]
    comment = ReviewComment.objects.get(image__project=project)
    assert comment.annotation_uid == annotation.uid and comment.resolved
    # From before ground truth: no image marked, no truth, no attempts, the rate's default.
    assert project.ground_truth_rate == 0 and not project.ground_truth_feedback
    assert not Image.objects.filter(project=project, is_ground_truth=True).exists()
    assert not GroundTruth.objects.filter(image__project=project).exists()
    # From before consensus: no versions, no image collecting them, no agreement.
    assert not Replica.objects.filter(image__project=project).exists()
    assert set(Image.objects.filter(project=project).values_list("replicas_open", "agreement")) == {(False, None)}


def test_backup_and_restore_commands_with_progress(transactional_db, world, tmp_path: Path) -> None:
    make_images(world.project, 2)
    out = io.StringIO()
    path = tmp_path / "out" / "backup.zip"
    call_command("backup_project", "--project", world.project.name, "--out", str(path), stdout=out)
    assert path.is_file() and "100%" in out.getvalue() and "sha256" in out.getvalue()
    assert ProjectBackup.objects.filter(project=world.project).count() == 1

    out = io.StringIO()
    call_command("restore_project", str(path), "--name", "Restored here", "--map-users", "annotator=annotator2", stdout=out)
    assert "Restored 'Restored here'" in out.getvalue() and "100%" in out.getvalue()
    restored = Project.objects.get(name="Restored here")
    assert Image.objects.filter(project=restored).count() == 2
    assert not Membership.objects.filter(project=restored, user__username="annotator").exists()

    with pytest.raises(CommandError, match="already exists"):
        call_command("restore_project", str(path), stdout=io.StringIO())


def test_backup_create_keeps_the_archive_in_storage_with_its_checksum(world) -> None:
    import hashlib

    make_images(world.project, 1)
    backup = backup_create(project=world.project, options=BackupOptions(), user=world.users["manager"])
    with backup.file.open("rb") as fh:
        data = fh.read()
    assert hashlib.sha256(data).hexdigest() == backup.sha256 and len(data) == backup.size
    assert backup.file.name.startswith(f"projects/{world.project.pk}/backups/")
    assert backup.counts["images"] == 1 and backup.format_version == FORMAT_VERSION
