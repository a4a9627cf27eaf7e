"""Ground truth (honeypots): accepted images frozen as truth, mixed into annotators' queues and scored."""
from django.apps import AppConfig


class GroundTruthConfig(AppConfig):
    name = "annotator.groundtruth"
    label = "groundtruth"
