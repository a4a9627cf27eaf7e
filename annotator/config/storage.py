"""File storage: a local media folder by default, an S3-compatible bucket when ANNOTATOR_S3_BUCKET is set."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .env import env_str


def storage_settings(*, media_root: Path) -> dict[str, Any]:
    bucket = env_str("ANNOTATOR_S3_BUCKET")
    if bucket:
        default: dict[str, Any] = {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": env_str("ANNOTATOR_S3_ENDPOINT_URL"),
                "region_name": env_str("ANNOTATOR_S3_REGION"),
                "access_key": env_str("ANNOTATOR_S3_ACCESS_KEY"),
                "secret_key": env_str("ANNOTATOR_S3_SECRET_KEY"),
                "default_acl": None,
                "querystring_auth": True,
                "file_overwrite": False,
            },
        }
    else:
        default = {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(media_root)},
        }
    return {
        "default": default,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    }
