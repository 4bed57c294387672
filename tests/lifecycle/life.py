"""A small shop whose facts go through the real ingestion pipeline and whose stages move through the
real lifecycle consumers, with time explicit: every call takes a day number relative to `T0`."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.models import Customer, Identity
from clm.lifecycle.consumers import EventsConsumer, OutboxConsumer
from clm.lifecycle.models import CustomerStats
from clm.lifecycle.rules import RuleSet, load_rules
from clm.lifecycle.service import StageChange, stage_history, sweep
from clm.tracking.ingest import ingest

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
_ids = itertools.count(1)  # message and order ids unique across Life instances in one test


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


class Life:
    def __init__(self, db: Session, rules: RuleSet | None = None):
        self.db = db
        self.rules = rules or load_rules()
        self._seq = _ids
        self.build_consumers()

    def build_consumers(self) -> None:
        self.outbox = OutboxConsumer(lambda: self.rules)
        self.events = EventsConsumer(lambda: self.rules)

    # facts -------------------------------------------------------------------------------------------
    def send(self, messages: list[dict[str, Any]], at: float) -> None:
        for m in messages:
            m.setdefault("messageId", f"m-{next(self._seq)}")
            m.setdefault("timestamp", day(at).isoformat())
        result = ingest(self.db, messages, received_at=day(at))
        assert not result.rejected, result.rejected
        self.db.commit()

    def identify(self, user: str, at: float = 0, **traits: Any) -> None:
        self.send([{"type": "identify", "userId": user, "traits": traits}], at)

    def track(self, user: str, event: str, at: float = 0, **properties: Any) -> None:
        self.send([{"type": "track", "userId": user, "event": event, "properties": properties}], at)

    def order(self, user: str, at: float, total: int = 200_000, order_id: str | None = None) -> str:
        order_id = order_id or f"SO-{next(self._seq)}"
        self.track(user, "Order Completed", at, order_id=order_id, total=total, currency="VND")
        return order_id

    def refund(self, user: str, order_id: str, at: float) -> None:
        self.track(user, "Order Refunded", at, order_id=order_id)

    # reactions ---------------------------------------------------------------------------------------
    def react(self, at: float) -> int:
        """Run the lifecycle consumers as the worker would at day `at`, until they have nothing left."""
        done = 0
        while handled := self.outbox(self.db, day(at)) + self.events(self.db, day(at)):
            done += handled
            self.db.commit()
        self.db.commit()
        return done

    def sweep(self, at: float) -> int:
        moved = sweep(self.db, day(at), self.rules)
        self.db.commit()
        return moved

    # reading -----------------------------------------------------------------------------------------
    def id(self, user: str) -> int:
        cid = self.db.scalar(sa.select(Identity.customer_id).where(Identity.kind == "user_id",
                                                                   Identity.value == user))
        merged_into = self.db.scalar(sa.select(Customer.merged_into_id).where(Customer.id == cid))
        return merged_into or cid

    def stage(self, user: str) -> str | None:
        return self.db.scalar(sa.select(Customer.lifecycle_stage).where(Customer.id == self.id(user)))

    def history(self, user: str) -> list[StageChange]:
        return stage_history(self.db, self.id(user))

    def moves(self, user: str) -> list[tuple[str | None, str, str]]:
        return [(c.from_stage, c.to_stage, c.rule) for c in self.history(user)]

    def stats(self, user: str) -> CustomerStats:
        self.db.expire_all()
        return self.db.get(CustomerStats, self.id(user))
