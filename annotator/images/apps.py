"""Images: stored files, their workflow status and the annotation queue."""
from django.apps import AppConfig


class ImagesConfig(AppConfig):
    name = "annotator.images"
    label = "images"
