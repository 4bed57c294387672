"""Journey fixtures: customers, a frozen clock, and a worker that runs every due step (as `clm worker` does)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
import time_machine

from clm.customers.models import Customer
from clm.jobs.runner import run_due
from clm.journeys import service
from clm.journeys.models import JourneyRun

NOW = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)  # Monday 09:00 in Ho Chi Minh City


def graph(*nodes: dict, trigger: dict | None = None, start: str | None = None, **extra) -> dict:
    """A definition from nodes (the first is the start); an API trigger unless told."""
    return {"trigger": trigger or {"type": "api"}, "start": start or nodes[0]["id"], "nodes": list(nodes), **extra}


def trait(node_id: str, key: str, value, nxt: str = "end") -> dict:
    return {"id": node_id, "type": "update_trait", "trait": key, "value": value, "next": nxt}


def wait(node_id: str, nxt: str, **duration) -> dict:
    return {"id": node_id, "type": "wait", "duration": duration, "next": nxt}


END = {"id": "end", "type": "exit"}


class Clock:
    """The test's `now`: moves only when told (the jobs, the steps and the consumers all read it)."""

    def __init__(self, traveller):
        self.traveller = traveller
        self.now = NOW

    def advance(self, **delta) -> datetime:
        from datetime import timedelta

        self.now = self.now + timedelta(**delta)
        self.traveller.move_to(self.now)
        return self.now


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield Clock(traveller)


@pytest.fixture
def people(db):
    def make(n: int = 1, **fields) -> list[int]:
        ids = []
        for k in range(n):
            c = Customer(**{"full_name": f"Khách {k}", "traits": {}, "search_text": "", **fields})
            db.add(c)
            db.flush()
            ids.append(c.id)
        db.commit()
        return ids

    return make


@pytest.fixture
def drain(session_factory, settings):
    """Run every step due now (and what they queue that is due now); returns how many ran."""
    from clm.jobs.registry import build_registry

    registry = build_registry(settings)

    def run() -> int:
        total = 0
        while ran := run_due(session_factory, registry, "test-worker"):
            total += ran
        return total

    return run


@pytest.fixture
def live(db):
    """Save and activate a journey from a definition."""
    def make(definition: dict, name: str = "Chào mừng") -> int:
        journey = service.save_journey(db, name=name, definition=definition)
        service.activate(db, journey.id)
        db.commit()
        return journey.id

    return make


def run_of(db, journey_id: int, customer_id: int) -> JourneyRun:
    db.expire_all()
    return db.scalars(sa.select(JourneyRun).where(JourneyRun.journey_id == journey_id,
                                                  JourneyRun.customer_id == customer_id)
                      .order_by(JourneyRun.id.desc())).first()


def traits_of(db, customer_id: int) -> dict:
    db.expire_all()
    return db.get(Customer, customer_id).traits
