"""The API documentation pages: Swagger UI and ReDoc from drf-spectacular-sidecar, under the site's CSP.

Swagger UI runs with the strict policy (its start-up script is a separate file, not inline).
ReDoc styles itself by inserting <style> elements at run time, so its page alone allows inline
styles; scripts stay 'self' only there too.
"""
from __future__ import annotations

from csp.decorators import csp_update
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView


class SwaggerView(SpectacularSwaggerSplitView):
    template_name = "api/swagger_ui.html"


@method_decorator(csp_update({"style-src": ["'unsafe-inline'"]}), name="get")
class RedocView(SpectacularRedocView):
    template_name = "api/redoc.html"
