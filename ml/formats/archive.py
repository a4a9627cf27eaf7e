"""The one archive reader (uploads, dataset imports, restores) and locating a dataset inside a folder.

:class:`SafeZip` checks every member when the archive is opened: names through the path resolver
(``ml.formats.paths``), no links or special files, no encrypted or duplicate members, and the
member-count, total-size, per-file-size and compression-ratio limits. Members are then read as
streams (or copied to disk in blocks), with corrupt data (bad CRC, broken deflate stream) turned
into a FormatError naming the member.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO, Protocol, cast

import ijson

from ml.formats.model import FormatError
from ml.formats.paths import clean_path

DEFAULT_MAX_FILES = 100_000
DEFAULT_MAX_TOTAL_BYTES = 20 * 1024**3  # 20 GiB uncompressed
DEFAULT_MAX_RATIO = 200  # a JPEG/PNG/JSON dataset never compresses anywhere near this
# Members below this size are exempt from the ratio limit: a small text file of spaces may well
# compress 1000:1 and cannot hurt anybody.
RATIO_EXEMPT_BYTES = 1024 * 1024
_BLOCK = 1024 * 1024

# Junk that archivers add; it must not count when looking for the single top folder.
_IGNORED_NAMES = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class ZipMember:
    """One checked file of an archive: its name as stored, its clean relative path, its size."""

    name: str
    path: PurePosixPath
    size: int
    info: zipfile.ZipInfo


def _member_path(info: zipfile.ZipInfo, archive_name: str) -> PurePosixPath | None:
    """The safe relative path of a member, or FormatError. None for directory entries."""
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise FormatError(archive_name, f"member {info.filename!r}: symbolic links are not allowed")
    # Zips written by Python's writestr carry permission bits but no file-type bits; only an
    # explicit type other than file/folder (device, fifo...) is refused.
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise FormatError(archive_name, f"member {info.filename!r}: special files are not allowed")
    if info.is_dir() and info.filename.strip("/\\") in ("", "."):
        return None
    path = clean_path(info.filename, file=archive_name, entry="member", scope="archive")
    return None if info.is_dir() else path


def _source_name(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    return Path(str(getattr(source, "name", None) or "archive.zip")).name


class SafeZip:
    """A zip archive whose members were all checked when it was opened.

    ``name`` is how errors name the archive (default: the file's base name, never its folder).
    Opening raises FormatError for anything :func:`safe_extract` documents; nothing has been
    read from a member at that point, so a bomb costs only its central directory.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | BinaryIO,
        *,
        name: str | None = None,
        max_files: int = DEFAULT_MAX_FILES,
        max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
        max_file_bytes: int | None = None,
        max_ratio: float = DEFAULT_MAX_RATIO,
    ) -> None:
        self.name = name or _source_name(source)
        try:
            self._zip = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
            raise FormatError(self.name, f"not a valid zip archive ({type(exc).__name__})") from None
        try:
            self.members = self._check(max_files, max_total_bytes, max_file_bytes, max_ratio)
        except BaseException:
            self._zip.close()
            raise

    def _check(
        self, max_files: int, max_total_bytes: int, max_file_bytes: int | None, max_ratio: float
    ) -> list[ZipMember]:
        members: list[ZipMember] = []
        seen: set[str] = set()
        total = 0
        for info in self._zip.infolist():
            rel = _member_path(info, self.name)
            if rel is None:
                continue
            where = f"member {info.filename!r}"
            key = str(rel).casefold()  # case-insensitive filesystems would merge these
            if key in seen:
                raise FormatError(self.name, f"{where}: duplicate file name")
            seen.add(key)
            if info.flag_bits & 0x1:
                raise FormatError(self.name, f"{where}: encrypted members are not supported")
            if len(members) + 1 > max_files:
                raise FormatError(self.name, f"more than {max_files} files in the archive")
            if info.file_size > RATIO_EXEMPT_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
                raise FormatError(self.name, f"{where}: compression ratio above {max_ratio} (zip bomb?)")
            if max_file_bytes is not None and info.file_size > max_file_bytes:
                raise FormatError(
                    self.name, f"{where}: {info.file_size:,} bytes is more than the limit of {max_file_bytes:,} for one file"
                )
            total += info.file_size
            if total > max_total_bytes:
                raise FormatError(self.name, f"{where}: archive expands to more than {max_total_bytes} bytes")
            members.append(ZipMember(name=info.filename, path=rel, size=info.file_size, info=info))
        # A file and a folder with the same name cannot both exist.
        folders = {str(parent).casefold() for member in members for parent in member.path.parents}
        for member in members:
            if str(member.path).casefold() in folders:
                raise FormatError(self.name, f"member {member.name!r}: is both a file and a folder")
        return members

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    @contextmanager
    def _reading(self, member: ZipMember) -> Iterator[None]:
        try:
            yield
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            # zipfile checks the CRC at the end of each member ("Bad CRC-32 for file ...").
            raise FormatError(self.name, f"member {member.name!r}: corrupt data ({exc})") from None

    def open(self, member: ZipMember) -> IO[bytes]:
        """The member as a stream; it stops at the checked size, corrupt data raises FormatError."""
        with self._reading(member):
            return cast(IO[bytes], _MemberStream(self, member, self._zip.open(member.info)))

    def read(self, member: ZipMember) -> bytes:
        """The whole member: only for members whose checked size the caller accepts in memory."""
        with self.open(member) as stream:
            return stream.read()

    def copy(self, member: ZipMember, out: BinaryIO) -> None:
        """Copy the member into ``out`` a block at a time."""
        with self.open(member) as stream:
            shutil.copyfileobj(stream, out, _BLOCK)

    def extract(self, dest_dir: str | os.PathLike[str]) -> list[Path]:
        """Write every member under ``dest_dir`` and return the paths; removes them again on failure."""
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        dest_resolved = dest.resolve()
        written: list[Path] = []
        try:
            for member in self.members:
                target = dest_resolved.joinpath(*member.path.parts)
                # Defence in depth: the checks above should make this impossible, but a
                # pre-existing symlink inside dest could still redirect the write.
                if not target.resolve().is_relative_to(dest_resolved):
                    raise FormatError(self.name, f"member {member.name!r}: escapes the destination folder")
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "xb") as dst:
                    written.append(target)
                    self.copy(member, dst)
        except FileExistsError:
            _remove(written)
            raise FormatError(self.name, f"member {member.name!r}: already exists in the destination") from None
        except OSError as exc:
            _remove(written)
            raise FormatError(self.name, f"member {member.name!r}: cannot be written ({exc.strerror})") from None
        except BaseException:
            _remove(written)
            raise
        return written


class _MemberStream(io.RawIOBase):
    """A member being read: zipfile's stream with its errors named after the member."""

    def __init__(self, archive: SafeZip, member: ZipMember, raw: IO[bytes]) -> None:
        super().__init__()
        self._archive, self._member, self._raw = archive, member, raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        with self._archive._reading(self._member):
            data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        with self._archive._reading(self._member):
            return self._raw.read(size)

    def close(self) -> None:
        self._raw.close()
        super().close()


def safe_extract(
    zip_file: str | os.PathLike[str] | BinaryIO,
    dest_dir: str | os.PathLike[str],
    *,
    max_files: int = DEFAULT_MAX_FILES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> list[Path]:
    """Extract a zip into ``dest_dir`` and return the extracted file paths.

    Every member is checked before anything is written, so a bad archive leaves ``dest_dir``
    untouched: absolute paths, ``..`` leading out, symlinks and special files, duplicate names,
    more than ``max_files`` files, more than ``max_total_bytes`` uncompressed in total, or a
    member that inflates more than ``max_ratio`` times all raise FormatError naming the member.
    The declared sizes are also enforced while inflating, so a lying header cannot exceed them,
    and corrupt data (bad CRC) is a FormatError naming the member, with the files already
    written removed.
    """
    with SafeZip(zip_file, max_files=max_files, max_total_bytes=max_total_bytes, max_ratio=max_ratio) as archive:
        return archive.extract(dest_dir)


class OutputSink(Protocol):
    """Where a writer puts the files of a dataset: a folder or an open zip."""

    def write(self, name: str, data: bytes) -> None: ...


class _FolderSink:
    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, data: bytes) -> None:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


class _ZipSink:
    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive

    def write(self, name: str, data: bytes) -> None:
        # PNG and JPEG are already compressed; deflating them again only costs CPU.
        compress = zipfile.ZIP_STORED if name.lower().endswith((".png", ".jpg", ".jpeg")) else zipfile.ZIP_DEFLATED
        self.archive.writestr(name, data, compress_type=compress)


def output_sink(out: zipfile.ZipFile | str | os.PathLike[str]) -> OutputSink:
    """The writers' output: members of an open zip, or files under a folder (created as needed)."""
    return _ZipSink(out) if isinstance(out, zipfile.ZipFile) else _FolderSink(Path(out))


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _visible_entries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name not in _IGNORED_NAMES and not p.name.startswith("._")]


def find_dataset_root(folder: str | os.PathLike[str]) -> Path:
    """Descend through single wrapper folders (``export.zip`` → ``export/``) to the dataset root."""
    root = Path(folder)
    while True:
        entries = _visible_entries(root)
        if len(entries) == 1 and entries[0].is_dir():
            root = entries[0]
            continue
        return root


def iter_files(root: str | os.PathLike[str], *suffixes: str) -> Iterator[Path]:
    """Files under ``root`` (recursively, sorted, archiver junk skipped) with one of ``suffixes``.

    A symbolic link that leads out of ``root`` is a FormatError naming it, not a file of the dataset.
    """
    wanted = tuple(s.lower() for s in suffixes)
    top = Path(root)
    inside = top.resolve()
    for path in sorted(top.rglob("*")):
        relative = path.relative_to(top)
        if any(part in _IGNORED_NAMES or part.startswith("._") for part in relative.parts):
            continue
        if wanted and not path.name.lower().endswith(wanted):
            continue
        if not path.resolve().is_relative_to(inside):
            raise FormatError(relative.as_posix(), "a symbolic link that points outside the dataset folder")
        if path.is_file():
            yield path


@dataclass(frozen=True)
class JsonKeys:
    """The top-level keys of a JSON object with the kind of each value (``start_array``,
    ``start_map``, ``string``...); ``broken`` when the file is not valid JSON after them."""

    keys: dict[str, str]
    broken: bool = False


def json_top_level(path: str | os.PathLike[str], *, enough: Callable[[dict[str, str]], bool]) -> JsonKeys | None:
    """The top-level keys of a JSON object file, parsed as a stream until ``enough(keys)`` holds.

    Format detection reads structure, not a window of bytes: in COCO's own key order (info,
    licenses, images, annotations, categories) the keys that tell it apart come after the image
    list. None when the file is not a JSON object (or unreadable); a file that breaks off gives
    the keys before the break, marked ``broken`` (its reader reports the exact place).
    """
    keys: dict[str, str] = {}
    pending: str | None = None
    try:
        with open(path, "rb") as fh:
            events = ijson.parse(fh, use_float=True)
            first = next(events, None)
            if first is None or first[1] != "start_map":
                return None
            for prefix, event, value in events:
                if pending is not None:
                    keys[pending] = event
                    pending = None
                    if enough(keys):
                        break
                elif prefix == "" and event == "map_key":
                    pending = value
    except (ijson.JSONError, UnicodeDecodeError, ValueError):
        return JsonKeys(keys, broken=True) if keys else None
    except OSError:
        return None
    return JsonKeys(keys)


def detect_format(root: str | os.PathLike[str]) -> str | None:
    """Guess the dataset format of an extracted folder: ``"coco"``, ``"voc"``, ``"labelme"`` or None."""
    base = find_dataset_root(root)
    if any(p.parent.name == "Annotations" and p.suffix.lower() == ".xml" for p in iter_files(base, ".xml")):
        return "voc"
    from ml.formats.coco import looks_like_coco
    from ml.formats.labelme import looks_like_labelme

    json_files = list(iter_files(base, ".json"))
    if any(looks_like_coco(p) for p in json_files):
        return "coco"
    if any(looks_like_labelme(p) for p in json_files):
        return "labelme"
    return None
