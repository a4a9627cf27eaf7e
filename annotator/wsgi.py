"""WSGI entry point for gunicorn."""
from __future__ import annotations

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")
application = get_wsgi_application()

# A save allocates tens of thousands of short-lived objects (coordinates); with the default
# thresholds the cyclic GC ran many times per request and cost about a third of its time.
# Objects alive after start-up are frozen out of collections; young ones are collected less often.
gc.collect()
gc.freeze()
gc.set_threshold(50_000, 20, 100)
