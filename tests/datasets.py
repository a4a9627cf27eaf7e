"""Where the shared sample datasets are: `shared/datasets` beside the checkout (as in CI).

ANNOTATOR_SAMPLE_DATASETS overrides it. The tests that use them fail (not skip) when they are
missing, so a CI run without them cannot pass silently.
"""
from __future__ import annotations

import os
from pathlib import Path

_CANDIDATES = [
    Path(os.environ["ANNOTATOR_SAMPLE_DATASETS"]) if os.environ.get("ANNOTATOR_SAMPLE_DATASETS") else None,
    Path(__file__).resolve().parents[2] / "shared" / "datasets",
    Path("/work/shared/datasets"),
]
DATASETS = next((path for path in _CANDIDATES if path is not None and path.is_dir()), _CANDIDATES[1])
FRUITS = DATASETS / "fruits_nuts"
