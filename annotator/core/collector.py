"""Python's cyclic garbage collector, tuned for the web and worker processes."""
from __future__ import annotations

import gc

#: Young objects collected every 50,000 allocations instead of 700 (older ones as by default).
THRESHOLDS = (50_000, 20, 100)


def collector_tune() -> None:
    """Freeze what is alive after start-up out of collections and collect young objects less often.

    A save allocates tens of thousands of short-lived objects (coordinates), an import chunk
    hundreds of thousands (rows, geometries); with the default thresholds the collector ran many
    times per request and cost about a third of a save, half of building an import's rows
    (measured). The objects are freed by reference counting either way; the thresholds only
    decide how often the collector looks for cycles among them.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
