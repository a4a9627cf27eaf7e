"""Quality control: ground-truth checks, agreement between annotators, active annotation time."""
from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "annotator.quality"
    label = "quality"
