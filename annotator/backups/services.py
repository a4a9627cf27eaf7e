"""Writes of the backups app: project archives (backup), restores (as a new project), duplicates, schedules.

A backup reads the project table by table a chunk of rows at a time (on PostgreSQL inside one
REPEATABLE READ transaction, so the archive is one consistent moment of the project) and streams
it into the archive (``archive.ArchiveWriter``); memory holds a chunk of rows and one file block,
whatever the size of the project. The archive is kept in storage as a ProjectBackup.

A restore is all or nothing, in three passes over the archive: (1) every member's size and
SHA-256 against the manifest, (2) every row of every table against its spec
(``tables.TABLES``): types, choices, references to rows of the archive, users; the users are
matched by username (mapped, or created inactive on request) — (3) only then the writes, in one
transaction, with the new ids; files written to storage before a failure are removed again.
"""
from __future__ import annotations

import logging
import queue
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import IO, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, models, transaction
from django.db.models.fields import AutoFieldMixin
from django.utils import timezone
from django.utils.text import slugify

from annotator.annotations.models import Revision
from annotator.annotations.revisions import Chain
from annotator.annotations.selectors import revision_objects
from annotator.annotations.services import annotation_digest
from annotator.core.access import DELETING_REASON
from annotator.core.db import rows_copy
from annotator.core.errors import DomainError, Forbidden
from annotator.core.files import tmp_root
from annotator.images.models import Image
from annotator.jobs.models import FINISHED_STATES, Job, JobKind, JobState
from annotator.jobs.services import JobCancelled, job_start
from annotator.learning.models import ModelKind
from annotator.learning.services.assists import project_shape_path, shape_prior_path
from annotator.projects.models import Label, Membership, Project, Role
from ml import quality
from ml.geometry import vertex_count
from ml.shape_prior import file_format as shape_file_format

from . import tables as T
from .archive import PROJECT, ArchiveError, ArchiveReader, ArchiveWriter, parse_time
from .models import BackupSchedule, ProjectBackup

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]

CHUNK = 1000  # rows per insert batch (reads: per table, see tables.Table.chunk)
BATCH_BYTES = 2 << 20  # ...or fewer: about this much JSON text per batch (parsed, several times as much)
_BLOCK = 1 << 20


# --------------------------------------------------------------------------------------------
# Progress from inside a long transaction
# --------------------------------------------------------------------------------------------


class _Reporter:
    """Reports a job's progress from a thread of its own (its own database connection).

    A backup reads, and a restore writes, inside one long transaction; progress written through
    that transaction's connection would stay invisible until it ends (and a restore would hold
    the job row's lock against the heartbeat). Here the latest report is handed to a thread that
    writes it at once; a cancel it sees is raised in the job's thread on the next report.
    """

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._latest: queue.Queue[tuple[int, int, str] | None] = queue.Queue(maxsize=1)
        self.cancelled = False
        self._thread = threading.Thread(target=self._run, daemon=True, name="backup-progress")
        self._thread.start()

    def __call__(self, done: int, total: int, message: str) -> None:
        if self.cancelled:
            raise JobCancelled()
        try:
            self._latest.get_nowait()  # only the newest report matters
        except queue.Empty:
            pass
        try:
            self._latest.put_nowait((done, total, message))
        except queue.Full:
            pass

    def _run(self) -> None:
        from django.db import connection as own

        try:
            while True:
                item = self._latest.get()
                if item is None:
                    return
                try:
                    self._progress(*item)
                except JobCancelled:
                    self.cancelled = True
                except Exception:  # noqa: BLE001 - progress must never break the work
                    log.warning("could not report progress", exc_info=True)
        finally:
            own.close()

    def stop(self) -> None:
        try:
            self._latest.get_nowait()
        except queue.Empty:
            pass
        self._latest.put(None)
        self._thread.join(timeout=30)


@contextmanager
def _long_transaction(progress: Progress | None, *, read_only: bool) -> Iterator[Progress | None]:
    """One transaction for the block; on PostgreSQL a consistent snapshot for reads, progress via _Reporter.

    Inside a transaction already (a test, a caller's atomic block) the block simply joins it. On
    SQLite a read-only block runs without a transaction (it would take the write lock), and
    progress goes through the transaction's own connection.
    """
    if connection.in_atomic_block or connection.vendor != "postgresql":
        if read_only:
            yield progress
        else:
            with transaction.atomic():  # a savepoint inside a caller's transaction
                yield progress
        return
    reporter = _Reporter(progress) if progress is not None else None
    try:
        with transaction.atomic():
            if read_only:
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield reporter
    finally:
        if reporter is not None:
            reporter.stop()


class _Steps:
    """Counts steps of work and reports every `every` of them."""

    def __init__(self, progress: Progress | None, total: int, *, every: int = 500) -> None:
        self.progress, self.total, self.every = progress, max(total, 1), every
        self.done = 0

    def tick(self, message: str, n: int = 1) -> None:
        before = self.done
        self.done = min(self.done + n, self.total)
        if self.progress is not None and (self.done // self.every != before // self.every or self.done == self.total):
            self.progress(self.done, self.total, message)

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total, message)


# --------------------------------------------------------------------------------------------
# Backup
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupOptions:
    """What goes into the archive besides the rows: image files (default), model weights, dataset zips."""

    images: bool = True
    models: bool = False
    datasets: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackupOptions:
        for key in ("images", "models", "datasets"):
            if key in data and not isinstance(data[key], bool):
                raise DomainError(f"{key} must be true or false")
        return cls(images=data.get("images", True), models=data.get("models", False), datasets=data.get("datasets", False))

    def as_dict(self) -> dict[str, bool]:
        return {"images": self.images, "models": self.models, "datasets": self.datasets}


class _Usernames:
    """User id → username, looked up once per user; also the archive's list of users."""

    def __init__(self) -> None:
        self._names: dict[int, str | None] = {}

    def __call__(self, user_id: int | None) -> str | None:
        if user_id is None:
            return None
        if user_id not in self._names:
            self._names[user_id] = (
                get_user_model().objects.filter(pk=user_id).values_list("username", flat=True).first()
            )
        return self._names[user_id]

    def listing(self) -> list[dict[str, Any]]:
        ids = [pk for pk, name in self._names.items() if name is not None]
        rows = get_user_model().objects.filter(pk__in=ids).order_by("username")
        return [
            {"username": u.username, "email": u.email, "first_name": u.first_name, "last_name": u.last_name, "is_active": u.is_active}
            for u in rows
        ]


def _media_paths(checksum: str, stored_name: str) -> tuple[str, str]:
    suffix = PurePosixPath(stored_name).suffix.lower()
    return f"media/images/{checksum[:2]}/{checksum}{suffix}", f"media/thumbs/{checksum[:2]}/{checksum}.jpg"


def _out_value(spec: T.Field, value: Any, users: _Usernames) -> Any:
    if spec.kind == "user":
        return users(value)
    return value


def _revision_content_out(content: Any, users: _Usernames) -> Any:
    """A revision's annotation set with its authors as usernames (label, model and prediction ids stay archive ids)."""
    if not isinstance(content, list):
        return content
    return [{**obj, "author": users(obj.get("author"))} if isinstance(obj, dict) else obj for obj in content]


def _revision_set(chain: Chain, row: dict[str, Any]) -> list[dict[str, Any]]:
    """The whole set of a revision row: archives hold every revision whole, whatever the database keeps.

    Rows come in version order per image, so a delta applies to the set of the row before it.
    """
    image_id, version = row["image_id"], row["version"]
    objects = chain.read(image_id=image_id, version=version, annotations=row["annotations"], delta=row["delta"])
    if objects is None:
        objects = revision_objects(Revision.objects.get(image_id=image_id, version=version))
        chain.read(image_id=image_id, version=version, annotations=objects, delta=None)
    return objects


def backup_write(
    *,
    project: Project,
    out: str | Path | IO[bytes],
    options: BackupOptions,
    progress: Progress | None = None,
    exclude_job: int | None = None,
) -> dict[str, Any]:
    """Write the archive of ``project`` into ``out`` and return its manifest (see docs/backup.md)."""
    writer = ArchiveWriter(out)
    try:
        with _long_transaction(progress, read_only=True) as report:
            project = Project.objects.get(pk=project.pk)
            manifest = _backup_tables(project, writer, options, report, exclude_job)
        return writer.close(manifest)
    except BaseException:
        writer.abort()
        raise


def _backup_tables(
    project: Project, writer: ArchiveWriter, options: BackupOptions, progress: Progress | None, exclude_job: int | None
) -> dict[str, Any]:
    users = _Usernames()
    counts = {table.name: _table_queryset(table, project, exclude_job).count() for table in T.TABLES}
    steps = _Steps(progress, sum(counts.values()) + (counts["images"] if options.images else 0))
    steps.say("Backing up")
    files = {"images": 0, "thumbnails": 0, "models": 0, "datasets": 0}
    warnings: list[str] = []
    for table in T.TABLES:
        columns = table.columns + list(table.files) + (["delta"] if table is T.REVISIONS else [])
        qs = _table_queryset(table, project, exclude_job).values_list(*columns)
        chain = Chain()
        message = f"Backing up {table.name.replace('_', ' ')}"
        with writer.table(table.name) as rows:
            for values in qs.iterator(chunk_size=table.chunk):
                row = dict(zip(columns, values))
                out = {"id": row["id"]} if table.has_id else {}
                for spec in table.fields:
                    out[spec.name] = _out_value(spec, row[spec.column], users)
                if table is T.REVISIONS:
                    out["annotations"] = _revision_content_out(_revision_set(chain, row), users)
                elif table in _OBJECT_SETS:
                    key = _OBJECT_SETS[table]
                    out[key] = _revision_content_out(row[key], users)
                out.update(_member_paths(table, row, options, project))
                rows.write(out)
                steps.tick(message)
        if table in _OWN_FILES:
            _backup_files(table, project, writer, options, exclude_job, files, warnings, steps)
    labels = [
        {"id": label.pk, "name": label.name, "color": label.color, "order": label.order, "attributes_schema": label.attributes_schema}
        for label in Label.objects.filter(project=project).order_by("order", "id")
    ]
    members = [
        {"username": users(m.user_id), "role": m.role, "created_at": m.created_at}
        for m in Membership.objects.filter(project=project).order_by("id")
    ]
    writer.add_json(PROJECT, {
        "project": {
            "id": project.pk, "name": project.name, "description": project.description, "guidelines": project.guidelines,
            "required_accepts": project.required_accepts, "queue_order": project.queue_order,
            "break_reminder_minutes": project.break_reminder_minutes, "ground_truth_rate": project.ground_truth_rate,
            "ground_truth_feedback": project.ground_truth_feedback,
            "consensus_annotators": project.consensus_annotators, "consensus_timeout_hours": project.consensus_timeout_hours,
            "created_by": users(project.created_by_id), "created_at": project.created_at, "updated_at": project.updated_at,
            "archived_at": project.archived_at, "archived_by": users(project.archived_by_id),
        },
        "labels": labels,
        "members": members,
        "users": users.listing(),
    })
    return {
        "created_at": timezone.now(),
        "project": {"id": project.pk, "name": project.name},
        "options": options.as_dict(),
        "counts": {"labels": len(labels), "members": len(members), **counts, "files": files},
        "warnings": warnings[:200],
    }


def _table_queryset(table: T.Table, project: Project, exclude_job: int | None) -> models.QuerySet[Any]:
    qs = table.queryset(project.pk)
    if table is T.JOBS and exclude_job is not None:
        qs = qs.exclude(pk=exclude_job)
    return qs


_OWN_FILES = (T.IMAGES, T.MODEL_VERSIONS, T.DATASET_VERSIONS, T.PROJECT_SHAPES)


def _member_paths(table: T.Table, row: dict[str, Any], options: BackupOptions, project: Project) -> dict[str, str | None]:
    """The archive members holding a row's files (None: not in the archive); the same answer in both passes.

    A version's learned shape (beside its checkpoint) goes with its weights; the project's learned
    shape (a few kilobytes) always goes.
    """
    if table is T.IMAGES:
        if not options.images:
            return {"file": None, "thumbnail": None}
        image_path, thumb_path = _media_paths(row["checksum"], row["file"])
        return {"file": image_path, "thumbnail": thumb_path if row["thumbnail"] else None}
    if table is T.MODEL_VERSIONS:
        path = Path(row["checkpoint"]) if row["checkpoint"] else None
        wanted = options.models and row["kind"] != ModelKind.COCO and path is not None and path.is_file()
        if not wanted or path is None:
            return {"weights": None, "shape": None}
        shape = f"models/{row['id']}/{shape_prior_path(path).name}" if shape_prior_path(path).is_file() else None
        return {"weights": f"models/{row['id']}/{path.name}", "shape": shape}
    if table is T.PROJECT_SHAPES:
        return {"file": "shapes/project.shape.npz" if project_shape_path(project.pk).is_file() else None}
    if table is T.DATASET_VERSIONS:
        wanted = options.datasets and bool(row["file"])
        return {"file": f"datasets/{row['id']}/{PurePosixPath(row['file']).name}" if wanted else None}
    return {}


def _backup_files(
    table: T.Table, project: Project, writer: ArchiveWriter, options: BackupOptions, exclude_job: int | None,
    files: dict[str, int], warnings: list[str], steps: _Steps,
) -> None:
    """Second pass over a table that owns files: add them (a zip takes one member at a time, so not beside the rows)."""
    columns = table.columns + list(table.files)
    for values in _table_queryset(table, project, exclude_job).values_list(*columns).iterator(chunk_size=table.chunk):
        row = dict(zip(columns, values))
        paths = _member_paths(table, row, options, project)
        if table is T.IMAGES and paths["file"]:
            sha = _add_stored(writer, paths["file"], row["file"], what=f"image {row['id']} ({row['original_name']})")
            files["images"] += 1
            if sha != row["checksum"]:
                warnings.append(f"image {row['id']} ({row['original_name']}): the stored file does not match its checksum")
            if paths["thumbnail"]:
                _add_stored(writer, paths["thumbnail"], row["thumbnail"], what=f"the thumbnail of image {row['id']}")
                files["thumbnails"] += 1
            steps.tick("Backing up image files")
        elif table is T.MODEL_VERSIONS:
            if paths["weights"]:
                with open(row["checkpoint"], "rb") as fh:
                    writer.add_stream(paths["weights"], fh)
                files["models"] += 1
                if paths["shape"]:
                    with open(shape_prior_path(row["checkpoint"]), "rb") as fh:
                        writer.add_stream(paths["shape"], fh)
            elif options.models and row["kind"] != ModelKind.COCO and row["checkpoint"]:
                warnings.append(f"model {row['name']}: its checkpoint file is missing, the archive has no weights for it")
        elif table is T.DATASET_VERSIONS and paths["file"]:
            _add_stored(writer, paths["file"], row["file"], what=f"dataset version {row['name']}")
            files["datasets"] += 1
        elif table is T.PROJECT_SHAPES and paths["file"]:
            with open(project_shape_path(project.pk), "rb") as fh:
                writer.add_stream(paths["file"], fh)


def _add_stored(writer: ArchiveWriter, member: str, name: str, *, what: str) -> str:
    try:
        with default_storage.open(name, "rb") as fh:
            return writer.add_stream(member, fh)
    except FileNotFoundError:
        raise DomainError(f"{what}: its file {name} is missing from storage; the backup cannot be complete") from None


def _backup_name(project: Project) -> str:
    return f"{slugify(project.name)[:120] or 'project'}-{timezone.now():%Y%m%d-%H%M%S}.zip"


class _LocalFile(File):  # type: ignore[type-arg]
    """A finished archive on local disk: FileSystemStorage moves it into place instead of copying it."""

    def temporary_file_path(self) -> str:
        return str(self.name)


def backup_create(
    *,
    project: Project,
    options: BackupOptions,
    user: AbstractBaseUser | None = None,
    job: Job | None = None,
    scheduled: bool = False,
    progress: Progress | None = None,
) -> ProjectBackup:
    """Back up the project into storage and keep it as a ProjectBackup (listed with size, date and checksum)."""
    folder = tmp_root()
    path = folder / f"backup-{project.pk}-{timezone.now():%Y%m%d%H%M%S%f}.zip"
    try:
        manifest = backup_write(project=project, out=path, options=options, progress=progress,
                                exclude_job=job.pk if job is not None else None)
        sha, size = _file_sha256(path)
        backup = ProjectBackup(
            project=project, sha256=sha, size=size, format_version=manifest["format_version"], options=options.as_dict(),
            counts=manifest["counts"], warnings=manifest["warnings"], scheduled=scheduled, job=job,
            created_by=user if user is not None and user.is_authenticated else None,
        )
        with open(path, "rb") as fh:
            backup.file.save(_backup_name(project), _LocalFile(fh, name=str(path)), save=False)
    finally:
        path.unlink(missing_ok=True)
    try:
        backup.save()
    except BaseException:
        default_storage.delete(backup.file.name)
        raise
    return backup


def _file_sha256(path: Path) -> tuple[str, int]:
    import hashlib

    sha = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            sha.update(block)
            size += len(block)
    return sha.hexdigest(), size


def backup_delete(*, backup: ProjectBackup) -> None:
    name = backup.file.name
    with transaction.atomic():
        backup.delete()
        transaction.on_commit(lambda: default_storage.delete(name))


def _refuse_deleting(project: Project) -> None:
    if project.delete_requested_at is not None:
        raise Forbidden(DELETING_REASON)


def backup_start(*, project: Project, options: BackupOptions, user: AbstractBaseUser | None, enqueue: bool = True) -> Job:
    """Start a backup job (an archived project can be backed up: a backup changes nothing in it)."""
    _refuse_deleting(project)
    with transaction.atomic():
        return job_start(kind=JobKind.BACKUP, project=project, params={"options": options.as_dict()}, user=user, enqueue=enqueue)


# --------------------------------------------------------------------------------------------
# Restore
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreOptions:
    """How to restore: the new project's name, archive user → local user, create unknown users inactive."""

    name: str | None = None
    map_users: dict[str, str] = field(default_factory=dict)
    create_users: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RestoreOptions:
        name = (data.get("name") or "").strip() or None
        if name is not None and len(name) > 200:
            raise DomainError("name: at most 200 characters")
        raw = data.get("map_users") or {}
        mapping = parse_user_map(raw) if isinstance(raw, str) else raw
        if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) and k and v for k, v in mapping.items()):
            raise DomainError("map_users must map archive usernames to usernames of this server (old=new,…)")
        return cls(name=name, map_users=dict(mapping), create_users=bool(data.get("create_users", False)))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "map_users": self.map_users, "create_users": self.create_users}


def parse_user_map(text: str) -> dict[str, str]:
    """``"alice=ann,bob=bert"`` → ``{"alice": "ann", "bob": "bert"}``; DomainError on a malformed pair."""
    mapping: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise DomainError(f"map_users: {pair!r} is not old=new")
        mapping[old.strip()] = new.strip()
    return mapping


@dataclass
class _Plan:
    """What the check passes learnt: the project's settings, the users, which ids are referenced."""

    info: dict[str, Any]
    name: str
    users: dict[str, int | None]  # archive username → local user id (None: to be created)
    to_create: list[dict[str, Any]]
    ids: dict[str, set[int]]
    referenced_predictions: set[int]
    local_media: dict[str, tuple[str, str]]  # checksum → (file, thumbnail) already on this server (no-images archives)
    counts: dict[str, int]
    warnings: list[str]
    dangling: int = 0  # references in old revisions to labels or models deleted before the backup
    # The revision restored last: each whole set from the archive is stored as a save would (a delta or a snapshot).
    revisions: Chain = field(default_factory=Chain)


def _fail(reader: ArchiveReader, table: str, number: int, problem: str) -> ArchiveError:
    return reader.fail(f"line {number}: {problem}", member=f"data/{table}.jsonl")


def _check_project(reader: ArchiveReader) -> dict[str, Any]:
    info = reader.read_json(PROJECT)
    where = PROJECT
    if not isinstance(info, dict) or not isinstance(info.get("project"), dict):
        raise reader.fail("has no project", member=where)
    project = info["project"]
    if not isinstance(project.get("name"), str) or not project["name"].strip():
        raise reader.fail("the project has no name", member=where)
    reminder = project.get("break_reminder_minutes", 0)
    if not isinstance(reminder, int) or isinstance(reminder, bool) or not 0 <= reminder <= 24 * 60:
        raise reader.fail("break_reminder_minutes must be a whole number of minutes from 0 to 1440", member=where)
    rate = project.get("ground_truth_rate", 0.0)
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate <= 1:
        raise reader.fail("ground_truth_rate must be a number from 0 to 1", member=where)
    if not isinstance(project.get("ground_truth_feedback", False), bool):
        raise reader.fail("ground_truth_feedback must be true or false", member=where)
    for key, top in (("consensus_annotators", 10), ("consensus_timeout_hours", 24 * 30)):
        value = project.get(key, 1)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= top:
            raise reader.fail(f"{key} must be a whole number from 1 to {top}", member=where)
    for key in ("labels", "members", "users"):
        if not isinstance(info.get(key), list) or not all(isinstance(item, dict) for item in info[key]):
            raise reader.fail(f"{key} must be a list of objects", member=where)
    names = [u.get("username") for u in info["users"]]
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise reader.fail("users must have distinct, non-empty usernames", member=where)
    label_ids: set[int] = set()
    for label in info["labels"]:
        if not (isinstance(label.get("id"), int) and isinstance(label.get("name"), str) and isinstance(label.get("color"), str)
                and isinstance(label.get("order"), int) and isinstance(label.get("attributes_schema", {}), dict)):
            raise reader.fail(f"label {label.get('name')!r}: id, name, color, order and attributes_schema are required", member=where)
        label_ids.add(label["id"])
    if len(label_ids) != len(info["labels"]):
        raise reader.fail("two labels have the same id", member=where)
    for member in info["members"]:
        if member.get("username") not in names or member.get("role") not in Role.values:
            raise reader.fail(f"member {member.get('username')!r}: an unknown user or role", member=where)
    return info


def _resolve_users(reader: ArchiveReader, info: dict[str, Any], options: RestoreOptions) -> tuple[dict[str, int | None], list[dict[str, Any]]]:
    archive_users = {u["username"]: u for u in info["users"]}
    unknown_keys = sorted(set(options.map_users) - set(archive_users))
    if unknown_keys:
        raise DomainError(f"map_users names {', '.join(unknown_keys)}, who {'is' if len(unknown_keys) == 1 else 'are'} not in the archive")
    User = get_user_model()
    wanted = {name: options.map_users.get(name, name) for name in archive_users}
    local = dict(User.objects.filter(username__in=set(wanted.values())).values_list("username", "pk"))
    resolved: dict[str, int | None] = {}
    missing: list[str] = []
    for name, target in wanted.items():
        if target in local:
            resolved[name] = local[target]
        elif name in options.map_users:
            raise DomainError(f"map_users: {name}={target}, but there is no user {target!r} on this server")
        else:
            missing.append(name)
    to_create: list[dict[str, Any]] = []
    if missing and not options.create_users:
        shown = ", ".join(sorted(missing)[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        raise DomainError(
            f"{len(missing)} user{'s' if len(missing) != 1 else ''} of the archive {'are' if len(missing) != 1 else 'is'} "
            f"not on this server: {shown}. Map them to existing users (map_users / --map-users old=new,…) or create them "
            "inactive (create_users / --create-users).",
            extra={"unknown_users": sorted(missing)},
        )
    for name in missing:
        resolved[name] = None
        to_create.append(archive_users[name])
    return resolved, to_create


def _check_rows(reader: ArchiveReader, plan: _Plan, steps: _Steps) -> None:
    """Every row of every table against its spec; references must name rows of the archive."""
    users = set(plan.users)
    checksums: set[str] = set()
    no_images: list[str] = []
    for table in T.TABLES:
        seen = plan.ids[table.name] = set()
        message = f"Checking {table.name.replace('_', ' ')}"
        plan.counts[table.name] = 0
        for number, row, _size in reader.rows(table.name):
            plan.counts[table.name] += 1
            if table.has_id:
                row_id = row.get("id")
                if isinstance(row_id, bool) or not isinstance(row_id, int) or row_id in seen:
                    raise _fail(reader, table.name, number, f"id {row_id!r} is missing or not unique")
                seen.add(row_id)
            for spec in table.fields:
                if spec.name not in row and spec.default is T.REQUIRED:
                    raise _fail(reader, table.name, number, f"field {spec.name!r} is missing")
                value = spec.value(row)
                problem = T.check_value(spec, value)
                if problem is not None:
                    raise _fail(reader, table.name, number, f"{spec.name}: {problem}")
                if value is None:
                    continue
                if spec.kind == "user" and value not in users:
                    raise _fail(reader, table.name, number, f"{spec.name}: user {value!r} is not in the archive's list of users")
                if spec.kind == "ref" and value not in plan.ids[spec.ref]:
                    raise _fail(reader, table.name, number, f"{spec.name}: refers to {spec.ref.rstrip('s').replace('_', ' ')} {value}, which is not in the archive")
            _check_row_extra(reader, table, number, row, plan, checksums, no_images)
            steps.tick(message)
    if no_images:
        _find_local_media(reader, plan, no_images)


def _check_row_extra(
    reader: ArchiveReader, table: T.Table, number: int, row: dict[str, Any], plan: _Plan, checksums: set[str], no_images: list[str]
) -> None:
    if table is T.IMAGES:
        if row["checksum"] in checksums:
            raise _fail(reader, table.name, number, f"image {row['original_name']!r}: the same picture twice (checksum)")
        checksums.add(row["checksum"])
        for key in ("file", "thumbnail"):
            member = row.get(key)
            if member is not None and (not isinstance(member, str) or not reader.has(member)):
                raise _fail(reader, table.name, number, f"{key}: {member!r} is not a member of the archive")
        if row.get("file") is None:
            no_images.append(row["checksum"])
        if row["width"] <= 0 or row["height"] <= 0:
            raise _fail(reader, table.name, number, "width and height must be positive")
    elif table is T.ANNOTATIONS:
        if row["prediction"] is not None:
            plan.referenced_predictions.add(row["prediction"])
        geometry = row["polygons"] if row["kind"] == "polygons" else row["rle"]
        other = row["rle"] if row["kind"] == "polygons" else row["polygons"]
        if geometry is None or other is not None:
            raise _fail(reader, table.name, number, f"a {row['kind']} object must have {row['kind']} geometry only")
    elif table in _OBJECT_SETS:
        key = _OBJECT_SETS[table]
        content = row[key]
        if not isinstance(content, list) or not all(isinstance(obj, dict) for obj in content):
            raise _fail(reader, table.name, number, f"{key} must be a list of objects")
        for obj in content:
            author = obj.get("author")
            if author is not None and author not in plan.users:
                raise _fail(reader, table.name, number, f"an object's author {author!r} is not in the archive's list of users")
            if isinstance(obj.get("prediction"), int):
                plan.referenced_predictions.add(obj["prediction"])
        if table is T.GROUND_TRUTH_ATTEMPTS and row["scores"] is not None and not isinstance(row["scores"], dict):
            raise _fail(reader, table.name, number, "scores must be an object or null")
    elif table in (T.MODEL_VERSIONS, T.DATASET_VERSIONS, T.PROJECT_SHAPES):
        for key in ("weights", "shape") if table is T.MODEL_VERSIONS else ("file",):
            member = row.get(key)
            if member is not None and (not isinstance(member, str) or not reader.has(member)):
                raise _fail(reader, table.name, number, f"{key}: {member!r} is not a member of the archive")


#: Tables with a set of objects in the revisions' form, and its field.
_OBJECT_SETS = {T.REVISIONS: "annotations", T.GROUND_TRUTH: "truth", T.GROUND_TRUTH_ATTEMPTS: "drawn", T.REPLICAS: "drawn"}


def _find_local_media(reader: ArchiveReader, plan: _Plan, checksums: list[str]) -> None:
    """An archive without image files restores where the same pictures are stored already (same checksums)."""
    for start in range(0, len(checksums), CHUNK):
        chunk = checksums[start:start + CHUNK]
        for checksum, file, thumbnail in Image.objects.filter(checksum__in=chunk).values_list("checksum", "file", "thumbnail"):
            plan.local_media.setdefault(checksum, (file, thumbnail))
    missing = [c for c in checksums if c not in plan.local_media]
    if missing:
        raise reader.fail(
            f"the archive was made without the image files (--no-images) and {len(missing)} of its {len(checksums)} "
            "pictures are not stored on this server; restore a backup that has the images"
        )


def restore_plan(*, reader: ArchiveReader, options: RestoreOptions, progress: Progress | None = None) -> _Plan:
    """The check passes: checksums, format, every row and reference, users, the new name. Nothing is written."""
    total_rows = sum(int(v) for v in reader.manifest.get("rows", {}).values() if isinstance(v, int))
    steps = _Steps(progress, 100 + total_rows)
    steps.say("Checking checksums")
    reader.verify(lambda done, total: steps.progress(int(100 * done / total), steps.total, "Checking checksums") if steps.progress else None)
    steps.done = 100
    info = _check_project(reader)
    name = options.name or info["project"]["name"]
    _check_name_free(name)
    users, to_create = _resolve_users(reader, info, options)
    plan = _Plan(info=info, name=name, users=users, to_create=to_create, ids={"labels": {label["id"] for label in info["labels"]}},
                 referenced_predictions=set(), local_media={}, counts={}, warnings=[])
    plan.counts["labels"] = len(info["labels"])
    plan.counts["members"] = len(info["members"])
    _check_rows(reader, plan, steps)
    return plan


def _check_name_free(name: str) -> None:
    if Project.objects.filter(name=name).exists():
        raise DomainError(f"A project named {name!r} already exists; give the restored project another name.")


class _Ids:
    """Old (archive) id → new id, per table."""

    def __init__(self) -> None:
        self.maps: dict[str, dict[int, int]] = {}

    def new(self, table: str, old: int | None) -> int | None:
        if old is None:
            return None
        return self.maps[table][old]

    def get(self, table: str, old: Any) -> int | None:
        """The new id, or None for an id the archive does not have (an old revision naming a deleted label)."""
        return self.maps.get(table, {}).get(old) if isinstance(old, int) else None


def _insert(model: type[models.Model], objs: list[models.Model]) -> list[int]:
    """Insert rows exactly as given (their timestamps included) and return their new ids, in order.

    ``bulk_create`` would let ``auto_now_add`` replace every creation time with now; a raw insert
    (what loading a fixture does) keeps them. Batches stay within the database's parameter limits.
    """
    if not objs:
        return []
    meta = model._meta
    if not isinstance(meta.pk, AutoFieldMixin):
        # A primary key of its own (ground truth: its image): the rows go in as they are.
        every = list(meta.local_concrete_fields)
        batch = max(1, min(CHUNK, connection.ops.bulk_batch_size(every, objs)))
        for start in range(0, len(objs), batch):
            model._base_manager._insert(objs[start:start + batch], fields=every, raw=True, using=DEFAULT_DB_ALIAS)  # type: ignore[attr-defined]
        return [obj.pk for obj in objs]
    fields = [f for f in meta.local_concrete_fields if not f.primary_key]
    if connection.vendor == "postgresql" and len(objs) > 1:
        return rows_copy(model, objs, fields=fields)
    manager = model._base_manager
    batch = max(1, min(CHUNK, connection.ops.bulk_batch_size(fields, objs)))
    if not connection.features.can_return_rows_from_bulk_insert:
        batch = 1
    ids: list[int] = []
    for start in range(0, len(objs), batch):
        rows = manager._insert(  # type: ignore[attr-defined]
            objs[start:start + batch], fields=fields, returning_fields=[meta.pk], raw=True, using=DEFAULT_DB_ALIAS
        )
        ids += [row[0] for row in rows]
    for obj, pk in zip(objs, ids):
        obj.pk = pk
    return ids


@dataclass
class RestoreResult:
    project: Project
    counts: dict[str, int]
    users_created: list[str]
    users_mapped: dict[str, str]
    warnings: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"project": self.project.pk, "name": self.project.name, "counts": self.counts, "users_created": self.users_created,
                "users_mapped": self.users_mapped, "warnings": self.warnings[:200]}


def restore(
    *,
    path: Path,
    archive_name: str,
    options: RestoreOptions,
    user: AbstractBaseUser | None = None,
    job: Job | None = None,
    progress: Progress | None = None,
) -> RestoreResult:
    """Restore the archive at ``path`` as a new project; all or nothing (see the module's docstring)."""
    with ArchiveReader(path, name=archive_name) as reader:
        total_rows = sum(int(v) for v in reader.manifest.get("rows", {}).values() if isinstance(v, int))
        phase = _phased(progress, 0.4)
        plan = restore_plan(reader=reader, options=options, progress=phase)
        steps_total = total_rows + len(plan.info["labels"]) + 1
        written: list[str] = []
        local_files: list[Path] = []
        try:
            with _long_transaction(_phased(progress, 0.6, start=0.4), read_only=False) as report:
                steps = _Steps(report, steps_total)
                steps.say("Restoring")
                project = _write(reader, plan, steps, written, local_files, user=user)
                if job is not None:
                    # The restore job belongs to the project it made (its managers see it).
                    Job.objects.filter(pk=job.pk).update(project=project)
        except IntegrityError as exc:
            _remove(written, local_files)
            raise ArchiveError(f"{archive_name}: the archive breaks a rule of the database ({exc}); nothing was restored") from None
        except BaseException:
            _remove(written, local_files)
            raise
    mapped = {old: new for old, new in options.map_users.items()}
    return RestoreResult(project=project, counts=plan.counts, users_created=[u["username"] for u in plan.to_create],
                         users_mapped=mapped, warnings=plan.warnings)


def _phased(progress: Progress | None, share: float, *, start: float = 0.0) -> Progress | None:
    """A phase's progress as a share of the whole job's (the bar moves once from 0 to 100)."""
    if progress is None:
        return None

    def report(done: int, total: int, message: str) -> None:
        progress(int(1000 * (start + share * done / max(total, 1))), 1000, message)

    return report


def _remove(names: list[str], paths: list[Path]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:  # noqa: BLE001 - the sweeper removes what is left
            log.warning("could not remove %s after a failed restore", name, exc_info=True)
    for path in paths:
        path.unlink(missing_ok=True)


def _write(
    reader: ArchiveReader, plan: _Plan, steps: _Steps, written: list[str], local_files: list[Path], *, user: AbstractBaseUser | None
) -> Project:
    User = get_user_model()
    users = dict(plan.users)
    for spec in plan.to_create:
        created = User.objects.create(
            username=spec["username"], email=spec.get("email") or "", first_name=(spec.get("first_name") or "")[:150],
            last_name=(spec.get("last_name") or "")[:150], is_active=False, password=make_password(None),
        )
        users[spec["username"]] = created.pk
    ids = _Ids()
    info = plan.info["project"]
    project = Project(
        name=plan.name, description=info.get("description") or "", guidelines=info.get("guidelines") or "",
        required_accepts=info.get("required_accepts") or 1, queue_order=info.get("queue_order") or "priority",
        # archives from before the setting have none: the model's default
        break_reminder_minutes=info.get("break_reminder_minutes", Project._meta.get_field("break_reminder_minutes").default),
        ground_truth_rate=info.get("ground_truth_rate", Project._meta.get_field("ground_truth_rate").default),
        ground_truth_feedback=info.get("ground_truth_feedback", Project._meta.get_field("ground_truth_feedback").default),
        consensus_annotators=info.get("consensus_annotators", 1),
        consensus_timeout_hours=info.get("consensus_timeout_hours", Project._meta.get_field("consensus_timeout_hours").default),
        created_by_id=users.get(info.get("created_by")) if info.get("created_by") else None,
        created_at=parse_time(info.get("created_at")) or timezone.now(), updated_at=parse_time(info.get("updated_at")) or timezone.now(),
    )
    try:
        with transaction.atomic():
            _insert(Project, [project])
    except IntegrityError:
        raise DomainError(f"A project named {plan.name!r} already exists; give the restored project another name.") from None
    labels = [
        Label(project_id=project.pk, name=label["name"], color=label["color"], order=label["order"],
              attributes_schema=label.get("attributes_schema") or {})
        for label in plan.info["labels"]
    ]
    _insert(Label, labels)
    ids.maps["labels"] = {label["id"]: row.pk for label, row in zip(plan.info["labels"], labels)}
    strongest: dict[int, dict[str, Any]] = {}
    rank = {Role.ANNOTATOR: 0, Role.REVIEWER: 1, Role.MANAGER: 2}
    for member in plan.info["members"]:
        user_id = users[member["username"]]
        # Two archive users mapped onto one local user: that user keeps the stronger role.
        if user_id is not None and (user_id not in strongest or rank[member["role"]] > rank[strongest[user_id]["role"]]):
            strongest[user_id] = member
    _insert(Membership, [
        Membership(project_id=project.pk, user_id=user_id, role=m["role"], created_at=parse_time(m.get("created_at")) or timezone.now())
        for user_id, m in strongest.items()
    ])
    steps.tick("Restoring labels and members")
    for table in T.TABLES:
        _write_table(reader, table, project, plan, ids, users, steps, written, local_files)
    if plan.dangling:
        plan.warnings.append(f"{plan.dangling} objects in old revisions named labels or models deleted before the backup: "
                             "those references were cleared")
    return project


def _row_kwargs(table: T.Table, row: dict[str, Any], ids: _Ids, users: dict[str, int | None]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for spec in table.fields:
        value = spec.value(row)
        if spec.kind == "time":
            value = parse_time(value)
        elif spec.kind == "user":
            value = users[value] if value is not None else None
        elif spec.kind == "ref":
            value = ids.new(spec.ref, value) if not (spec.ref == "predictions") else ids.get("predictions", value)
        kwargs[spec.column] = value
    return kwargs


def _write_table(
    reader: ArchiveReader, table: T.Table, project: Project, plan: _Plan, ids: _Ids, users: dict[str, int | None],
    steps: _Steps, written: list[str], local_files: list[Path],
) -> None:
    keep_ids = table.has_id and (table is not T.PREDICTIONS or bool(plan.referenced_predictions))
    mapping: dict[int, int] = {}
    ids.maps[table.name] = mapping
    message = f"Restoring {table.name.replace('_', ' ')}"
    batch: list[models.Model] = []
    olds: list[int] = []
    batch_bytes = 0

    def flush() -> None:
        nonlocal batch_bytes
        batch_bytes = 0
        new_ids = _insert(table.model, batch)
        if keep_ids:
            for old, new in zip(olds, new_ids):
                if table is not T.PREDICTIONS or old in plan.referenced_predictions:
                    mapping[old] = new
        steps.tick(message, len(batch))
        batch.clear()
        olds.clear()

    for _number, row, size in reader.rows(table.name):
        kwargs = _row_kwargs(table, row, ids, users)
        if table.via == "project_id":
            kwargs["project_id"] = project.pk
        obj = table.model(**kwargs)
        _restore_extra(reader, table, row, obj, project, plan, ids, users, written, local_files)
        batch.append(obj)
        if table.has_id:
            olds.append(row["id"])
        batch_bytes += size
        if len(batch) >= CHUNK or batch_bytes >= BATCH_BYTES:
            flush()
    if batch:
        flush()


def _restore_extra(
    reader: ArchiveReader, table: T.Table, row: dict[str, Any], obj: Any, project: Project, plan: _Plan, ids: _Ids,
    users: dict[str, int | None], written: list[str], local_files: list[Path],
) -> None:
    """What a row needs besides its fields: its files, recomputed digests and counts, remapped revision contents."""
    if table is T.IMAGES:
        if row.get("file") is not None:
            obj.file.name = _store_member(reader, row["file"], obj, "file", written)
            obj.thumbnail.name = _store_member(reader, row["thumbnail"], obj, "thumbnail", written) if row.get("thumbnail") else ""
        else:
            source_file, source_thumb = plan.local_media[row["checksum"]]
            obj.file.name = _copy_stored(source_file, obj, "file", written)
            obj.thumbnail.name = _copy_stored(source_thumb, obj, "thumbnail", written) if source_thumb else ""
    elif table is T.ANNOTATIONS:
        obj.digest = annotation_digest(obj)
        obj.vertices = vertex_count(obj.geometry)
    elif table is T.REVISIONS:
        objects = [_revision_object_in(o, ids, users, plan) for o in row["annotations"]]
        obj.annotations, obj.delta = plan.revisions.write(image_id=obj.image_id, version=obj.version, action=obj.action, objects=objects)
    elif table in _OBJECT_SETS:
        key = _OBJECT_SETS[table]
        setattr(obj, key, [_revision_object_in(o, ids, users, plan) for o in row[key]])
        if table is T.GROUND_TRUTH_ATTEMPTS:
            obj.scores = _scores_in(row["scores"], ids, plan)
    elif table is T.MODEL_VERSIONS:
        if row.get("weights"):
            target_dir = Path(settings.ANNOTATOR_MODEL_DIR) / f"project-{project.pk}"
            target_dir.mkdir(parents=True, exist_ok=True)
            target = target_dir / f"restored-{row['id']}-{PurePosixPath(row['weights']).name}"
            with reader.open(row["weights"]) as src, open(target, "xb") as dst:
                local_files.append(target)
                shutil.copyfileobj(src, dst, _BLOCK)
            obj.checkpoint = str(target)
            if row.get("shape"):
                # Beside the checkpoint, where the box tool looks: its name comes from the checkpoint's, not the archive.
                _restore_local(reader, row["shape"], shape_prior_path(target), local_files)
        obj.is_active = bool(row["is_active"])
    elif table is T.JOBS:
        if row["state"] not in FINISHED_STATES:
            # It was running when the backup was made: nothing will ever run this copy.
            obj.state = JobState.CANCELLED
            obj.message = "Was not finished when the backup was made"
            obj.finished_at = parse_time(reader.manifest.get("created_at"))
        obj.worker = ""
        obj.heartbeat_at = None
    elif table is T.PROJECT_SHAPES:
        if row.get("file"):
            _restore_local(reader, row["file"], project_shape_path(project.pk), local_files)
        # Read from the file it restored, not taken from the archive: an older shape is learned again.
        obj.format_version = shape_file_format(project_shape_path(project.pk))
    elif table is T.DATASET_VERSIONS:
        if row.get("file"):
            name = f"projects/{project.pk}/datasets/{PurePosixPath(row['file']).name}"
            with reader.open(row["file"]) as src:
                obj.file.name = default_storage.save(name, File(src, name=PurePosixPath(name).name))
            written.append(obj.file.name)
        else:
            obj.file.name = ""


def _restore_local(reader: ArchiveReader, member: str, target: Path, local_files: list[Path]) -> None:
    """An archive member into a file of the model folder (a failed restore removes it again)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with reader.open(member) as src, open(target, "wb") as dst:
        local_files.append(target)
        shutil.copyfileobj(src, dst, _BLOCK)


def _revision_object_in(obj: dict[str, Any], ids: _Ids, users: dict[str, int | None], plan: _Plan) -> dict[str, Any]:
    restored = dict(obj)
    for key, table in (("label", "labels"), ("model_version", "model_versions"), ("prediction", "predictions")):
        if key in restored and restored[key] is not None:
            new = ids.get(table, restored[key])
            # Old revisions may name labels, models or predictions deleted since; the ids mean nothing here.
            if new is None and table != "predictions":
                plan.dangling += 1
            restored[key] = new
    author = restored.get("author")
    restored["author"] = users.get(author) if isinstance(author, str) else None
    return restored


def _scores_in(scores: dict[str, Any] | None, ids: _Ids, plan: _Plan) -> dict[str, Any] | None:
    """ml.quality.score's result with the new label ids: per_label and confusion are keyed by label
    (missing / extra stay as they are), conflicts name the labels of both sides."""
    if scores is None:
        return None

    def label(old: Any) -> Any:
        if old is None or old in (quality.MISSING, quality.EXTRA):
            return old
        new = ids.get("labels", int(old) if isinstance(old, str) and old.isdigit() else old)
        if new is None:
            plan.dangling += 1
            return f"deleted-{old}"  # a label deleted before the backup: kept apart, never another label's id
        return new

    def keyed(values: Any) -> Any:
        return {str(label(key)): value for key, value in values.items()} if isinstance(values, dict) else values

    restored = dict(scores)
    if "per_label" in scores:
        restored["per_label"] = keyed(scores["per_label"])
    if isinstance(scores.get("confusion"), dict):
        restored["confusion"] = {str(label(truth)): keyed(row) for truth, row in scores["confusion"].items()}
    if isinstance(scores.get("conflicts"), list):
        restored["conflicts"] = [
            {**c, "truth_label": label(c.get("truth_label")), "attempt_label": label(c.get("attempt_label"))} if isinstance(c, dict) else c
            for c in scores["conflicts"]
        ]
    return restored


def _target_name(obj: Image, field_name: str, filename: str) -> str:
    return Image._meta.get_field(field_name).generate_filename(obj, filename)  # type: ignore[attr-defined]


def _store_member(reader: ArchiveReader, member: str, obj: Image, field_name: str, written: list[str]) -> str:
    filename = PurePosixPath(member).name
    with reader.open(member) as src:
        stored = default_storage.save(_target_name(obj, field_name, filename), File(src, name=filename))
    written.append(stored)
    return stored


def _copy_stored(source: str, obj: Image, field_name: str, written: list[str]) -> str:
    filename = PurePosixPath(source).name
    try:
        with default_storage.open(source, "rb") as src:
            stored = default_storage.save(_target_name(obj, field_name, filename), File(src, name=filename))
    except FileNotFoundError:
        raise DomainError(f"{source}: the picture this archive relies on is missing from storage; nothing was restored") from None
    written.append(stored)
    return stored


# --------------------------------------------------------------------------------------------
# Restore and duplicate jobs
# --------------------------------------------------------------------------------------------


def restore_upload_store(file: IO[bytes], *, name: str) -> str:
    """Keep an uploaded archive in storage until the restore job (maybe on another machine) reads it."""
    import hashlib

    return default_storage.save(
        f"restores/{timezone.now():%Y%m%d}/{hashlib.sha256(name.encode()).hexdigest()[:8]}.zip", File(file, name="backup.zip")
    )


def check_may_create_projects(user: AbstractBaseUser | None) -> None:
    if user is not None and not (user.is_superuser or user.is_staff):
        raise Forbidden("Only administrators can restore or duplicate projects (it creates a project).")


def restore_start(
    *,
    options: RestoreOptions,
    user: AbstractBaseUser | None,
    upload: str | None = None,
    path: str | None = None,
    backup: ProjectBackup | None = None,
    filename: str = "backup.zip",
    enqueue: bool = True,
) -> Job:
    """Start a restore of an uploaded archive (in storage), a kept backup, or (commands) a local file."""
    check_may_create_projects(user)
    if options.name:
        _check_name_free(options.name)
    params: dict[str, Any] = {"options": options.as_dict(), "filename": filename}
    if upload is not None:
        params["upload"] = upload
    elif backup is not None:
        params["backup"] = backup.pk
        params["filename"] = PurePosixPath(backup.file.name).name
    elif path is not None:
        params["path"] = path
    else:
        raise DomainError("Nothing to restore: give an archive.")
    try:
        with transaction.atomic():
            return job_start(kind=JobKind.RESTORE, project=None, params=params, user=user, enqueue=enqueue)
    except BaseException:
        if upload is not None:
            default_storage.delete(upload)
        raise


@contextmanager
def _local_copy(storage_name: str) -> Iterator[Path]:
    """The stored archive as a local file: itself on a local storage, else a copy streamed to the tmp folder."""
    try:
        local = Path(default_storage.path(storage_name))
    except NotImplementedError:
        local = None
    if local is not None:
        if not local.is_file():
            raise DomainError(f"{PurePosixPath(storage_name).name}: the archive is missing from storage")
        yield local
        return
    from annotator.core.files import temp_folder

    with temp_folder("restore") as folder:
        target = folder / "archive.zip"
        with default_storage.open(storage_name, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, _BLOCK)
        yield target


def restore_run(*, job: Job, progress: Progress | None = None) -> dict[str, Any]:
    """The restore job's work: the archive named by its params, restored with its options."""
    params = job.params
    options = RestoreOptions.from_dict(params.get("options") or {})
    name = str(params.get("filename") or "backup.zip")
    if params.get("upload"):
        try:
            with _local_copy(params["upload"]) as path:
                result = restore(path=path, archive_name=name, options=options, user=job.created_by, job=job, progress=progress)
        finally:
            default_storage.delete(params["upload"])
    elif params.get("backup"):
        backup = ProjectBackup.objects.filter(pk=params["backup"]).first()
        if backup is None:
            raise DomainError("The backup to restore was deleted.")
        with _local_copy(backup.file.name) as path:
            result = restore(path=path, archive_name=name, options=options, user=job.created_by, job=job, progress=progress)
    else:
        path = Path(params["path"])
        if not path.is_file():
            raise DomainError(f"{path.name}: no such file (on the worker's machine)")
        result = restore(path=path, archive_name=path.name, options=options, user=job.created_by, job=job, progress=progress)
    return result.as_dict()


def duplicate_name(project: Project) -> str:
    base = f"{project.name[:180]} (copy)"
    name, n = base, 2
    while Project.objects.filter(name=name).exists():
        name, n = f"{project.name[:180]} (copy {n})", n + 1
    return name


def duplicate_start(*, project: Project, name: str | None, user: AbstractBaseUser | None, enqueue: bool = True) -> Job:
    """Start a duplication: backup and restore as a new project, in one job."""
    check_may_create_projects(user)
    _refuse_deleting(project)
    name = (name or "").strip() or duplicate_name(project)
    if len(name) > 200:
        raise DomainError("name: at most 200 characters")
    _check_name_free(name)
    with transaction.atomic():
        return job_start(kind=JobKind.DUPLICATE, project=project, params={"name": name}, user=user, enqueue=enqueue)


def project_duplicate(*, project: Project, name: str, user: AbstractBaseUser | None, job: Job | None = None,
                      progress: Progress | None = None) -> RestoreResult:
    """Back up the project (images and model weights: the copy owns its files) and restore it as ``name``."""
    from annotator.core.files import temp_folder

    options = BackupOptions(images=True, models=True, datasets=True)
    with temp_folder("duplicate") as folder:
        path = folder / "project.zip"
        backup_write(project=project, out=path, options=options, progress=_phased(progress, 0.4),
                     exclude_job=job.pk if job is not None else None)
        result = restore(path=path, archive_name=f"{project.name} backup", options=RestoreOptions(name=name), user=user,
                         progress=_phased(progress, 0.6, start=0.4))
    return result


# --------------------------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------------------------


def schedule_set(
    *,
    project: Project,
    enabled: bool | None = None,
    every_hours: int | None = None,
    keep: int | None = None,
    with_images: bool | None = None,
    with_models: bool | None = None,
) -> BackupSchedule:
    """Create or change the project's backup schedule; what is not given keeps its value (or the default)."""
    schedule = BackupSchedule.objects.filter(project=project).first() or BackupSchedule(project=project)
    changes = {"enabled": enabled, "every_hours": every_hours, "keep": keep, "with_images": with_images, "with_models": with_models}
    for name, value in changes.items():
        if value is not None:
            setattr(schedule, name, value)
    if not 1 <= schedule.every_hours <= 24 * 365:
        raise DomainError("every_hours must be between 1 and 8760")
    if not 1 <= schedule.keep <= 1000:
        raise DomainError("keep must be between 1 and 1000")
    schedule.save()
    return schedule


def backups_start_due(*, now: datetime | None = None) -> list[int]:
    """Start the scheduled backups that are due (Celery beat calls this every few minutes); returns the job ids.

    A schedule is claimed by a conditional update of its last start, so two beat processes
    never start the same backup twice. Projects being deleted are skipped, and so is an
    archived project that has a backup made since it was archived (it cannot have changed).
    """
    now = now or timezone.now()
    started: list[int] = []
    for schedule in BackupSchedule.objects.filter(enabled=True).select_related("project"):
        project = schedule.project
        if project.delete_requested_at is not None:
            continue
        if schedule.last_started_at is not None and now - schedule.last_started_at < timedelta(hours=schedule.every_hours):
            continue
        if project.archived_at is not None and ProjectBackup.objects.filter(project=project, created_at__gte=project.archived_at).exists():
            continue
        with transaction.atomic():
            claimed = BackupSchedule.objects.filter(pk=schedule.pk, last_started_at=schedule.last_started_at).update(last_started_at=now)
            if not claimed:
                continue
            options = BackupOptions(images=schedule.with_images, models=schedule.with_models)
            job = job_start(kind=JobKind.BACKUP, project=project, params={"options": options.as_dict(), "scheduled": True}, user=None)
        started.append(job.pk)
    return started


def backups_prune(*, project: Project) -> list[int]:
    """Delete the scheduled backups beyond the schedule's `keep` (oldest first); manual backups stay."""
    schedule = BackupSchedule.objects.filter(project=project).first()
    if schedule is None:
        return []
    old = list(ProjectBackup.objects.filter(project=project, scheduled=True).order_by("-created_at", "-id")[schedule.keep:])
    for backup in old:
        backup_delete(backup=backup)
    return [b.pk for b in old]
