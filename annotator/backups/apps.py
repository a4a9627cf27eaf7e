"""Project backups: full-fidelity archives, restores (also as duplicates), scheduled backups."""
from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "annotator.backups"
    label = "backups"
