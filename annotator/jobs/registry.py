"""Which function runs each kind of job, and on which queue.

Each domain app declares its handlers in a `job_handlers.py` module; the jobs app imports those
modules at start-up (see apps.py), so the worker and the web process know the same handlers.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from .models import Job
    from .services import JobContext

Handler = Callable[["Job", "JobContext"], dict[str, Any] | None]

DEFAULT_QUEUE = "default"
ML_QUEUE = "ml"  # pre-annotation, training and evaluation: GPU machines can run only this queue


@dataclass(frozen=True)
class Registered:
    handler: Handler
    queue: str


_HANDLERS: dict[str, Registered] = {}


def job_handler(kind: str, *, queue: str = DEFAULT_QUEUE) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _HANDLERS[kind] = Registered(handler=handler, queue=queue)
        return handler

    return register


def handler_for(kind: str) -> Registered:
    try:
        return _HANDLERS[kind]
    except KeyError:
        raise LookupError(f"no handler registered for job kind {kind!r}") from None


def queue_name(queue: str) -> str:
    return f"{settings.ANNOTATOR_QUEUE_PREFIX}{queue}"
