"""Server-rendered pages: login, projects, labels, members, uploads, image lists, dashboard, editor shell."""
from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "annotator.web"
    label = "web"
