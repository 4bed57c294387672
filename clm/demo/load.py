"""Sending demo messages through the ingestion pipeline real data takes: prepare, then store.

Customers' stories are grouped whole into transactions of a few thousand messages, so that the
anonymous visits and the sign-up that identifies them resolve together, and every fact (customers,
identities, events, rollups, products, orders, outbox rows) is written by `clm.tracking.ingest.store`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from clm.db.engine import for_writing
from clm.tracking.ingest import Rejection, prepare, store

GROUP = 4000  # messages per transaction
SOURCE = "demo"


@dataclass
class LoadStats:
    customers: int = 0  # stories sent
    messages: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def write_group(session_factory: sessionmaker[Session], messages: list[dict], stats: LoadStats, *,
                currency: str = "VND", region: str = "VN") -> None:
    """Validate and store one group of messages in one transaction, each with its own time."""
    if not messages:
        return
    # The messages carry no sentAt, so their timestamps are taken as given; received_at is set to
    # the event's own time below, as if each had arrived when it happened.
    items, rejected = prepare(messages, received_at=messages[-1]["timestamp"], currency=currency, region=region)
    for item in items:
        item.received_at = item.timestamp
    with session_factory() as session, session.begin():
        for_writing(session)
        fresh = store(session, items, source=SOURCE)
    stats.messages += len(messages)
    stats.accepted += len(fresh)
    stats.duplicates += len(items) - len(fresh)
    stats.rejected.extend(rejected)


def load_stories(session_factory: sessionmaker[Session], stories: Iterable[list[dict]], *,
                 group: int = GROUP, currency: str = "VND", region: str = "VN",
                 on_progress: Callable[[LoadStats], None] | None = None) -> LoadStats:
    """Ingest every story (one customer's messages); a story never straddles two transactions."""
    stats = LoadStats()
    started = time.perf_counter()
    pending: list[dict] = []
    done = 0
    for story in stories:
        pending.extend(story)
        done += 1
        if len(pending) >= group:
            write_group(session_factory, pending, stats, currency=currency, region=region)
            stats.customers = done
            pending = []
            stats.seconds = time.perf_counter() - started
            if on_progress:
                on_progress(stats)
    write_group(session_factory, pending, stats, currency=currency, region=region)
    stats.customers = done
    stats.seconds = time.perf_counter() - started
    if on_progress:
        on_progress(stats)
    return stats
