"""Top-level URL map: API, admin, server-rendered pages."""
from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from annotator.core.health import healthz, readyz

urlpatterns = [
    path("healthz", healthz),
    path("readyz", readyz),
    path("api/", include("annotator.api_urls")),
    path("admin/", admin.site.urls),
    path("", include("annotator.web.urls")),
]

# JSON under /api/, the usual pages elsewhere (core.error_views).
handler400 = "annotator.core.error_views.bad_request"
handler403 = "annotator.core.error_views.permission_denied"
handler404 = "annotator.core.error_views.page_not_found"
handler500 = "annotator.core.error_views.server_error"
