"""A project's accepted images as training samples for ml/, each read from storage only when asked for."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from annotator.images.models import Image
from ml.geometry import geometry_to_mask
from ml.models import TrainingSample

from .pixels import read_rgb_array
from .selectors import annotation_instances


class AcceptedSamples(Sequence[TrainingSample]):
    """Images and their accepted annotations as an ml training sequence, decoded and rasterised on access.

    A training run asks for one batch at a time, so it holds a batch of pixels instead of every
    accepted image with a full-size mask per object. Raises pixels.ImageUnreadable for a file that
    cannot be decoded.
    """

    def __init__(self, images: Sequence[Image]) -> None:
        self._images = list(images)

    def __len__(self) -> int:
        return len(self._images)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        image = self._images[index]
        objects = [
            (a["label"], geometry_to_mask(a["geometry"], width=image.width, height=image.height))
            for a in annotation_instances(image)
        ]
        return TrainingSample(image=read_rgb_array(image), objects=objects, key=image.pk)

    def image(self, index: int) -> Image:
        return self._images[index]
