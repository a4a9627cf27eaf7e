"""Decoding uploaded image bytes safely: bomb guard, EXIF orientation, thumbnails."""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from django.conf import settings
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from annotator.core.errors import DomainError

ALLOWED_FORMATS = {"JPEG", "PNG", "BMP", "TIFF", "WEBP", "GIF"}
_ORIENTATION = 0x0112  # the EXIF Orientation tag
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


@dataclass(frozen=True)
class DecodedImage:
    """An uploaded image, checked and ready to store (content already orientation-corrected)."""

    content: bytes
    suffix: str
    width: int
    height: int
    checksum: str
    thumbnail: bytes


def image_size_check(name: str, size: int | None) -> None:
    """Refuse an image file over ANNOTATOR_MAX_IMAGE_MB before it is read: decoding needs it in memory."""
    limit = settings.ANNOTATOR_MAX_IMAGE_BYTES
    if size is not None and size > limit:
        raise DomainError(f"{name}: {size:,} bytes is more than the limit of {limit:,} for one image file")


def image_decode(data: bytes, *, name: str) -> DecodedImage:
    """Check that `data` is a usable image and return what to store; DomainError naming the file otherwise."""
    max_pixels = settings.ANNOTATOR_MAX_IMAGE_PIXELS
    if PILImage.MAX_IMAGE_PIXELS is not None and PILImage.MAX_IMAGE_PIXELS < max_pixels:
        # Pillow's own guard (process-wide) must not refuse what our limit allows; it is only ever
        # raised here, never lowered, so other code reading images is not affected by our setting.
        PILImage.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(io.BytesIO(data)) as probe:
                fmt = probe.format
                if fmt not in ALLOWED_FORMATS:
                    raise DomainError(f"{name}: {fmt} images are not supported (use JPEG, PNG, TIFF, BMP or WebP)")
                if probe.width * probe.height > max_pixels:
                    raise DomainError(
                        f"{name}: {probe.width}x{probe.height} is larger than the limit of {max_pixels:,} pixels"
                    )
                probe.load()
                # exif_transpose returns a copy even when there is nothing to do; only a real
                # orientation tag may cause a re-encode (a lossy one for JPEG).
                turned = probe.getexif().get(_ORIENTATION, 1) not in (None, 1)
                oriented = ImageOps.exif_transpose(probe) if turned else probe
                # While `probe` is open: closing it frees its pixels (and `oriented` may be `probe`).
                thumbnail = _thumbnail(oriented)
                width, height = oriented.size
                rotated = _encode(oriented, fmt) if turned else None
    except DomainError:
        raise
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
        raise DomainError(f"{name}: refused as a decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise DomainError(f"{name}: not an image file (or a format we cannot read)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DomainError(f"{name}: the image file is corrupt or truncated ({exc})") from None

    checksum = hashlib.sha256(data).hexdigest()
    suffix = "." + (fmt or "png").lower().replace("jpeg", "jpg")
    content, suffix = rotated if rotated is not None else (data, suffix)
    return DecodedImage(
        content=content,
        suffix=suffix,
        width=width,
        height=height,
        checksum=checksum,
        thumbnail=thumbnail,
    )


def _encode(image: PILImage.Image, fmt: str | None) -> tuple[bytes, str]:
    """The orientation-corrected pixels as file bytes (the way people see them) and their suffix."""
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.save(buffer, format="JPEG", quality=95, subsampling=0)
        return buffer.getvalue(), ".jpg"
    image.save(buffer, format="PNG")
    return buffer.getvalue(), ".png"


def _thumbnail(image: PILImage.Image) -> bytes:
    size = settings.ANNOTATOR_THUMBNAIL_SIZE
    thumb = image.copy()
    thumb.thumbnail((size, size))
    if thumb.mode not in ("RGB", "L"):
        thumb = thumb.convert("RGB")
    buffer = io.BytesIO()
    thumb.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def read_rgb(file) -> PILImage.Image:  # type: ignore[no-untyped-def]
    """Open a stored image file as RGB (for models and assists)."""
    with PILImage.open(file) as image:
        return image.convert("RGB")
