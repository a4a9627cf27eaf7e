"""The one Celery app; configuration comes from Django settings (CELERY_* names)."""
from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_init, worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")

app = Celery("annotator")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _share_cores_between_pool_processes(**_: object) -> None:
    """Give each pool process its share of the cores for torch's intra-op threads.

    Several pool processes each running torch with one thread per core oversubscribe the CPU;
    on 2 cores that made training 2x slower than one thread per process (measured).
    """
    import torch

    cores = os.cpu_count() or 1
    concurrency = int(os.environ.get("WORKER_CONCURRENCY") or app.conf.worker_concurrency or cores)
    torch.set_num_threads(max(1, cores // concurrency))


@worker_ready.connect
def _start_worker_heartbeat(sender: object = None, **_: object) -> None:
    """Sender: the worker's consumer, which knows the queues it listens to."""
    from annotator.jobs.workers import start_heartbeat

    task_consumer = getattr(sender, "task_consumer", None)
    queues = ",".join(sorted(q.name for q in task_consumer.queues)) if task_consumer is not None else ""
    start_heartbeat(queues=queues)


@worker_shutdown.connect
def _stop_worker_heartbeat(**_: object) -> None:
    from annotator.jobs.workers import stop_heartbeat

    stop_heartbeat()
