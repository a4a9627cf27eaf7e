"""Datasets in and out: imports (images, COCO, VOC, LabelMe) and exports as versioned archives."""
from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "annotator.datasets"
    label = "datasets"
