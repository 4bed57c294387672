"""What a journey did, for its dashboard page: per-node counts, messages by status, revenue in the goal
window, the A/B splits against their control, entries and conversions per day; and a customer's runs.

Per node (across versions, by node id): `entered` counts arrivals (steps recorded when a run leaves the
node, plus runs that are there now or ended there without leaving: exited, converted), `waiting` the
runs there now, `passed` the steps taken (by outcome: a split's branch, "yes"/"no", "timeout"/"event",
a message's status when queued), `exited` and `converted` the runs that ended there. Revenue is the
net of refunds of orders the customer placed between entering and the end of the goal window
(`journey_runs.goal_until`), each order once even when windows overlap.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.journeys import definition as d
from clm.journeys import models as m
from clm.journeys import stats
from clm.journeys.models import Journey, JourneyRun, JourneyStep, JourneyVersion


@dataclass
class NodeCounts:
    entered: int = 0
    waiting: int = 0  # there now: active or waiting
    held: int = 0
    parked: int = 0
    passed: int = 0
    exited: int = 0
    completed: int = 0
    converted: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    messages: dict[str, int] = field(default_factory=dict)  # message status -> count (send and webhook nodes)


@dataclass
class Revenue:
    orders: int = 0
    buyers: int = 0
    amounts: dict[str, int] = field(default_factory=dict)  # currency -> minor units, net of refunds


@dataclass
class Variant:
    name: str
    control: bool
    entered: int
    converted: int
    revenue: dict[str, int]
    comparison: stats.Comparison | None  # against the control (None for the control or without one)

    @property
    def rate(self) -> float | None:
        return self.converted / self.entered if self.entered else None


@dataclass
class Split:
    node_id: str
    label: str
    variants: list[Variant]
    has_control: bool


def list_counts(session: Session) -> dict[int, dict[str, int]]:
    """Per journey: runs entered, open now, converted (one grouped query)."""
    r = JourneyRun.__table__
    rows = session.execute(sa.select(
        r.c.journey_id, sa.func.count(),
        sa.func.sum(sa.case((r.c.ended_at.is_(None), 1), else_=0)),
        sa.func.count(r.c.converted_at)).group_by(r.c.journey_id))
    return {jid: {"entered": n, "open": int(open_ or 0), "converted": conv} for jid, n, open_, conv in rows}


def node_counts(session: Session, journey_id: int) -> dict[str, NodeCounts]:
    """Counts per node id (see the module docstring)."""
    r, s = JourneyRun.__table__, JourneyStep.__table__
    out: dict[str, NodeCounts] = defaultdict(NodeCounts)
    for node_id, outcome, n in session.execute(
            sa.select(s.c.node_id, s.c.outcome, sa.func.count()).where(s.c.journey_id == journey_id)
            .group_by(s.c.node_id, s.c.outcome)):
        counts = out[node_id]
        counts.outcomes[outcome] = n
        counts.passed += n
        counts.entered += n
    for node_id, status, converted, n in session.execute(
            sa.select(r.c.node_id, r.c.status, r.c.converted_at.is_not(None), sa.func.count())
            .where(r.c.journey_id == journey_id).group_by(r.c.node_id, r.c.status, r.c.converted_at.is_not(None))):
        counts = out[node_id]
        if status != m.COMPLETED:  # a completed run left a step at its exit node, counted above
            counts.entered += n
        if status in (m.RUN_ACTIVE, m.WAITING):
            counts.waiting += n
        elif status == m.HELD:
            counts.held += n
        elif status == m.PARKED:
            counts.parked += n
        elif status == m.EXITED:
            counts.exited += n
        elif status == m.COMPLETED:
            counts.completed += n
        if converted:
            counts.converted += n
    for node_id, status, n in messages_by_node(session, journey_id):
        out[node_id].messages[status] = n
    return dict(out)


def messages_by_node(session: Session, journey_id: int) -> list[tuple[str, str, int]]:
    """(node, message status, count): a step's message carries the key journey:<run>:<seq> of that step."""
    from clm.channels.models import Message

    msg, s = Message.__table__, JourneyStep.__table__
    key = sa.literal("journey:") + sa.cast(s.c.run_id, sa.String) + sa.literal(":") + sa.cast(s.c.seq, sa.String)
    rows = session.execute(
        sa.select(s.c.node_id, msg.c.status, sa.func.count())
        .select_from(msg.join(s, sa.and_(s.c.run_id == msg.c.journey_run_id, msg.c.idempotency_key == key)))
        .where(msg.c.journey_id == journey_id, s.c.journey_id == journey_id)
        .group_by(s.c.node_id, msg.c.status))
    return [tuple(row) for row in rows]


def _attributed_orders(journey_id: int, runs_where: Any = None) -> sa.Select:
    """Ids of orders placed inside a run's goal window (entered_at <= placed_at < goal_until)."""
    from clm.commerce.models import Order

    r, o = JourneyRun.__table__, Order.__table__
    query = (sa.select(o.c.id).select_from(r.join(o, o.c.customer_id == r.c.customer_id))
             .where(r.c.journey_id == journey_id, r.c.goal_until.is_not(None), o.c.placed_at >= r.c.entered_at,
                    o.c.placed_at < r.c.goal_until))
    return query.where(runs_where) if runs_where is not None else query


def revenue(session: Session, journey_id: int, runs_where: Any = None) -> Revenue:
    """Orders, buyers and net revenue per currency attributed to the journey's runs (or some of them)."""
    from clm.commerce.models import Order

    o = Order.__table__
    rows = session.execute(sa.select(o.c.currency, sa.func.count(), sa.func.sum(o.c.total - o.c.refunded))
                           .where(o.c.id.in_(_attributed_orders(journey_id, runs_where))).group_by(o.c.currency)).all()
    buyers = session.scalar(sa.select(sa.func.count(sa.distinct(o.c.customer_id)))
                            .where(o.c.id.in_(_attributed_orders(journey_id, runs_where)))) or 0
    return Revenue(orders=sum(n for _, n, _ in rows), buyers=buyers,
                   amounts={currency: int(total or 0) for currency, _, total in rows})


def splits(session: Session, journey_id: int, graph: d.Definition, alpha: float = stats.ALPHA) -> list[Split]:
    """Each random split of the graph: per branch the runs that took it, how many converted (reached
    the goal in its window), their revenue, and each variant against the control group."""
    r, s = JourneyRun.__table__, JourneyStep.__table__
    out = []
    for node in graph.nodes:
        if not isinstance(node, d.RandomSplitNode):
            continue
        took = dict.fromkeys((b.name for b in node.branches), (0, 0))
        for outcome, n, converted in session.execute(
                sa.select(s.c.outcome, sa.func.count(), sa.func.count(r.c.converted_at))
                .select_from(s.join(r, r.c.id == s.c.run_id))
                .where(s.c.journey_id == journey_id, s.c.node_id == node.id).group_by(s.c.outcome)):
            took[outcome] = (n, converted)
        control = next((b for b in node.branches if b.control), None)
        base = took.get(control.name, (0, 0)) if control else None
        variants = []
        for name, (n, converted) in took.items():
            branch = next((b for b in node.branches if b.name == name), None)
            is_control = bool(branch and branch.control)
            in_branch = r.c.id.in_(sa.select(s.c.run_id).where(s.c.journey_id == journey_id, s.c.node_id == node.id,
                                                               s.c.outcome == name))
            comparison = (stats.compare(converted, n, base[1], base[0], alpha)
                          if base is not None and not is_control else None)
            variants.append(Variant(name=name, control=is_control, entered=n, converted=converted,
                                    revenue=revenue(session, journey_id, in_branch).amounts, comparison=comparison))
        out.append(Split(node_id=node.id, label=node.label or node.id, variants=variants, has_control=control is not None))
    return out


def daily(session: Session, journey_id: int, now: datetime, timezone: str, days: int = 30) -> dict[str, Any]:
    """Runs entered and converted per local day over the last `days` days (one query each)."""
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    starts = [datetime.combine(today - timedelta(days=k), datetime.min.time(), zone) for k in range(days - 1, -1, -1)]
    bounds = [*starts, starts[-1] + timedelta(days=1)]
    r = JourneyRun.__table__

    def per_day(column) -> list[int]:
        sums = [sa.func.sum(sa.case((sa.and_(column >= a, column < b), 1), else_=0))
                for a, b in zip(bounds, bounds[1:], strict=False)]
        row = session.execute(sa.select(*sums).where(r.c.journey_id == journey_id, column >= bounds[0],
                                                     column < bounds[-1])).one()
        return [int(v or 0) for v in row]

    return {"days": [s.date() for s in starts], "entered": per_day(r.c.entered_at),
            "converted": per_day(r.c.converted_at)}


@dataclass
class CustomerRun:
    journey_id: int
    journey_name: str
    journey_state: str
    version: int
    node_id: str
    node_label: str
    node_type: str | None
    status: str
    variant: str | None
    entered_at: datetime
    updated_at: datetime
    due_at: datetime | None
    ended_at: datetime | None
    exit_reason: str | None
    converted_at: datetime | None
    error: str | None

    @property
    def open(self) -> bool:
        return self.ended_at is None


def customer_runs(session: Session, customer_id: int, limit: int = 50) -> list[CustomerRun]:
    """The customer's runs, newest first: which journeys they are in, at which node since when, and past runs."""
    from clm.journeys.engine import graph_of

    rows = session.execute(
        sa.select(JourneyRun, Journey.name, Journey.state, JourneyVersion.number)
        .join(Journey, Journey.id == JourneyRun.journey_id).join(JourneyVersion, JourneyVersion.id == JourneyRun.version_id)
        .where(JourneyRun.customer_id == customer_id)
        .order_by(JourneyRun.ended_at.is_not(None), JourneyRun.entered_at.desc(), JourneyRun.id.desc()).limit(limit)).all()
    out = []
    for run, name, state, number in rows:
        try:
            node = graph_of(session, run.version_id).node(run.node_id)
            label, kind = node.label or node.id, node.type
        except (KeyError, ValueError):
            label, kind = run.node_id, None
        out.append(CustomerRun(journey_id=run.journey_id, journey_name=name, journey_state=state, version=number,
                               node_id=run.node_id, node_label=label, node_type=kind, status=run.status,
                               variant=run.variant, entered_at=run.entered_at, updated_at=run.updated_at,
                               due_at=run.due_at, ended_at=run.ended_at, exit_reason=run.exit_reason,
                               converted_at=run.converted_at, error=run.error))
    return out
