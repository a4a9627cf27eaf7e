"""Model-assisted annotation: model versions, pre-annotation, training, evaluation, interactive assists."""
from django.apps import AppConfig


class LearningConfig(AppConfig):
    name = "annotator.learning"
    label = "learning"
