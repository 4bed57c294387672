"""Garbage-collector settings for long-running server processes.

CPython's cyclic collector runs after every 700 net container allocations and then walks the objects of
the generations it collects. A server process holds hundreds of thousands of long-lived objects (modules,
SQLAlchemy metadata, caches) and each ingestion request allocates tens of thousands of short-lived ones,
so with the defaults the collector kept re-walking the same old objects: measured at 10% of the ingestion
writer's CPU and more than half of the cost of unpickling a request's items. Freezing what exists after
start-up moves it out of the collector's sight, and a larger first threshold makes young collections rarer.
Reference cycles are still collected; memory is bounded by the thresholds.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def tune_for_server() -> None:
    """Call once, after start-up imports, in a process that serves requests for a long time."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, max(middle, 20), max(old, 20))
