"""The numbers behind the overview: aggregates over customers and orders, cached briefly per app.

Nothing here scans raw events. Stage counts and the funnel come from clm.lifecycle.metrics when it is
installed (imported lazily, so the dashboard also runs without it) and from `customers.lifecycle_stage`
otherwise. Weekly series are one range-filtered aggregate each (indexes on customers.created_at and
orders.placed_at), bucketed by weeks starting Monday in the business time zone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.commerce.models import Order
from clm.customers.models import Customer
from clm.lib.clock import utcnow

log = logging.getLogger("clm.web")
STAGES = ("awareness", "consideration", "conversion", "retention", "loyalty", "at_risk", "churned")
# The path a customer walks forward; at_risk and churned are side exits, not funnel steps.
FUNNEL_PATH = STAGES[:5]
WEEKS = 12


class TTLCache:
    """A tiny in-process cache: values are fresh for `ttl` seconds. One per app, so tests never share one.

    With a `session_factory`, a stale value is served at once while a background thread recomputes it
    with its own session (stale-while-revalidate): after the first computation no page waits for an
    aggregate over the whole customer base.
    """

    def __init__(self, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic, session_factory=None):
        self.ttl, self.clock, self.session_factory = ttl, clock, session_factory
        self._values: dict[Any, tuple[float, Any]] = {}
        self._refreshing: set[Any] = set()
        self._lock = threading.Lock()

    def get_or_compute(self, key: Any, compute: Callable[[Session], Any], session: Session) -> Any:
        with self._lock:
            hit = self._values.get(key)
            if hit is not None and self.clock() - hit[0] < self.ttl:
                return hit[1]
            if hit is not None and self.session_factory is not None:
                if key not in self._refreshing:
                    self._refreshing.add(key)
                    threading.Thread(target=self._refresh, args=(key, compute), daemon=True).start()
                return hit[1]
        value = compute(session)
        with self._lock:
            self._values[key] = (self.clock(), value)
        return value

    def peek(self, key: Any) -> Any:
        """The value held for `key`, fresh or stale, or None; never computes."""
        with self._lock:
            hit = self._values.get(key)
        return None if hit is None else hit[1]

    def claim(self, key: Any) -> bool:
        """Mark `key` as being computed; False when someone already is (then leave it to them)."""
        with self._lock:
            if key in self._refreshing or self.session_factory is None:
                return False
            self._refreshing.add(key)
            return True

    def compute_now(self, key: Any, compute: Callable[[Session], Any]) -> None:
        """Compute a claimed `key` in this thread with a session of its own, then release the claim."""
        self._refresh(key, compute)

    def compute_in_background(self, key: Any, compute: Callable[[Session], Any]) -> None:
        """Start computing `key` with a session of its own, unless that is already under way."""
        if self.claim(key):
            threading.Thread(target=self._refresh, args=(key, compute), daemon=True).start()

    def _refresh(self, key: Any, compute: Callable[[Session], Any]) -> None:
        try:
            with self.session_factory() as session:
                value = compute(session)
            with self._lock:
                self._values[key] = (self.clock(), value)
        except Exception:  # the stale value stays; the next request tries again
            log.exception("refreshing dashboard figures failed")
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


def _lifecycle_metrics():
    try:
        from clm.lifecycle import metrics
    except ImportError:
        return None
    return metrics


def stage_counts(session: Session) -> dict[str, int]:
    """Live customers per stage (every known stage present, zero when empty); None-stage under ''."""
    metrics = _lifecycle_metrics()
    if metrics is not None and hasattr(metrics, "stage_counts"):
        counts = dict(metrics.stage_counts(session))
    else:
        rows = session.execute(
            sa.select(Customer.lifecycle_stage, sa.func.count())
            .where(Customer.merged_into_id.is_(None)).group_by(Customer.lifecycle_stage)
        )
        counts = {stage or "": n for stage, n in rows}
    return {**{s: 0 for s in STAGES}, **counts}


def funnel(session: Session, counts: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Funnel steps: [{stage, entered, reached_next, rate}] along the forward path.

    clm.lifecycle's funnel reads the whole stage history, so the overview loads it separately
    (/overview/funnel, by HTMX) and it never holds the page up."""
    metrics = _lifecycle_metrics()
    if metrics is not None and hasattr(metrics, "funnel"):
        steps = [dict(step) for step in metrics.funnel(session)]
        for step in steps:
            step.setdefault("rate", step.get("conversion"))
        return steps
    # Without stage history: a customer now at a later stage has passed every earlier one.
    counts = counts if counts is not None else stage_counts(session)
    entered = [sum(counts.get(s, 0) for s in FUNNEL_PATH[i:]) for i in range(len(FUNNEL_PATH))]
    steps = []
    for i, stage in enumerate(FUNNEL_PATH):
        nxt = entered[i + 1] if i + 1 < len(entered) else None
        rate = (nxt / entered[i]) if nxt is not None and entered[i] else None
        steps.append({"stage": stage, "entered": entered[i], "reached_next": nxt, "rate": rate})
    return steps


def week_starts(now: datetime, tz: str, weeks: int = WEEKS) -> list[datetime]:
    """The starts (aware, UTC) of the last `weeks` weeks, Monday 00:00 local, oldest first, plus the end."""
    zone = ZoneInfo(tz)
    today: date = now.astimezone(zone).date()
    monday = today - timedelta(days=today.weekday())
    starts = [datetime.combine(monday - timedelta(weeks=k), datetime.min.time(), zone)
              for k in range(weeks - 1, -1, -1)]
    starts.append(datetime.combine(monday + timedelta(weeks=1), datetime.min.time(), zone))
    return [s.astimezone(ZoneInfo("UTC")) for s in starts]


def _bucketed(column, bounds: list[datetime], value) -> list:
    """One SUM(CASE ...) per week: a single pass over the rows inside the whole range."""
    return [sa.func.coalesce(sa.func.sum(sa.case((sa.and_(column >= lo, column < hi), value), else_=0)), 0)
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


def weekly_new_customers(session: Session, bounds: list[datetime]) -> list[int]:
    row = session.execute(
        sa.select(*_bucketed(Customer.created_at, bounds, 1))
        .where(Customer.created_at >= bounds[0], Customer.created_at < bounds[-1], Customer.merged_into_id.is_(None))
    ).one()
    return [int(v) for v in row]


def weekly_revenue(session: Session, bounds: list[datetime]) -> dict[str, tuple[list[int], list[int]]]:
    """Per currency: (net revenue per week in minor units, orders per week)."""
    net = Order.total - Order.refunded
    rows = session.execute(
        sa.select(Order.currency, *_bucketed(Order.placed_at, bounds, net), *_bucketed(Order.placed_at, bounds, 1))
        .where(Order.placed_at >= bounds[0], Order.placed_at < bounds[-1]).group_by(Order.currency)
    )
    n = len(bounds) - 1
    return {row[0]: ([int(v) for v in row[1:n + 1]], [int(v) for v in row[n + 1:]]) for row in rows}


@dataclass
class Overview:
    customers_total: int
    stages: list[dict[str, Any]]
    weeks: list[datetime]
    new_customers: list[int]
    currency: str
    revenue: list[int]
    orders: list[int]
    other_currencies: list[str] = field(default_factory=list)
    computed_at: datetime = field(default_factory=utcnow)

    @property
    def new_this_week(self) -> int:
        return self.new_customers[-1] if self.new_customers else 0

    @property
    def revenue_total(self) -> int:
        return sum(self.revenue)

    @property
    def orders_total(self) -> int:
        return sum(self.orders)

    @property
    def aov(self) -> int:
        return self.revenue_total // self.orders_total if self.orders_total else 0


def overview(session: Session, *, tz: str, currency: str, now: datetime | None = None) -> Overview:
    """Everything the overview page shows but the funnel, in a handful of aggregate queries."""
    counts = stage_counts(session)
    total = sum(counts.values())
    stages = [{"key": s, "count": n} for s, n in counts.items() if s and (n or s in STAGES)]
    bounds = week_starts(now or utcnow(), tz)
    money = weekly_revenue(session, bounds)
    if currency not in money and money:
        currency = max(money, key=lambda c: sum(money[c][1]))  # the currency most orders use
    revenue, orders = money.get(currency, ([0] * WEEKS, [0] * WEEKS))
    return Overview(
        customers_total=total, stages=stages,
        weeks=bounds[:-1], new_customers=weekly_new_customers(session, bounds),
        currency=currency, revenue=revenue, orders=orders,
        other_currencies=sorted(c for c in money if c != currency),
    )
