"""The project archive as a file (format in docs/backup.md): one zip64, versioned, every member checksummed.

:class:`ArchiveWriter` streams members into the zip (JSON Lines tables deflated, image files and
other binaries stored as they are), hashing each one on the way, and ends with ``manifest.json``:
format name and version, counts and the size and SHA-256 of every other member.

:class:`ArchiveReader` opens an archive with the one archive reader (``core.files.zip_open``,
i.e. ``ml.formats.archive.SafeZip``: member names checked, links and special files refused),
reads the manifest, checks the format and its version, and :meth:`ArchiveReader.verify` checks
every member's size and SHA-256 (and that nothing unlisted is there) before anything else reads
it. Tables are read back a line at a time: memory holds one row, not the table.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import IO, Any, BinaryIO

import orjson
from django.conf import settings
from django.utils import timezone

from annotator.core.errors import DomainError
from annotator.core.files import zip_open
from ml.formats.archive import SafeZip, ZipMember

FORMAT = "annotator-project-backup"
#: The version this code writes. Bump it when a table gains, loses or changes a field, and add
#: the step that brings rows of the previous version up to date to ``UPGRADES``.
FORMAT_VERSION = 1
#: The oldest version this code still restores.
OLDEST_VERSION = 1
MANIFEST = "manifest.json"
PROJECT = "project.json"
MAX_MANIFEST_BYTES = 512 * 1024 * 1024
# Deflate level 1: JSON shrinks 4-8 times at ~100 MB/s; image files are stored as they are.
_COMPRESS_LEVEL = 1
_FLUSH_BYTES = 1 << 20
_BLOCK = 1 << 20

Row = dict[str, Any]
#: version → table → function bringing one row of that version to the next version.
UPGRADES: dict[int, dict[str, Callable[[Row], Row]]] = {}


def table_member(table: str) -> str:
    return f"data/{table}.jsonl"


class _HashingMember:
    """A member open for writing, hashed and counted as it is written."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.raw.write(data)


class TableWriter:
    """Rows of one table as JSON Lines; rows are buffered and written a megabyte at a time."""

    def __init__(self, member: _HashingMember) -> None:
        self._member = member
        self._buffer = bytearray()
        self.rows = 0

    def write(self, row: Row) -> None:
        self._buffer += orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
        self.rows += 1
        if len(self._buffer) >= _FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._member.write(self._buffer)
            self._buffer = bytearray()


class ArchiveWriter:
    """Writes a project archive into ``out`` (a path or a seekable binary file)."""

    def __init__(self, out: str | os.PathLike[str] | BinaryIO) -> None:
        self._zip = zipfile.ZipFile(out, "w", allowZip64=True)
        self.members: list[dict[str, Any]] = []
        self.rows: dict[str, int] = {}
        self._time = timezone.now().timetuple()[:6]

    def _info(self, path: str, compress: bool) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(path, date_time=self._time)  # type: ignore[arg-type]
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        if compress:
            # ZipFile.open(info, "w") takes the level from the ZipInfo (a property over this slot since 3.13).
            info._compresslevel = _COMPRESS_LEVEL  # type: ignore[attr-defined]
        info.external_attr = 0o644 << 16
        return info

    @contextmanager
    def _member(self, path: str, *, compress: bool) -> Iterator[_HashingMember]:
        # force_zip64: the size is not known in advance and may pass 4 GB.
        with self._zip.open(self._info(path, compress), "w", force_zip64=True) as raw:
            member = _HashingMember(raw)
            yield member
        self.members.append({"path": path, "size": member.size, "sha256": member.sha.hexdigest()})

    @contextmanager
    def table(self, table: str) -> Iterator[TableWriter]:
        with self._member(table_member(table), compress=True) as member:
            writer = TableWriter(member)
            yield writer
            writer.flush()
        self.rows[table] = writer.rows

    def add_json(self, path: str, value: Any) -> None:
        with self._member(path, compress=True) as member:
            member.write(orjson.dumps(value, option=orjson.OPT_INDENT_2))

    def add_stream(self, path: str, source: IO[bytes], *, compress: bool = False) -> str:
        """Copy ``source`` into the member ``path``; returns its SHA-256."""
        with self._member(path, compress=compress) as member:
            shutil.copyfileobj(source, member, _BLOCK)  # type: ignore[arg-type]
        return str(self.members[-1]["sha256"])

    def close(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Write the manifest (``manifest`` plus format, version, row counts, members) and close."""
        full = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            **manifest,
            "rows": dict(self.rows),
            "members": list(self.members),
        }
        info = self._info(MANIFEST, True)
        self._zip.writestr(info, orjson.dumps(full, option=orjson.OPT_INDENT_2))
        self._zip.close()
        return full

    def abort(self) -> None:
        try:
            self._zip.close()
        except (OSError, ValueError):
            pass


class ArchiveError(DomainError):
    """The archive cannot be restored: damaged, of an unknown format or version, or inconsistent."""


class ArchiveReader:
    """An opened, checked project archive. ``name`` is how errors call it (never a server path)."""

    def __init__(self, path: str | os.PathLike[str], *, name: str) -> None:
        self.name = name
        try:
            self._zip: SafeZip = zip_open(
                path, name=name, max_files=settings.ANNOTATOR_MAX_BACKUP_FILES,
                max_total_bytes=settings.ANNOTATOR_MAX_BACKUP_BYTES,
            )
        except DomainError as exc:
            if "not a valid zip archive" in exc.detail:
                raise ArchiveError(
                    f"{name}: not a complete zip archive: the file is truncated (an interrupted download or "
                    "upload?) or not a project backup at all", extra={"file": name, "problem": "truncated"},
                ) from None
            raise ArchiveError(exc.detail, extra=exc.extra) from None
        try:
            self._by_path = {str(member.path): member for member in self._zip.members}
            self.manifest = self._read_manifest()
            self.version = int(self.manifest["format_version"])
            self._listed = {entry["path"]: entry for entry in self.manifest["members"]}
        except BaseException:
            self._zip.close()
            raise

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def fail(self, problem: str, *, member: str | None = None) -> ArchiveError:
        where = f"{self.name}: {member}: " if member else f"{self.name}: "
        return ArchiveError(where + problem, extra={"file": self.name, "member": member, "problem": problem})

    def _read_manifest(self) -> dict[str, Any]:
        member = self._by_path.get(MANIFEST)
        if member is None:
            raise self.fail(f"no {MANIFEST}: this is not a project backup")
        if member.size > MAX_MANIFEST_BYTES:
            raise self.fail("the manifest is implausibly large", member=MANIFEST)
        try:
            manifest = orjson.loads(self._read(member))
        except orjson.JSONDecodeError as exc:
            raise self.fail(f"not valid JSON ({exc})", member=MANIFEST) from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise self.fail(f"not a project backup (the manifest's format is not {FORMAT!r})", member=MANIFEST)
        version = manifest.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise self.fail(f"format_version {version!r} is not a number", member=MANIFEST)
        if version > FORMAT_VERSION:
            raise self.fail(
                f"format version {version} is newer than this server reads (versions {OLDEST_VERSION} to "
                f"{FORMAT_VERSION}); restore it on an upgraded server", member=MANIFEST,
            )
        if version < OLDEST_VERSION:
            raise self.fail(f"format version {version} is too old for this server (it reads {OLDEST_VERSION} to {FORMAT_VERSION})",
                            member=MANIFEST)
        members = manifest.get("members")
        if not isinstance(members, list) or not all(
            isinstance(m, dict) and isinstance(m.get("path"), str) and isinstance(m.get("size"), int)
            and isinstance(m.get("sha256"), str) for m in members
        ):
            raise self.fail("the list of members is missing or malformed", member=MANIFEST)
        return manifest

    def _read(self, member: ZipMember) -> bytes:
        try:
            return self._zip.read(member)
        except DomainError as exc:  # pragma: no cover - SafeZip raises FormatError, wrapped below
            raise ArchiveError(exc.detail) from None
        except Exception as exc:
            raise self._corrupt(member.name, exc) from None

    def _corrupt(self, path: str, exc: Exception) -> ArchiveError:
        return self.fail(f"corrupt data ({exc})", member=path)

    def verify(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Check that the archive holds exactly the listed members, each of the listed size and SHA-256."""
        unlisted = sorted(set(self._by_path) - set(self._listed) - {MANIFEST})
        if unlisted:
            raise self.fail("is in the archive but not in its manifest (added after the backup was made?)", member=unlisted[0])
        total = sum(entry["size"] for entry in self._listed.values()) or 1
        done = 0
        for path, entry in self._listed.items():
            member = self._by_path.get(path)
            if member is None:
                raise self.fail("is listed in the manifest but missing from the archive", member=path)
            if member.size != entry["size"]:
                raise self.fail(f"size mismatch: the manifest says {entry['size']} bytes, the archive holds {member.size}", member=path)
            sha = hashlib.sha256()
            try:
                with self._zip.open(member) as stream:
                    for block in iter(lambda: stream.read(_BLOCK), b""):
                        sha.update(block)
            except Exception as exc:  # noqa: BLE001 - SafeZip's FormatError (bad CRC, broken deflate) and the like
                raise self.fail(f"corrupt data ({exc})", member=path) from None
            if sha.hexdigest() != entry["sha256"]:
                raise self.fail(
                    f"checksum mismatch: the manifest says sha256 {entry['sha256'][:16]}…, the file has "
                    f"{sha.hexdigest()[:16]}… (the archive is damaged)", member=path,
                )
            done += entry["size"]
            if progress is not None:
                progress(done, total)

    def has(self, path: str) -> bool:
        return path in self._listed

    def read_json(self, path: str) -> Any:
        member = self._by_path.get(path)
        if member is None:
            raise self.fail("missing from the archive", member=path)
        try:
            return orjson.loads(self._read(member))
        except orjson.JSONDecodeError as exc:
            raise self.fail(f"not valid JSON ({exc})", member=path) from None

    def open(self, path: str) -> IO[bytes]:
        member = self._by_path.get(path)
        if member is None:
            raise self.fail("missing from the archive", member=path)
        return self._zip.open(member)

    def size_of(self, path: str) -> int:
        return self._listed[path]["size"] if path in self._listed else 0

    def sha256_of(self, path: str) -> str | None:
        entry = self._listed.get(path)
        return entry["sha256"] if entry else None

    def rows(self, table: str) -> Iterator[tuple[int, Row, int]]:
        """(line number, row, its size in bytes) of a table, brought up to the current format version; [] if absent."""
        path = table_member(table)
        if path not in self._by_path:
            return
        steps = [UPGRADES[v][table] for v in range(self.version, FORMAT_VERSION) if table in UPGRADES.get(v, {})]
        with self.open(path) as raw:
            for number, line in enumerate(io.BufferedReader(raw, _BLOCK), start=1):  # type: ignore[arg-type]
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise self.fail(f"line {number}: not valid JSON ({exc})", member=path) from None
                if not isinstance(row, dict):
                    raise self.fail(f"line {number}: a row must be a JSON object", member=path)
                for step in steps:
                    row = step(row)
                yield number, row, len(line)


def parse_time(value: Any) -> datetime | None:
    """An archive timestamp (ISO 8601 with offset, as orjson writes datetimes) or None."""
    if value is None:
        return None
    return datetime.fromisoformat(value)
