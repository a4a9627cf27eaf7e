"""Stored images as RGB arrays for the models and the interactive assists, with a small per-process cache.

Decoding goes through Django storage (so it works on any storage backend) and OpenCV, which is
faster than Pillow on JPEG and releases the GIL, so a prefetch thread really overlaps with the
model. Stored files already have their EXIF orientation applied at upload, so the tag is ignored.
"""
from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image as PILImage

from annotator.images.models import Image


class ImageUnreadable(Exception):
    """The stored file of an image cannot be decoded (corrupt, truncated, missing)."""


def read_rgb_array(image: Image) -> np.ndarray:
    """The image's pixels as an (H, W, 3) uint8 RGB array; ImageUnreadable with the reason otherwise."""
    try:
        with image.file.open("rb") as handle:
            data = handle.read()
    except (OSError, ValueError) as exc:
        raise ImageUnreadable(f"cannot read the stored file ({exc})") from None
    return decode_rgb(data, expected=(image.height, image.width))


def readable_images(images: Sequence[Image], progress: Callable[[int], Any]) -> tuple[list[Image], list[dict[str, Any]]]:
    """The images whose files decode, and the others as {image, file, reason}; ``progress(done)`` after each.

    Jobs that learn from images (training, the learned shape) read every one first, so that a
    broken file is reported and left out before any work starts.
    """
    readable: list[Image] = []
    errors: list[dict[str, Any]] = []
    for index, image in enumerate(images):
        try:
            read_rgb_array(image)
            readable.append(image)
        except ImageUnreadable as exc:
            errors.append({"image": image.pk, "file": image.original_name, "reason": str(exc)})
        progress(index + 1)
    return readable, errors


def decode_rgb(data: bytes, *, expected: tuple[int, int] | None = None) -> np.ndarray:
    import cv2  # on first use: OpenCV costs 15 MB in every process that never decodes for a model

    buffer = np.frombuffer(data, np.uint8)
    # Decoded straight to RGB (OpenCV >= 4.10): no BGR copy to convert.
    decoded = cv2.imdecode(buffer, cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION) if buffer.size else None
    if decoded is not None:
        rgb = decoded
    else:
        # OpenCV reads neither GIF nor some TIFF variants that uploads accept; Pillow does.
        try:
            with PILImage.open(io.BytesIO(data)) as pil:
                rgb = np.asarray(pil.convert("RGB"))
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types for broken files
            raise ImageUnreadable(f"not a readable image ({type(exc).__name__}: {exc})") from None
    if expected is not None and rgb.shape[:2] != expected:
        raise ImageUnreadable(
            f"decoded size {rgb.shape[1]}x{rgb.shape[0]} differs from the recorded {expected[1]}x{expected[0]}"
        )
    return rgb


class _RgbCache:
    """A few decoded images per process: the assists are called many times on the image being edited."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, image: Image) -> np.ndarray:
        # The checksum is part of the key: a replaced file is a different image.
        key = (image.pk, image.checksum)
        with self._lock:
            cached = self._items.get(key)
            if cached is not None:
                self._items.move_to_end(key)
                return cached
        rgb = read_rgb_array(image)
        rgb.setflags(write=False)  # shared between requests: nobody may draw on it
        with self._lock:
            self._items[key] = rgb
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return rgb

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


# Eight 1-megapixel images are ~24 MB: enough for a few people editing on one web process.
rgb_cache = _RgbCache(size=8)
