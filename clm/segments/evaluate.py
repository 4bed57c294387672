"""The rule tree evaluated in plain Python over one customer's facts: the reference the SQL compiler is
tested against (and a readable statement of what each condition means).

`load_facts` reads everything a tree can ask about for some customers; `matches(node, facts, ctx)` says
whether one customer's facts satisfy the tree. Same semantics as compile.py: typed comparisons, a missing
value never satisfies a positive comparison, negative operators are complements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.analytics.models import CustomerScore
from clm.commerce.models import Order, OrderItem, Product
from clm.customers.models import Consent, Customer
from clm.lifecycle.models import CustomerStats, StageHistory
from clm.loyalty.models import Lot, Member
from clm.segments import rules as r
from clm.segments.compile import (
    Context,
    CycleError,
    anniversary_days,
    date_bounds,
    expiring_window,
    instant_bounds,
    utc_midnight,
    window_days,
)
from clm.segments.models import SegmentMember
from clm.tracking.models import Event, EventDaily


@dataclass
class Facts:
    customer: dict[str, Any]
    stats: dict[str, Any] | None = None
    scores: dict[str, Any] | None = None
    daily: list[tuple[str, date, int]] = field(default_factory=list)
    events: list[tuple[str, dict, datetime]] = field(default_factory=list)
    items: list[tuple[str | None, str | None, str, datetime]] = field(default_factory=list)  # sku, category, status, at
    consents: list[tuple[str, str, bool, datetime, int]] = field(default_factory=list)
    stages: list[tuple[str, datetime]] = field(default_factory=list)
    lists: set[int] = field(default_factory=set)  # static segments the customer is currently in
    member: dict[str, Any] | None = None  # loyalty_members row
    lots: list[tuple[int, datetime | None]] = field(default_factory=list)  # (remaining, expires_at) of open lots


def load_facts(session: Session, customer_ids: list[int] | None = None) -> dict[int, Facts]:
    """Every live customer's facts (or those of `customer_ids`), keyed by id."""
    c = Customer.__table__
    query = sa.select(c).where(c.c.merged_into_id.is_(None))
    if customer_ids is not None:
        query = query.where(c.c.id.in_(customer_ids))
    facts = {row.id: Facts(dict(row._mapping)) for row in session.execute(query)}

    def rows(stmt):
        for row in session.execute(stmt):
            f = facts.get(row[0])
            if f is not None:
                yield f, row

    for f, row in rows(sa.select(CustomerStats.__table__)):
        f.stats = dict(row._mapping)
    for f, row in rows(sa.select(CustomerScore.__table__)):
        f.scores = dict(row._mapping)
    d = EventDaily.__table__
    for f, row in rows(sa.select(d.c.customer_id, d.c.name, d.c.day, d.c.count)):
        f.daily.append((row.name, row.day, row.count))
    e = Event.__table__
    for f, row in rows(sa.select(e.c.customer_id, e.c.name, e.c.type, e.c.properties, e.c.timestamp)):
        f.events.append((row.name or row.type, row.properties or {}, row.timestamp))
    i, o, p = OrderItem.__table__, Order.__table__, Product.__table__
    for f, row in rows(sa.select(i.c.customer_id, i.c.sku, p.c.category, o.c.status, o.c.placed_at)
                       .select_from(i.join(o, o.c.id == i.c.order_id).outerjoin(p, p.c.id == i.c.product_id))):
        f.items.append((row.sku, row.category, row.status, row.placed_at))
    k = Consent.__table__
    for f, row in rows(sa.select(k.c.customer_id, k.c.channel, k.c.purpose, k.c.granted, k.c.recorded_at, k.c.id)):
        f.consents.append(tuple(row[1:]))
    h = StageHistory.__table__
    for f, row in rows(sa.select(h.c.customer_id, h.c.to_stage, h.c.changed_at)):
        f.stages.append((row.to_stage, row.changed_at))
    m = SegmentMember.__table__
    for f, row in rows(sa.select(m.c.customer_id, m.c.segment_id).where(m.c.exited_at.is_(None))):
        f.lists.add(row.segment_id)
    for f, row in rows(sa.select(Member.__table__)):
        f.member = dict(row._mapping)
    lots = Lot.__table__
    for f, row in rows(sa.select(lots.c.customer_id, lots.c.remaining, lots.c.expires_at).where(lots.c.remaining > 0)):
        f.lots.append((row.remaining, row.expires_at))
    return facts


def members(node: Any, facts: dict[int, Facts], ctx: Context) -> set[int]:
    return {cid for cid, f in facts.items() if matches(node, f, ctx)}


def matches(node: Any, f: Facts, ctx: Context) -> bool:
    if isinstance(node, r.All):
        return all(matches(c, f, ctx) for c in node.all)
    if isinstance(node, r.AnyOf):
        return any(matches(c, f, ctx) for c in node.any)
    if isinstance(node, r.Not):
        return not matches(node.not_, f, ctx)
    return _condition(node, f, ctx)


def _condition(c: Any, f: Facts, ctx: Context) -> bool:
    if isinstance(c, r.ProfileCondition):
        if c.field.startswith("traits."):
            return compare_json(f.customer.get("traits") or {}, c.field[7:], c, ctx)
        return compare(f.customer.get(c.field), c, r.field_type(c), ctx)
    if isinstance(c, r.StageCondition):
        inside = f.customer.get("lifecycle_stage") in c.stages
        return inside if c.op == "in" else not inside
    if isinstance(c, r.StageEnteredCondition):
        since = ctx.now - timedelta(days=c.within_days)
        return any(stage == c.stage and at >= since for stage, at in f.stages)
    if isinstance(c, r.EventCondition):
        return _event(c, f, ctx)
    if isinstance(c, r.OrdersCondition):
        return _orders(c, f, ctx)
    if isinstance(c, r.BoughtCondition):
        first, last = window_days(c.window, ctx.now)
        low = utc_midnight(first) if first else None
        high = utc_midnight(last + timedelta(days=1)) if last else None
        return any(status != "refunded" and (sku == c.sku if c.sku is not None else category == c.category)
                   and (low is None or at >= low) and (high is None or at < high)
                   for sku, category, status, at in f.items)
    if isinstance(c, r.ScoreCondition):
        return compare((f.scores or {}).get(c.field), c, r.field_type(c), ctx)
    if isinstance(c, r.LoyaltyCondition):
        return compare(_loyalty_value(c, f, ctx), c, r.field_type(c), ctx)
    if isinstance(c, r.ConsentCondition):
        latest = max(((at, cid, granted) for ch, pu, granted, at, cid in f.consents
                      if ch == c.channel and pu == c.purpose), default=None)
        return bool(latest and latest[2])
    if isinstance(c, r.SegmentCondition):
        found = ctx.segment(c.segment_id)
        if found is None:
            return False
        if found[0] == "static":
            return c.segment_id in f.lists
        if c.segment_id in ctx._stack:
            raise CycleError(c.segment_id)
        ctx._stack.append(c.segment_id)
        try:
            return matches(found[1], f, ctx)
        finally:
            ctx._stack.pop()
    raise TypeError(c)


def _loyalty_value(c: r.LoyaltyCondition, f: Facts, ctx: Context) -> Any:
    if c.field == "tier":
        return (f.member or {}).get("tier")
    if c.field == "expiring":
        after, until = expiring_window(c, ctx)
        return sum(n for n, at in f.lots if at is not None and after < at <= until)
    return (f.member or {}).get({"available": "available", "lifetime": "earned"}[c.field]) or 0


def _event(c: r.EventCondition, f: Facts, ctx: Context) -> bool:
    first, last = window_days(c.window, ctx.now)
    if c.where:
        low = utc_midnight(first) if first else None
        high = utc_midnight(last + timedelta(days=1)) if last else None
        n = sum(1 for name, props, at in f.events
                if name == c.name and (low is None or at >= low) and (high is None or at < high)
                and all(compare_json(props, w.property, w, ctx) for w in c.where))
    else:
        n = sum(k for name, day, k in f.daily
                if name == c.name and (first is None or day >= first) and (last is None or day <= last))
    return {"at_least": n >= c.count, "at_most": n <= c.count, "exactly": n == c.count}[c.op]


def _orders(c: r.OrdersCondition, f: Facts, ctx: Context) -> bool:
    s = f.stats or {}
    if c.metric == "count":
        return compare(s.get("orders_count") or 0, c, "number", ctx)
    if c.metric == "revenue":
        return compare(s.get("revenue") or 0, c, "number", ctx)
    if c.metric in ("first_order_at", "last_order_at"):
        return compare(s.get(c.metric), c, "datetime", ctx)
    count, revenue = s.get("orders_count") or 0, s.get("revenue") or 0
    if c.op in r.NEGATIVE_OPS:
        return not _orders(c.model_copy(update={"op": r.NEGATIVE_OPS[c.op]}), f, ctx)
    if count <= 0:
        return False
    v = c.value
    return {"exists": lambda: True, "eq": lambda: revenue == float(v) * count,
            "gt": lambda: revenue > float(v) * count, "gte": lambda: revenue >= float(v) * count,
            "lt": lambda: revenue < float(v) * count, "lte": lambda: revenue <= float(v) * count,
            "between": lambda: float(v[0]) * count <= revenue <= float(v[1]) * count,
            "in": lambda: any(revenue == float(x) * count for x in v)}[c.op]()


def compare(value: Any, c: r.Comparison, kind: str, ctx: Context) -> bool:
    if c.op in r.NEGATIVE_OPS:
        return not compare(value, c.model_copy(update={"op": r.NEGATIVE_OPS[c.op]}), kind, ctx)
    if value is None:
        return False
    if c.op == "exists":
        return True
    return _positive(value, c, kind, ctx)


def _positive(value: Any, c: r.Comparison, kind: str, ctx: Context) -> bool:
    op, v = c.op, c.value
    if kind == "string":
        return {"eq": lambda: value == v, "in": lambda: value in v, "contains": lambda: v in value,
                "starts_with": lambda: value.startswith(v), "ends_with": lambda: value.endswith(v)}[op]()
    if kind == "number":
        return {"eq": lambda: value == v, "gt": lambda: value > v, "gte": lambda: value >= v,
                "lt": lambda: value < v, "lte": lambda: value <= v,
                "between": lambda: v[0] <= value <= v[1], "in": lambda: value in v}[op]()
    if kind == "date":
        if op == "anniversary_within_days":
            return value.strftime("%m-%d") in anniversary_days(ctx.today, v)
        low, high = date_bounds(op, v, ctx)
        return (low is None or value >= low) and (high is None or value <= high)
    low_t, high_t = instant_bounds(op, v, ctx)
    return (low_t is None or value >= low_t) and (high_t is None or value < high_t)


def compare_json(doc: dict, key: str, c: r.Comparison, ctx: Context) -> bool:
    if c.op in r.NEGATIVE_OPS:
        return not compare_json(doc, key, c.model_copy(update={"op": r.NEGATIVE_OPS[c.op]}), ctx)
    value = doc.get(key) if isinstance(doc, dict) else None
    if c.op == "exists":
        return value is not None
    if c.op in ("is_true", "is_false"):
        return value is (c.op == "is_true")
    kind = r.field_type(c)
    if kind == "string" and isinstance(value, str):
        return _positive(value, c, kind, ctx)
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return _positive(float(value), c, kind, ctx)
    return False
