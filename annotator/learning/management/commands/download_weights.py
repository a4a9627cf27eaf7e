"""`manage.py download_weights`: fetch torchvision's COCO Mask R-CNN weights, or say how to install them by hand."""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Download the COCO-pretrained Mask R-CNN weights (torchvision) into the torch hub cache."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--arch", default="maskrcnn_resnet50_fpn", choices=["maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2"])
        parser.add_argument("--timeout", type=float, default=5.0, help="Seconds to wait for the download server to answer")

    def handle(self, *args: Any, **options: Any) -> None:
        import torch
        from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights, MaskRCNN_ResNet50_FPN_Weights

        weights = (MaskRCNN_ResNet50_FPN_Weights if options["arch"] == "maskrcnn_resnet50_fpn" else MaskRCNN_ResNet50_FPN_V2_Weights).DEFAULT
        filename = Path(urlparse(weights.url).path).name
        cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
        if settings.ANNOTATOR_COCO_CHECKPOINT:
            self.stdout.write(f"ANNOTATOR_COCO_CHECKPOINT is set to {settings.ANNOTATOR_COCO_CHECKPOINT}; workers load the COCO model from there.")
        if cached.is_file():
            self.stdout.write(self.style.SUCCESS(f"Already downloaded: {cached}"))
            return
        host = urlparse(weights.url).hostname or ""
        try:
            # Fail in seconds on an offline machine instead of waiting for the download to time out.
            socket.create_connection((host, 443), timeout=options["timeout"]).close()
        except OSError as exc:
            raise CommandError(self._by_hand(weights.url, cached, f"cannot reach {host} ({exc})")) from None
        self.stdout.write(f"Downloading {weights.url} …")
        try:
            weights.get_state_dict(progress=True, check_hash=True)
        except Exception as exc:  # noqa: BLE001 - network, disk and hash errors all end the same way
            raise CommandError(self._by_hand(weights.url, cached, f"the download failed ({type(exc).__name__}: {exc})")) from None
        self.stdout.write(self.style.SUCCESS(f"Saved {cached}; pre-annotation with model \"coco\" now works on this machine."))

    def _by_hand(self, url: str, cached: Path, reason: str) -> str:
        target = Path(settings.ANNOTATOR_MODEL_DIR) / cached.name
        return (
            f"Could not download the COCO weights: {reason}.\n"
            f"This machine seems to have no internet access. Install the file by hand:\n"
            f"  1. on a machine with internet: download {url}\n"
            f"  2. copy it here, for example to {target}\n"
            f"  3. set ANNOTATOR_COCO_CHECKPOINT={target} in the environment of the web and worker processes\n"
            f"     (or put the file in the torch hub cache: {cached})"
        )
