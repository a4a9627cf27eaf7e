"""Cross-cutting pieces: the domain error type, access checks, shared API helpers."""
from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "annotator.core"
    label = "core"
