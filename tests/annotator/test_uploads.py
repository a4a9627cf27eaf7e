"""Uploading images over the API: many files, zips, duplicates, orientation, and every bad upload.

A bad upload is a 400 naming the file and the problem; the batch is all or nothing (no Image row
and no stored file left behind) and nothing is ever written outside the media folder.
"""
from __future__ import annotations

import io
import struct
import uuid
import zipfile
import zlib
from pathlib import Path

import pytest
from django.conf import settings
from PIL import Image as PILImage

from annotator.images.models import Image
from tests.factories import png_bytes, upload


def _post(client, project_id: int, *files):
    return client.post(f"/api/projects/{project_id}/images/", {"files": list(files)}, format="multipart")


def _media_files() -> set[Path]:
    root = Path(settings.MEDIA_ROOT)
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    return buffer.getvalue()


def _jpeg(width: int, height: int, orientation: int | None = None) -> bytes:
    image = PILImage.new("RGB", (width, height), (10, 120, 200))
    # A marker in the top-left corner so that the rotation can be checked on the pixels too.
    image.paste((255, 0, 0), (0, 0, 4, 4))
    buffer = io.BytesIO()
    if orientation is None:
        image.save(buffer, format="JPEG", quality=90)
    else:
        exif = PILImage.Exif()
        exif[0x0112] = orientation
        image.save(buffer, format="JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def _png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height zeros: tiny on disk, huge once decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture
def manager(world):
    return world.client("manager")


def test_several_files_are_added_with_sizes_files_and_thumbnails(world, manager) -> None:
    response = _post(
        manager, world.project.pk,
        upload("a.png", png_bytes(64, 48, color=(1, 1, 1))),
        upload("b.png", png_bytes(30, 70, color=(2, 2, 2))),
        upload("c.jpg", _jpeg(50, 40), content_type="image/jpeg"),
    )
    assert response.status_code == 201, response.data
    assert response.data["created_count"] == 3 and response.data["duplicates"] == []
    images = {image.original_name: image for image in Image.objects.filter(project=world.project)}
    assert (images["a.png"].width, images["a.png"].height) == (64, 48)
    assert (images["b.png"].width, images["b.png"].height) == (30, 70)
    for image in images.values():
        assert image.file.storage.exists(image.file.name)
        assert image.thumbnail and image.thumbnail.storage.exists(image.thumbnail.name)
    thumb = manager.get(f"/api/images/{images['b.png'].pk}/thumbnail/")
    assert thumb.status_code == 200
    assert PILImage.open(io.BytesIO(b"".join(thumb.streaming_content))).format == "JPEG"


def test_a_zip_of_images_is_unpacked_skipping_non_images_and_mac_metadata(world, manager) -> None:
    archive = _zip({
        "set/one.png": png_bytes(10, 10, color=(5, 5, 5)),
        "set/deeper/two.jpg": _jpeg(12, 8),
        "set/readme.txt": b"not an image",
        "__MACOSX/set/._one.png": b"resource fork",
    })
    response = _post(manager, world.project.pk, upload("batch.zip", archive, "application/zip"))
    assert response.status_code == 201, response.data
    assert response.data["created_count"] == 2
    names = set(Image.objects.filter(project=world.project).values_list("original_name", flat=True))
    assert names == {"batch.zip/set/one.png", "batch.zip/set/deeper/two.jpg"}


def test_duplicates_are_detected_in_a_batch_and_against_the_project(world, manager) -> None:
    data = png_bytes(20, 20, color=(9, 9, 9))
    first = _post(manager, world.project.pk, upload("x.png", data), upload("x-copy.png", data))
    assert first.status_code == 201
    assert first.data["created_count"] == 1 and first.data["duplicates"] == ["x-copy.png"]
    again = _post(manager, world.project.pk, upload("x-again.png", data))
    assert again.status_code == 201
    assert again.data["created_count"] == 0 and again.data["duplicates"] == ["x-again.png"]
    assert Image.objects.filter(project=world.project).count() == 1


def test_the_same_image_may_live_in_two_projects(world, manager) -> None:
    from tests.factories import ProjectFactory

    other = ProjectFactory()
    other.memberships.create(user=world.users["manager"], role="manager")
    data = png_bytes(20, 20, color=(7, 7, 7))
    assert _post(manager, world.project.pk, upload("x.png", data)).data["created_count"] == 1
    assert _post(manager, other.pk, upload("x.png", data)).data["created_count"] == 1


def test_exif_orientation_is_applied_to_stored_pixels_and_size(world, manager) -> None:
    # Orientation 6: the camera was turned; viewers rotate the 40x20 pixels to a 20x40 picture.
    response = _post(manager, world.project.pk, upload("turned.jpg", _jpeg(40, 20, orientation=6), "image/jpeg"))
    assert response.status_code == 201, response.data
    image = Image.objects.get(project=world.project)
    assert (image.width, image.height) == (20, 40)
    with image.file.open("rb") as handle, PILImage.open(handle) as stored:
        assert stored.size == (20, 40)
        assert stored.getexif().get(0x0112, 1) == 1, "no orientation left for viewers to apply twice"
        red, green, _ = stored.convert("RGB").getpixel((18, 1))  # the marker moved to the top-right corner
        assert red > 200 and green < 60


def test_an_upright_jpeg_is_stored_byte_for_byte(world, manager) -> None:
    # Re-encoding a JPEG loses quality; one that needs no rotation must be kept as uploaded.
    data = _jpeg(50, 40)
    assert _post(manager, world.project.pk, upload("upright.jpg", data, "image/jpeg")).status_code == 201
    image = Image.objects.get(project=world.project)
    with image.file.open("rb") as handle:
        assert handle.read() == data


def _assert_refused(response, *fragments: str) -> None:
    assert response.status_code == 400, getattr(response, "data", response)
    for fragment in fragments:
        assert fragment in response.data["detail"], response.data["detail"]


BAD_FILES = {
    "corrupt image": ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20, ("broken.png",)),
    "non-image file": ("notes.png", b"just some text, not pixels\n" * 10, ("notes.png", "not an image")),
    "truncated jpeg": ("cut.jpg", _jpeg(200, 150)[:700], ("cut.jpg", "corrupt or truncated")),
    "decompression bomb": ("bomb.png", _png_bomb(20000, 20000), ("bomb.png", "decompression bomb")),
    "text file": ("notes.txt", b"hello", ("notes.txt", "not an image")),
    "fake zip": ("photos.zip", b"PK but not really", ("photos.zip", "not a valid zip")),
}


@pytest.mark.parametrize("case", BAD_FILES.keys())
def test_a_bad_file_refuses_the_whole_batch_and_creates_nothing(world, manager, case: str) -> None:
    name, data, fragments = BAD_FILES[case]
    files_before = _media_files()
    response = _post(
        manager, world.project.pk,
        upload("good.png", png_bytes(16, 16, color=(3, 4, 5))),
        upload(name, data, "application/octet-stream"),
    )
    _assert_refused(response, *fragments)
    assert Image.objects.count() == 0
    assert _media_files() == files_before


def test_an_image_over_the_configured_pixel_limit_is_refused(world, manager, settings) -> None:
    settings.ANNOTATOR_MAX_IMAGE_PIXELS = 10_000
    response = _post(manager, world.project.pk, upload("big.png", png_bytes(120, 100)))
    _assert_refused(response, "big.png", "larger than the limit of 10,000 pixels")
    assert Image.objects.count() == 0


@pytest.mark.parametrize("prefix", ["../", "../../", "sub/../../", "/", "C:/"])
def test_a_zip_with_paths_leaving_the_archive_is_refused_and_writes_nothing(world, manager, prefix: str) -> None:
    evil = f"evil-{uuid.uuid4().hex}.png"
    archive = _zip({"fine.png": png_bytes(8, 8, color=(1, 2, 3)), prefix + evil: png_bytes(8, 8, color=(3, 2, 1))})
    media = Path(settings.MEDIA_ROOT)
    files_before = _media_files()
    response = _post(manager, world.project.pk, upload("evil.zip", archive, "application/zip"))
    _assert_refused(response, "evil.zip", "points outside the archive")
    assert Image.objects.count() == 0
    assert _media_files() == files_before
    # Nowhere a naive extraction could have put it: the data dir tree, its parent, the filesystem root.
    data_dir = Path(settings.DATA_DIR)
    assert not list(data_dir.rglob(evil))
    for folder in {media, media.parent, data_dir.parent, Path("/"), Path("/tmp")}:
        assert not (folder / evil).exists()


def test_upload_without_files_is_refused(world, manager) -> None:
    response = manager.post(f"/api/projects/{world.project.pk}/images/", {}, format="multipart")
    _assert_refused(response, "files")


def test_a_zip_without_images_is_refused(world, manager) -> None:
    response = _post(manager, world.project.pk, upload("docs.zip", _zip({"a.txt": b"x"}), "application/zip"))
    _assert_refused(response, "No image files found")


def test_annotator_cannot_upload(world) -> None:
    response = _post(world.client("annotator"), world.project.pk, upload("a.png", png_bytes()))
    assert response.status_code == 403
    assert Image.objects.count() == 0
