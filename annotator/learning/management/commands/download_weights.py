"""`manage.py download_weights`: fetch the COCO Mask R-CNN or a SAM checkpoint, or say how to install it by hand."""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Download the COCO-pretrained Mask R-CNN weights (torchvision) into the torch hub cache, or with "
        "--sam a Segment Anything checkpoint (SAM 1 or SAM 2.1) into ANNOTATOR_MODEL_DIR/sam."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        from ml.sam import PUBLISHED

        parser.add_argument("--arch", default="maskrcnn_resnet50_fpn", choices=["maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2"])
        parser.add_argument("--sam", choices=list(PUBLISHED), help="Download this SAM checkpoint instead of the COCO model")
        parser.add_argument("--url", help="With --sam: fetch from this address (a mirror) instead of the official one")
        parser.add_argument("--timeout", type=float, default=5.0, help="Seconds to wait for the download server to answer")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["sam"]:
            return self._sam(options["sam"], url=options["url"], timeout=options["timeout"])
        if options["url"]:
            raise CommandError("--url only applies with --sam")
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

    def _sam(self, variant: str, *, url: str | None, timeout: float) -> None:
        from ml.sam import PUBLISHED, DownloadFailed, download_checkpoint, verify_checkpoint

        published = PUBLISHED[variant]
        directory = Path(settings.ANNOTATOR_MODEL_DIR) / "sam"
        target = directory / published.filename
        if target.is_file():
            try:
                verify_checkpoint(target, variant)
            except DownloadFailed as exc:
                raise CommandError(f"{target} is there but is not the published {variant} file: {exc}. Delete it and run this again.") from None
            self.stdout.write(self.style.SUCCESS(f"Already downloaded: {target}"))
        else:
            self.stdout.write(f"Downloading {url or published.url} (about {published.about_mb} MB) …")
            try:
                download_checkpoint(variant, directory, url=url, timeout=timeout, progress=True)
            except DownloadFailed as exc:
                raise CommandError(
                    f"Could not download SAM {variant}: {exc}.\n"
                    f"If this machine has no internet access, install the file by hand:\n"
                    f"  1. on a machine with internet: download {published.url} (about {published.about_mb} MB)\n"
                    f"  2. copy it here to {target}\n"
                    f"  3. set ANNOTATOR_SAM_CHECKPOINT={target} in the environment of the web processes\n"
                    f"  4. check it with: manage.py download_weights --sam {variant}"
                ) from None
            self.stdout.write(self.style.SUCCESS(f"Saved {target} (checked)."))
        if settings.ANNOTATOR_SAM_CHECKPOINT != str(target):
            self.stdout.write(f"To use it, set ANNOTATOR_SAM_CHECKPOINT={target} in the environment of the web processes.")
