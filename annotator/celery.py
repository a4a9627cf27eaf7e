"""The one Celery app; configuration comes from Django settings (CELERY_* names)."""
from __future__ import annotations

import os

from celery import Celery, bootsteps
from celery.signals import celeryd_init, worker_init, worker_process_init, worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")

app = Celery("annotator")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class _BeatThread(bootsteps.StartStopStep):
    """`worker --beat-thread`: the beat scheduler as a thread of the worker's main process.

    `--beat` forks a process for it, which holds another copy of Django and the apps (about
    100 MB resident) to publish two messages an hour; a thread in the main process, which only
    waits on the broker, does the same work for nothing. The scheduler's code is celery's own
    (its threaded mode), with its schedule file.
    """

    label = "BeatThread"
    conditional = True

    def __init__(self, worker: object, beat_thread: bool = False, **kwargs: object) -> None:
        self.enabled = bool(beat_thread)
        super().__init__(worker, **kwargs)

    def create(self, worker: object) -> object:
        from celery.beat import EmbeddedService

        return EmbeddedService(app, thread=True, schedule_filename=getattr(worker, "schedule_filename", None),
                               scheduler_cls=getattr(worker, "scheduler", None))


def _add_beat_thread_option() -> None:
    from click import Option

    app.user_options["worker"].add(Option(["--beat-thread"], is_flag=True, default=False,
                                          help="Run the beat scheduler as a thread of the worker's main process."))
    app.steps["worker"].add(_BeatThread)


_add_beat_thread_option()


@celeryd_init.connect
def _remember_concurrency(options: dict[str, object] | None = None, **_: object) -> None:
    """The command line's ``--concurrency``, for the pool processes the worker forks
    (_share_cores_between_pool_processes): app.conf does not hold the command line's options."""
    concurrency = (options or {}).get("concurrency")
    if isinstance(concurrency, int) and concurrency > 0:
        os.environ.setdefault("WORKER_CONCURRENCY", str(concurrency))


@worker_process_init.connect
def _share_cores_between_pool_processes(**_: object) -> None:
    """Give each pool process its share of the cores for torch's intra-op threads.

    Several pool processes each running torch with one thread per core oversubscribe the CPU;
    on 2 cores that made training 2x slower than one thread per process (measured).
    torch is not imported here: it costs 500-600 MB per process, and only a process that runs a
    model job needs it (ml.models imports it then). OpenMP reads OMP_NUM_THREADS when torch's
    library loads, so setting it now gives that later import the share; an operator's own
    OMP_NUM_THREADS wins.
    """
    os.environ.setdefault("OMP_NUM_THREADS", str(pool_process_threads()))


def pool_process_threads(concurrency: int | None = None) -> int:
    """Torch threads of one pool process: its share of the cores among ``concurrency`` pool processes
    (default: WORKER_CONCURRENCY, else the app's worker_concurrency, else one process per core)."""
    from annotator.core.cpu import available_cores

    cores = available_cores()
    concurrency = concurrency or int(os.environ.get("WORKER_CONCURRENCY") or app.conf.worker_concurrency or cores)
    return max(1, cores // concurrency)


@worker_init.connect
def _collector_tune(**_: object) -> None:
    """The web's garbage-collector settings for the pool processes too (core.collector): set in the
    main process before it forks them, so that they share its frozen objects' pages instead of
    each one writing to all of them in a collection of its own (measured: 70 MB more PSS)."""
    from annotator.core.collector import collector_tune

    collector_tune()


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
