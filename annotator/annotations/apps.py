"""Annotations (object instances), their revisions, and model predictions kept apart."""
from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "annotator.annotations"
    label = "annotations"
