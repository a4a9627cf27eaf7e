"""Archives: one reader for uploads and imports; bombs and corrupt members are 400s, memory stays flat.

The zip bomb of the report (a 1 MB zip holding a 1 GB ``bomb.png``) is refused from its central
directory, before a byte of it is inflated; the peak memory of the request is measured
(tracemalloc), not assumed. A member with a bad CRC is a 400 naming the member, never a 500.
"""
from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

from annotator.core.errors import DomainError
from annotator.datasets.importers import import_images
from annotator.datasets.services import ImportOptions, dataset_import
from annotator.images.models import Image
from ml.formats import FormatError, safe_extract
from tests.factories import png_bytes, upload

GIB = 1 << 30
MIB = 1 << 20


def _raw_zip(members: list[tuple[str, int, bytes, int, int]]) -> bytes:
    """A zip written byte by byte: (name, method, stored data, crc, declared size) per member.

    Lets a test say what the central directory claims independently of what the data holds.
    """
    out = io.BytesIO()
    central = []
    for name, method, data, crc, size in members:
        offset = out.tell()
        encoded = name.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size, len(encoded), 0))
        out.write(encoded + data)
        central.append(
            struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(data), size,
                        len(encoded), 0, 0, 0, 0, 0, offset) + encoded
        )
    start = out.tell()
    out.write(b"".join(central))
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), out.tell() - start, start, 0))
    return out.getvalue()


def _zeros_deflated(size: int) -> tuple[bytes, int]:
    """Raw deflate data of ``size`` zero bytes (a multiple of 1 MiB) and its CRC, made in a blink.

    After a full flush the compressor starts afresh, so each MiB of zeros compresses to the same
    bytes: one block repeated is a valid stream of any length.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = b"\0" * MIB
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(size // MIB):
        crc = zlib.crc32(zeros, crc)
    return block * (size // MIB) + compressor.flush(), crc


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """The reported bomb: about 1 MB holding a 1 GiB bomb.png."""
    data, crc = _zeros_deflated(GIB)
    return _raw_zip([("bomb.png", zipfile.ZIP_DEFLATED, data, crc, GIB)])


@contextmanager
def _peak_memory() -> Iterator[list[int]]:
    """The peak of Python allocations (bytes) inside the block, appended to the yielded list."""
    result: list[int] = []
    tracemalloc.start()
    try:
        yield result
    finally:
        result.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


def _post(client, project_id: int, *files):  # type: ignore[no-untyped-def]
    return client.post(f"/api/projects/{project_id}/images/", {"files": list(files)}, format="multipart")


def test_the_reported_zip_bomb_upload_is_refused_without_inflating_it(world, bomb: bytes) -> None:
    assert len(bomb) < 1.1 * MIB
    manager = world.client("manager")
    with _peak_memory() as peak:
        response = _post(manager, world.project.pk, upload("photos.zip", bomb, "application/zip"))
    assert response.status_code == 400, response.content[:300]
    assert response.json()["detail"] == "photos.zip: member 'bomb.png': compression ratio above 200 (zip bomb?)"
    # Whatever the request allocated (multipart parsing, the reader), not the gigabyte.
    assert peak[0] < 32 * MIB, f"peak {peak[0] / MIB:.1f} MiB"
    assert not Image.objects.exists()


def test_the_images_import_format_refuses_the_bomb_the_same_way(world, bomb: bytes, tmp_path: Path) -> None:
    path = tmp_path / "photos.zip"
    path.write_bytes(bomb)
    with _peak_memory() as peak, pytest.raises(DomainError, match="member 'bomb.png': compression ratio above 200"):
        import_images(world.project, path, {}, None)
    assert peak[0] < 32 * MIB, f"peak {peak[0] / MIB:.1f} MiB"


def test_a_dataset_import_refuses_the_bomb_before_writing_anything(world, bomb: bytes, tmp_path: Path) -> None:
    path = tmp_path / "dataset.zip"
    path.write_bytes(bomb)
    with pytest.raises(DomainError, match="member 'bomb.png': compression ratio above 200"):
        dataset_import(project=world.project, fmt="coco", path=path, options=ImportOptions(), user=None)
    leftovers = [p for p in Path(settings.ANNOTATOR_TMP_DIR).rglob("bomb.png")]
    assert leftovers == []


def test_a_member_over_the_image_size_limit_is_refused_before_it_is_read(world, settings) -> None:
    settings.ANNOTATOR_MAX_IMAGE_BYTES = 2 * MIB
    data, crc = _zeros_deflated(3 * MIB)  # a ratio the bomb check lets through on its own
    settings.ANNOTATOR_MAX_ZIP_RATIO = 10_000
    archive = _raw_zip([("big.png", zipfile.ZIP_DEFLATED, data, crc, 3 * MIB)])
    response = _post(world.client("manager"), world.project.pk, upload("big.zip", archive, "application/zip"))
    assert response.status_code == 400
    assert response.json()["detail"] == (
        f"big.zip: member 'big.png': {3 * MIB:,} bytes is more than the limit of {2 * MIB:,} for one file"
    )
    single = _post(world.client("manager"), world.project.pk, upload("huge.png", b"\0" * (3 * MIB)))
    assert single.status_code == 400
    assert "huge.png: 3,145,728 bytes is more than the limit of 2,097,152 for one image file" == single.json()["detail"]


def _crc_broken_zip() -> bytes:
    good = png_bytes(8, 8, color=(1, 2, 3))
    broken = png_bytes(8, 8, color=(4, 5, 6))
    return _raw_zip([
        ("ok.png", zipfile.ZIP_STORED, good, zlib.crc32(good), len(good)),
        ("photos/broken.png", zipfile.ZIP_STORED, broken, zlib.crc32(broken) ^ 1, len(broken)),
    ])


def test_a_member_with_a_bad_crc_is_a_400_naming_it(world) -> None:
    response = _post(world.client("manager"), world.project.pk, upload("photos.zip", _crc_broken_zip(), "application/zip"))
    assert response.status_code == 400
    assert response.json()["detail"].startswith("photos.zip: member 'photos/broken.png': corrupt data (Bad CRC-32")
    assert not Image.objects.exists()


def test_a_bad_crc_in_a_dataset_zip_names_the_member_and_leaves_no_files(tmp_path: Path) -> None:
    path = tmp_path / "dataset.zip"
    path.write_bytes(_crc_broken_zip())
    dest = tmp_path / "out"
    with pytest.raises(FormatError, match=r"^dataset.zip: member 'photos/broken.png': corrupt data \(Bad CRC-32"):
        safe_extract(path, dest)
    assert [p for p in dest.rglob("*") if p.is_file()] == []


def test_a_header_that_lies_about_the_size_cannot_inflate_past_it(tmp_path: Path) -> None:
    data, crc = _zeros_deflated(64 * MIB)
    path = tmp_path / "liar.zip"
    path.write_bytes(_raw_zip([("small.bin", zipfile.ZIP_DEFLATED, data, crc, 1000)]))
    with _peak_memory() as peak, pytest.raises(FormatError, match="member 'small.bin': corrupt data"):
        safe_extract(path, tmp_path / "out")
    assert peak[0] < 16 * MIB
    assert not (tmp_path / "out" / "small.bin").exists()


def test_upload_limits_on_count_and_total_size_come_from_settings(world, settings) -> None:
    settings.ANNOTATOR_MAX_ZIP_FILES = 3
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w") as archive:
        for k in range(4):
            archive.writestr(f"{k}.png", png_bytes(4, 4, color=(k, k, k)))
    response = _post(world.client("manager"), world.project.pk, upload("many.zip", many.getvalue(), "application/zip"))
    assert response.status_code == 400 and response.json()["detail"] == "many.zip: more than 3 files in the archive"


def test_the_pixel_limit_is_applied_before_decoding(world, settings) -> None:
    """A 1-bit PNG of 12,000 x 12,000 is 18 KB on disk and 144 MB once decoded."""
    from tests.annotator.test_uploads import _png_bomb

    settings.ANNOTATOR_MAX_IMAGE_PIXELS = 100_000_000
    bomb_png = _png_bomb(12_000, 12_000)
    with _peak_memory() as peak:
        response = _post(world.client("manager"), world.project.pk, upload("wide.png", bomb_png))
    assert response.status_code == 400
    assert "wide.png" in response.json()["detail"]
    assert peak[0] < 32 * MIB, f"peak {peak[0] / MIB:.1f} MiB"


def test_a_dataset_image_over_the_size_limit_is_refused_before_it_is_read(world, settings, tmp_path: Path) -> None:
    import json

    image = png_bytes(16, 16)
    settings.ANNOTATOR_MAX_IMAGE_BYTES = len(image) - 1
    path = tmp_path / "dataset.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images/a.png", image)
        archive.writestr("annotations.json", json.dumps({
            "images": [{"id": 1, "file_name": "a.png", "width": 16, "height": 16}], "annotations": [],
            "categories": [{"id": 1, "name": "thing"}],
        }))
    with pytest.raises(DomainError, match=rf"^a.png: {len(image):,} bytes is more than the limit of {len(image) - 1:,} for one image file$"):
        dataset_import(project=world.project, fmt="coco", path=path, options=ImportOptions(), user=None)
