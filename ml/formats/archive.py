"""Safe zip extraction (no path tricks, no zip bombs) and locating a dataset inside the result."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ml.formats.model import FormatError

DEFAULT_MAX_FILES = 100_000
DEFAULT_MAX_TOTAL_BYTES = 20 * 1024**3  # 20 GiB uncompressed
DEFAULT_MAX_RATIO = 200  # a JPEG/PNG/JSON dataset never compresses anywhere near this

# Junk that archivers add; it must not count when looking for the single top folder.
_IGNORED_NAMES = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"}


def _member_path(info: zipfile.ZipInfo, archive_name: str) -> PurePosixPath | None:
    """The safe relative path of a member, or FormatError. None for directory entries."""
    raw = info.filename
    # Zips made on Windows sometimes use backslashes; treat them as separators so that
    # "..\\evil" cannot slip past the ".." check.
    name = raw.replace("\\", "/")
    if "\x00" in name:
        raise FormatError(archive_name, f"member {raw!r}: NUL byte in name")
    if name.startswith("/") or (len(name) >= 2 and name[1] == ":"):
        raise FormatError(archive_name, f"member {raw!r}: absolute path is not allowed")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise FormatError(archive_name, f"member {raw!r}: '..' in path is not allowed")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise FormatError(archive_name, f"member {raw!r}: symbolic links are not allowed")
    # Zips written by Python's writestr carry permission bits but no file-type bits; only an
    # explicit type other than file/folder (device, fifo...) is refused.
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise FormatError(archive_name, f"member {raw!r}: special files are not allowed")
    if info.is_dir() or not parts:
        return None
    return PurePosixPath(*parts)


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
    untouched: absolute paths, ``..`` components, symlinks and special files, duplicate names,
    more than ``max_files`` files, more than ``max_total_bytes`` uncompressed in total, or a
    member that inflates more than ``max_ratio`` times all raise FormatError naming the member.
    The declared sizes are also enforced while inflating, so a lying header cannot exceed them.
    """
    archive_name = (
        Path(zip_file).name
        if isinstance(zip_file, (str, os.PathLike))
        else Path(str(getattr(zip_file, "name", "archive.zip"))).name
    )
    dest = Path(dest_dir)
    try:
        archive = zipfile.ZipFile(zip_file)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FormatError(archive_name, f"not a readable zip archive ({exc})") from exc

    with archive:
        plan: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        seen: set[str] = set()
        total = 0
        for info in archive.infolist():
            rel = _member_path(info, archive_name)
            if rel is None:
                continue
            key = str(rel).casefold()  # case-insensitive filesystems would merge these
            if key in seen:
                raise FormatError(archive_name, f"member {info.filename!r}: duplicate file name")
            seen.add(key)
            if info.flag_bits & 0x1:
                raise FormatError(archive_name, f"member {info.filename!r}: encrypted members are not supported")
            total += info.file_size
            if len(plan) + 1 > max_files:
                raise FormatError(archive_name, f"more than {max_files} files in the archive")
            if total > max_total_bytes:
                raise FormatError(
                    archive_name,
                    f"member {info.filename!r}: archive expands to more than {max_total_bytes} bytes",
                )
            if info.file_size > 1024 * 1024 and info.file_size > max_ratio * max(info.compress_size, 1):
                raise FormatError(
                    archive_name,
                    f"member {info.filename!r}: compression ratio above {max_ratio} (zip bomb?)",
                )
            plan.append((info, rel))

        # A file and a folder with the same name cannot both exist.
        folders = {str(parent).casefold() for _, rel in plan for parent in rel.parents}
        for info, rel in plan:
            if str(rel).casefold() in folders:
                raise FormatError(archive_name, f"member {info.filename!r}: is both a file and a folder")

        dest.mkdir(parents=True, exist_ok=True)
        dest_resolved = dest.resolve()
        written: list[Path] = []
        try:
            for info, rel in plan:
                target = dest_resolved.joinpath(*rel.parts)
                # Defence in depth: the checks above should make this impossible, but a
                # pre-existing symlink inside dest could still redirect the write.
                if not target.resolve().is_relative_to(dest_resolved):
                    raise FormatError(archive_name, f"member {info.filename!r}: escapes the destination folder")
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(target, "xb") as dst:
                    written.append(target)
                    # zipfile stops at the declared file_size and checks the CRC at the end,
                    # so the budget computed above holds while inflating.
                    shutil.copyfileobj(src, dst, 1024 * 1024)
        except FileExistsError as exc:
            _remove(written)
            raise FormatError(archive_name, f"member {exc.filename}: already exists in the destination") from exc
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
            _remove(written)
            raise FormatError(archive_name, f"corrupt archive ({exc})") from exc
        except BaseException:
            _remove(written)
            raise
    return written


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
    """Files under ``root`` (recursively, sorted, archiver junk skipped) with one of ``suffixes``."""
    wanted = tuple(s.lower() for s in suffixes)
    for path in sorted(Path(root).rglob("*")):
        if any(part in _IGNORED_NAMES or part.startswith("._") for part in path.parts):
            continue
        if path.is_file() and (not wanted or path.name.lower().endswith(wanted)):
            yield path


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
