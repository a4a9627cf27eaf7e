"""The cores this process may run on: what the worker's pool processes share and pre-annotation plans around."""
from __future__ import annotations

import os


def available_cores() -> int:
    """The CPUs this process may be scheduled on (a container's or ``taskset``'s set, not the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
