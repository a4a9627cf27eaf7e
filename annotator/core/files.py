"""Files the server holds for a moment: the one archive reader (with the limits from settings) and
temporary folders under the data dir.

Every zip that arrives (an upload of images, a dataset import, later a project restore) is opened
with :func:`zip_open`, which is ``ml.formats.archive.SafeZip`` with the configured limits and its
FormatError turned into the DomainError (a 400 naming the member) that the API reports.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from annotator.core.errors import DomainError
from ml.formats.archive import SafeZip
from ml.formats.model import FormatError


def domain_error(exc: FormatError) -> DomainError:
    """A reader's FormatError as the API's 400, with the file and the problem as fields."""
    return DomainError(str(exc), extra={"file": exc.file, "problem": exc.problem})


def zip_open(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    name: str,
    max_file_bytes: int | None = None,
    max_files: int | None = None,
    max_total_bytes: int | None = None,
) -> SafeZip:
    """Open and check a zip with the limits from settings; DomainError naming the member otherwise.

    ``max_files`` / ``max_total_bytes`` replace the upload limits for archives that are big by
    nature (project backups, see settings.ANNOTATOR_MAX_BACKUP_*).
    """
    try:
        return SafeZip(
            source,
            name=name,
            max_files=max_files if max_files is not None else settings.ANNOTATOR_MAX_ZIP_FILES,
            max_total_bytes=max_total_bytes if max_total_bytes is not None else settings.ANNOTATOR_MAX_ZIP_BYTES,
            max_ratio=settings.ANNOTATOR_MAX_ZIP_RATIO,
            max_file_bytes=max_file_bytes,
        )
    except FormatError as exc:
        raise domain_error(exc) from None


def tmp_root() -> Path:
    folder = Path(settings.ANNOTATOR_TMP_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def temp_folder(prefix: str) -> Iterator[Path]:
    """A fresh folder under the data dir's ``tmp/``, removed when the block ends (also on errors).

    A process killed inside the block leaves it behind; ``sweep_orphans`` removes it once it is
    older than ``ANNOTATOR_SWEEP_AFTER_HOURS``.
    """
    with tempfile.TemporaryDirectory(prefix=f"{prefix}-", dir=tmp_root()) as folder:
        yield Path(folder)
