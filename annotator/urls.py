"""Top-level URL map: API, admin, server-rendered pages."""
from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from annotator.core.health import healthz

urlpatterns = [
    path("healthz", healthz),
    path("api/", include("annotator.api_urls")),
    path("admin/", admin.site.urls),
    path("", include("annotator.web.urls")),
]
