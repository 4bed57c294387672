"""The journeys' reactions, as worker steps (session, now) -> work done.

Outbox consumer: `segment.entered` / `segment.exited` / `stage.changed` enter customers into journeys
with those triggers (the segment's first evaluation, `initial`, enters nobody), and leaving a segment
ends the runs of journeys set to exit then. Events consumer: tails `events`: event triggers (with
property filters, the segments' semantics), runs waiting for that event, and goals. Date sweep (hourly,
work once a day per journey in the business time zone): date triggers and days after the last order.
Every entry carries the key of its cause, so handling a fact twice enters nobody twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.models import Customer
from clm.db.base import UTCDateTime
from clm.journeys import definition as d
from clm.journeys import engine, entry
from clm.journeys import models as m
from clm.journeys.models import Journey, JourneyRun
from clm.lifecycle.models import CustomerStats
from clm.outbox.models import OutboxEvent
from clm.segments.compile import Context
from clm.segments.evaluate import compare_json
from clm.tracking.models import Event
from clm.worker.tail import Tail

TOPICS = ("segment.entered", "segment.exited", "stage.changed")
CATCH_UP_DAYS = 3  # a worker down for a day or two still sends yesterday's birthday greetings


def passes(filters: list, properties: dict, ctx: Context) -> bool:
    """An event's properties pass every filter (the segments' property-filter semantics)."""
    return all(compare_json(properties or {}, f.property, f, ctx) for f in filters)


def _context(session: Session, now: datetime, timezone: str) -> Context:
    return Context(dialect=session.get_bind().dialect.name, now=now, timezone=timezone)


class OutboxConsumer:
    name = "journeys.outbox"

    def __init__(self, timezone: Callable[[], str] = lambda: "Asia/Ho_Chi_Minh", batch: int = 2000):
        outbox = OutboxEvent.__table__
        self.timezone = timezone
        self.batch = batch
        self.tail = Tail(self.name, outbox, "created_at", ["topic", "customer_id", "payload"],
                         where=outbox.c.topic.in_(TOPICS))

    def __call__(self, session: Session, now: datetime) -> int:
        rows = self.tail.read(session, self.batch)
        if rows:
            handle_outbox(session, rows, now, self.timezone())
        self.tail.advance(session, rows)
        return len(rows)


def handle_outbox(session: Session, rows: list, now: datetime, timezone: str) -> int:
    journeys = entry.live_journeys(session, ("segment_entered", "segment_exited", "stage_changed"))
    if not journeys:
        return 0
    entries: dict[int, list] = defaultdict(list)
    for row in rows:
        payload = row.payload or {}
        if row.customer_id is None:
            continue
        for live in journeys:
            t = live.graph.trigger
            key = f"outbox:{row.id}"
            if row.topic == "segment.entered" and isinstance(t, d.SegmentEnteredTrigger):
                if payload.get("segment_id") == t.segment_id and not payload.get("initial"):
                    entries[live.journey.id].append((row.customer_id, key, {"segment_id": t.segment_id}))
            elif row.topic == "segment.exited" and isinstance(t, d.SegmentExitedTrigger):
                if payload.get("segment_id") == t.segment_id:
                    entries[live.journey.id].append((row.customer_id, key, {"segment_id": t.segment_id}))
            elif row.topic == "segment.exited" and isinstance(t, d.SegmentEnteredTrigger):
                if payload.get("segment_id") == t.segment_id and live.graph.entry.exit_on_segment_exit:
                    entry.end_runs(session, live.journey.id, [row.customer_id], m.EXITED, "left segment", now)
            elif row.topic == "stage.changed" and isinstance(t, d.StageTrigger):
                if (t.to is None or payload.get("to") == t.to) and (t.from_ is None or payload.get("from") == t.from_):
                    entries[live.journey.id].append((row.customer_id, key, {"from": payload.get("from"),
                                                                            "to": payload.get("to")}))
    entered = 0
    for live in journeys:
        if entries.get(live.journey.id):
            entered += len(entry.enter(session, live, entries[live.journey.id], now, timezone))
    return entered


class EventsConsumer:
    name = "journeys.events"

    def __init__(self, timezone: Callable[[], str] = lambda: "Asia/Ho_Chi_Minh", batch: int = 5000):
        self.timezone = timezone
        self.batch = batch
        self.tail = Tail(self.name, Event.__table__, "received_at",
                         ["customer_id", "name", "type", "properties", "timestamp"])

    def __call__(self, session: Session, now: datetime) -> int:
        rows = self.tail.read(session, self.batch)
        if rows:
            handle_events(session, rows, now, self.timezone())
        self.tail.advance(session, rows)
        return len(rows)


def handle_events(session: Session, rows: list, now: datetime, timezone: str) -> None:
    ctx = _context(session, now, timezone)
    events = [(r.id, r.customer_id, r.name or r.type, r.properties or {}, r.timestamp) for r in rows]
    _enter_on_events(session, events, ctx, now, timezone)
    customers = sorted({e[1] for e in events})
    for start in range(0, len(customers), 1000):
        chunk = set(customers[start:start + 1000])
        mine = [e for e in events if e[1] in chunk]
        _waits(session, mine, ctx, now, timezone)
        _goals(session, mine, ctx, now)


def _enter_on_events(session: Session, events: list, ctx: Context, now: datetime, timezone: str) -> None:
    for live in entry.live_journeys(session, ("event",)):
        t = live.graph.trigger
        todo = [(cid, f"event:{eid}", {"event": name, "properties": props})
                for eid, cid, name, props, _ in events if name == t.event and passes(t.where, props, ctx)]
        if todo:
            entry.enter(session, live, todo, now, timezone)


def _waits(session: Session, events: list, ctx: Context, now: datetime, timezone: str) -> None:
    """Runs waiting for one of these events (of an active journey) take their event branch."""
    names = {e[2] for e in events}
    r, j = JourneyRun.__table__, Journey.__table__
    waiting = session.execute(sa.select(r.c.id, r.c.customer_id, r.c.wait_event, r.c.seq, r.c.version_id, r.c.node_id)
                              .join(j, j.c.id == r.c.journey_id)
                              .where(r.c.customer_id.in_({e[1] for e in events}), r.c.status == m.WAITING,
                                     r.c.wait_event.in_(names), j.c.state == m.ACTIVE)).all()
    for row in waiting:
        node = engine.graph_of(session, row.version_id).node(row.node_id)
        if not any(cid == row.customer_id and name == row.wait_event and passes(node.where, props, ctx)
                   for _, cid, name, props, _ in events):
            continue
        run = engine.lock_run(session, row.id)
        if run is not None and run.seq == row.seq and run.status == m.WAITING:
            engine.event_arrived(session, run, now, timezone)


def _goals(session: Session, events: list, ctx: Context, now: datetime) -> None:
    """A goal event within the window converts the run (an open one ends as converted)."""
    r = JourneyRun.__table__
    runs = session.execute(sa.select(r.c.id, r.c.customer_id, r.c.version_id, r.c.goal_until, r.c.entered_at,
                                     r.c.ended_at)
                           .where(r.c.customer_id.in_({e[1] for e in events}), r.c.converted_at.is_(None),
                                  r.c.goal_until.is_not(None), r.c.goal_until >= min(e[4] for e in events))).all()
    for row in runs:
        goal = engine.graph_of(session, row.version_id).goal
        if goal is None:
            continue
        hit = [at for _, cid, name, props, at in events if cid == row.customer_id and name == goal.event
               and row.entered_at <= at <= row.goal_until and passes(goal.where, props, ctx)]
        if not hit:
            continue
        at = min(hit)
        if row.ended_at is None:
            session.execute(sa.update(r).where(r.c.id == row.id, r.c.ended_at.is_(None)).values(
                status=m.CONVERTED, ended_at=now, exit_reason="goal", converted_at=at, updated_at=now,
                due_at=None, wait_event=None, seq=r.c.seq + 1))
        else:
            session.execute(sa.update(r).where(r.c.id == row.id).values(converted_at=at, updated_at=now))


# -- the date sweep ---------------------------------------------------------------------------------------

def sweep_dates(session: Session, now: datetime, timezone: str) -> int:
    """Enter the customers whose date (or days after their last order) is today, once a day per journey."""
    ctx = _context(session, now, timezone)
    today = ctx.today
    entered = 0
    for live in entry.live_journeys(session, ("date", "days_after_last_order")):
        journey = live.journey
        first = today if journey.swept_on is None else max(journey.swept_on + timedelta(days=1),
                                                           today - timedelta(days=CATCH_UP_DAYS - 1))
        day = first
        while day <= today:
            trigger = live.graph.trigger
            if isinstance(trigger, d.LastOrderTrigger) and trigger.gaps is not None:
                todo = gap_due(session, trigger.gaps, day, ctx)
            else:
                todo = [(cid, f"date:{day.isoformat()}", {"date": day.isoformat()})
                        for cid in due_customers(session, trigger, day, ctx)]
            entered += len(entry.enter(session, live, todo, now, timezone))
            day += timedelta(days=1)
        journey.swept_on = today
        session.flush()
    return entered


def _month_days(day: date) -> list[tuple[int, int]]:
    out = [(day.month, day.day)]
    if day.month == 3 and day.day == 1 and not _leap(day.year):
        out.append((2, 29))  # born on 29 February: greeted on 1 March in common years
    return out


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def due_customers(session: Session, trigger: Any, day: date, ctx: Context) -> list[int]:
    """Live customers for whom `trigger` fires on local day `day`."""
    c, s = Customer.__table__, CustomerStats.__table__
    alive = c.c.merged_into_id.is_(None)
    if isinstance(trigger, d.LastOrderTrigger):
        target = day - timedelta(days=trigger.days)
        return list(session.scalars(sa.select(s.c.customer_id).join(c, c.c.id == s.c.customer_id).where(
            alive, s.c.last_order_at >= ctx.day_start(target),
            s.c.last_order_at < ctx.day_start(target + timedelta(days=1)))))
    target = day - timedelta(days=trigger.offset_days)
    if trigger.field == "birthday":
        col = c.c.birthday
        if not trigger.every_year:
            return list(session.scalars(sa.select(c.c.id).where(alive, col == target)))
        match = sa.or_(*(sa.and_(sa.extract("month", col) == mo, sa.extract("day", col) == dd)
                         for mo, dd in _month_days(target)))
        return list(session.scalars(sa.select(c.c.id).where(alive, match)))
    if trigger.field == "first_order_at":
        query = sa.select(s.c.customer_id, s.c.first_order_at).join(c, c.c.id == s.c.customer_id).where(
            alive, s.c.first_order_at.is_not(None))
        if not trigger.every_year:
            return [cid for cid, _ in session.execute(query.where(
                s.c.first_order_at >= ctx.day_start(target),
                s.c.first_order_at < ctx.day_start(target + timedelta(days=1))))]
        # UTC month-day within a day of the target, then the exact local day in Python
        near = [target + timedelta(days=k) for k in (-1, 0, 1)]
        col = s.c.first_order_at
        query = query.where(sa.or_(*(sa.and_(sa.extract("month", col) == n.month, sa.extract("day", col) == n.day)
                                     for n in near)))
        return [cid for cid, at in session.execute(query) if _anniversary(_local_day(at, ctx), day, target)]
    key = trigger.field[7:]
    value = c.c.traits[key].as_string()
    rows = session.execute(sa.select(c.c.id, value).where(alive, value.is_not(None)))
    out = []
    for cid, raw in rows:
        found = _trait_day(raw, ctx)
        if found is None:
            continue
        if (trigger.every_year and _anniversary(found, day, target)) or (not trigger.every_year and found == target):
            out.append(cid)
    return out


def usual_gap(session: Session) -> tuple[sa.ColumnElement, float]:
    """The customer's usual gap between orders as the lifecycle rules measure "gaps" (SQL, in days): the
    median of their gaps (customer_stats.median_gap_days, two orders or more), never under the rules'
    `min_gap_days`; for one-time buyers the shop-wide median gap (or the rules' `default_gap_days`).
    Also returns the shop-wide figure."""
    from clm.lifecycle.rules import current_rules
    from clm.lifecycle.stats import shop_gap_days

    settings = current_rules().settings
    floor = settings.min_gap_days
    shop = max(shop_gap_days(session, settings.default_gap_days), floor)
    col = CustomerStats.__table__.c.median_gap_days
    return sa.case((col.is_(None), sa.literal(shop, sa.Float)), (col < floor, sa.literal(floor, sa.Float)),
                   else_=col), shop


def gap_due(session: Session, gaps: float, day: date, ctx: Context) -> list[tuple[int, str, dict[str, Any]]]:
    """(customer, entry key, context) for the customers whose last order plus `gaps` usual gaps falls on local
    day `day`. The entry key names the last order, so a customer enters once per last order."""
    c, s = Customer.__table__, CustomerStats.__table__
    gap, _ = usual_gap(session)
    start, end = ctx.day_start(day), ctx.day_start(day + timedelta(days=1))

    def days_between(later: datetime) -> sa.ColumnElement:
        """Days from the last order to `later`."""
        if ctx.dialect == "sqlite":
            return sa.func.julianday(sa.literal(later, UTCDateTime)) - sa.func.julianday(s.c.last_order_at)
        return sa.extract("epoch", sa.literal(later, UTCDateTime) - s.c.last_order_at) / 86400.0
    due = sa.literal(gaps, sa.Float) * gap
    rows = session.execute(sa.select(s.c.customer_id, s.c.last_order_at, gap.label("gap"))
                           .join(c, c.c.id == s.c.customer_id)
                           .where(c.c.merged_into_id.is_(None), s.c.last_order_at.is_not(None),
                                  s.c.last_order_at < end, days_between(start) <= due, days_between(end) > due))
    return [(cid, f"order:{last.isoformat()}", {"date": day.isoformat(), "last_order_at": last.isoformat(),
                                                "gap_days": round(float(g), 1)}) for cid, last, g in rows]


def _anniversary(found: date, day: date, target: date) -> bool:
    return (found.month, found.day) in _month_days(target) and found <= day


def _local_day(at: datetime, ctx: Context) -> date:
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo(ctx.timezone)).date()


def _trait_day(raw: Any, ctx: Context) -> date | None:
    """A trait's date: "YYYY-MM-DD", or an ISO time (its local day); None when it is not one."""
    if not isinstance(raw, str) or len(raw) < 10:
        return None
    try:
        if len(raw) == 10:
            return date.fromisoformat(raw)
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if at.tzinfo is None:
        return at.date()
    return _local_day(at, ctx)
