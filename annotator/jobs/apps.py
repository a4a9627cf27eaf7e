"""Background jobs: state, progress and cancellation of work done by Celery workers."""
from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class JobsConfig(AppConfig):
    name = "annotator.jobs"
    label = "jobs"

    def ready(self) -> None:
        autodiscover_modules("job_handlers")
