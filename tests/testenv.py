"""Pytest plugin (loaded with -p, before Django reads settings): isolated data dir and queue names."""
from __future__ import annotations

import os
import tempfile
import uuid

# Web, worker and test processes share this folder (media, SQLite test database, file broker).
os.environ.setdefault("ANNOTATOR_DATA_DIR", tempfile.mkdtemp(prefix="annotator-test-"))
# Our queues, not those of a `make run` worker that may share the same Redis.
os.environ.setdefault("ANNOTATOR_QUEUE_PREFIX", f"test-{uuid.uuid4().hex[:8]}-")
os.environ.setdefault("ANNOTATOR_TEST_DATABASE", f"test_annotator_{uuid.uuid4().hex[:8]}")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("ANNOTATOR_HTTPS", "0")
