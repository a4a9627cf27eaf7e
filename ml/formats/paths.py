"""The one resolver for paths that a dataset names: file names in annotation files and zip members.

COCO ``file_name``, VOC ``<filename>``, LabelMe ``imagePath``, the files under an ``--images``
folder and the members of an archive all go through :func:`clean_path` (the name alone) and, for
a file on disk, :func:`resolve_in` (the name under a folder, after resolving symbolic links).

The answer is a path inside the folder or a FormatError naming the entry. The decision is taken
from the name and the links inside the folder only, before anything outside it is touched, so a
name that escapes gets the same error whether its target exists or not (no existence oracle), and
the error shows the name as the dataset wrote it, never a path of the server.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from ml.formats.model import FormatError

# "C:\x", "C:x": a Windows drive; "file://", "http://": a URL, not a file of the dataset.
_DRIVE = re.compile(r"^[A-Za-z]:")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _escape_reason(text: str, base: tuple[str, ...]) -> tuple[str | None, tuple[str, ...]]:
    """Why ``text`` (relative to ``base``) leaves the root, or None and its normalised parts."""
    # Datasets written on Windows use backslashes: they are separators, so "..\\x" is "../x".
    name = text.replace("\\", "/")
    if _URL.match(name):
        return "a URL is not a file of the dataset", ()
    if name.startswith("/") or _DRIVE.match(name):
        return "absolute path is not allowed", ()
    parts = list(base)
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return "'..' in path is not allowed to climb above it", ()
            parts.pop()
        else:
            parts.append(part)
    return None, tuple(parts)


def clean_path(
    name: object,
    *,
    file: str,
    entry: str,
    base: PurePosixPath | str = "",
    scope: str = "dataset folder",
) -> PurePosixPath:
    """``name`` (relative to the folder ``base`` inside the root) as a clean path relative to the root.

    FormatError(``file``, ...) naming ``entry`` (e.g. ``image 7: file_name``) when the name is not
    text, is empty, holds a NUL byte, is absolute, a URL, or climbs out of the root with ``..``
    (also when written with backslashes or URL-encoded, as in ``%2e%2e/``). ``..`` that stays
    inside the root is resolved (``annotations/../images/a.jpg`` is ``images/a.jpg``).
    """
    if not isinstance(name, str) or not name.strip():
        raise FormatError(file, f"{entry} {name!r} is missing or empty")
    base_parts = PurePosixPath(base).parts if str(base) not in ("", ".") else ()
    decoded = unquote(name)
    if "\x00" in decoded:
        raise FormatError(file, f"{entry} {name!r} is refused: NUL byte in name")
    reason, parts = _escape_reason(name, base_parts)
    if reason is None and decoded != name:
        # The name is used as written, but one that would escape once URL-decoded is an attack,
        # not a file that happens to have "%2e" in its name.
        decoded_reason, _ = _escape_reason(decoded, base_parts)
        if decoded_reason is not None:
            reason = f"URL-encoded: {decoded_reason}"
    if reason is not None:
        raise FormatError(file, f"{entry} {name!r} points outside the {scope}: {reason}")
    if not parts:
        raise FormatError(file, f"{entry} {name!r} names the {scope} itself, not a file in it")
    return PurePosixPath(*parts)


def resolve_in(
    root: str | Path,
    name: object,
    *,
    file: str,
    entry: str,
    base: PurePosixPath | str = "",
    scope: str = "dataset folder",
) -> Path:
    """The file that ``name`` (relative to ``base``, a folder inside ``root``) stands for.

    The path is absolute and lies inside ``root`` after symbolic links are resolved; a name that
    leads outside (see :func:`clean_path`), or a link inside the folder that points outside it,
    raises FormatError. Whether the file exists is for the caller to check.
    """
    relative = clean_path(name, file=file, entry=entry, base=base, scope=scope)
    top = Path(root).resolve()
    target = top.joinpath(*relative.parts).resolve()
    if not target.is_relative_to(top):
        raise FormatError(
            file, f"{entry} {name!r} points outside the {scope}: a symbolic link in the path leads out of it"
        )
    return target


def safe_relative_path(name: object) -> str | None:
    """``name`` as a clean relative POSIX path, or None where :func:`clean_path` refuses it."""
    try:
        return str(clean_path(name, file="", entry="name"))
    except FormatError:
        return None


__all__ = ["clean_path", "resolve_in", "safe_relative_path"]
