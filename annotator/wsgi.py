"""WSGI entry point for gunicorn."""
from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from annotator.core.collector import collector_tune

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")
application = get_wsgi_application()

collector_tune()
