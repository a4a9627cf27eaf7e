"""The garbage-collector tuning shared by the web and the worker processes (core.collector)."""
from __future__ import annotations

import gc

from celery.signals import worker_init

from annotator import celery as celery_app
from annotator.core.collector import THRESHOLDS, collector_tune


def test_collector_tune_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        collector_tune()
        assert gc.get_threshold() == THRESHOLDS
        assert gc.get_freeze_count() > 0, "what was alive at start-up is out of the collections"
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_the_worker_tunes_before_it_forks_its_pool_processes() -> None:
    receivers = [ref() if callable(ref) else ref for _key, ref in worker_init.receivers]
    assert celery_app._collector_tune in receivers
