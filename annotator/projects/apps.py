"""Projects, their label sets and who works on them in which role."""
from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "annotator.projects"
    label = "projects"
