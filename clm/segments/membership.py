"""Keeping `segment_members` current: re-check some customers (a fact arrived) or everyone (a save, the
sweep), record who entered and who left, and announce it (`segment.entered` / `segment.exited`).

Re-checking is idempotent: with no new facts, the members the rules say are the members on record, so a
second run changes nothing and emits nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.models import Customer
from clm.outbox.service import emit_many
from clm.segments.compile import members_query
from clm.segments.lookup import make_context
from clm.segments.models import Segment, SegmentMember
from clm.segments.rules import parse_rules

_m = SegmentMember.__table__
_c = Customer.__table__
_seg = Segment.__table__
# Serialises membership writes across workers on PostgreSQL (a transaction-scoped advisory lock).
_MEMBERS_LOCK = 0x636C6D_05
CHUNK = 1000
RANGE = 50_000


@dataclass(frozen=True)
class Change:
    entered: int
    exited: int


def lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MEMBERS_LOCK})


def current_members(session: Session, segment_id: int, where: sa.ColumnElement | None = None) -> set[int]:
    query = sa.select(_m.c.customer_id).where(_m.c.segment_id == segment_id, _m.c.exited_at.is_(None))
    return set(session.scalars(query.where(where) if where is not None else query))


def apply(session: Session, segment: Any, entered: Iterable[int], exited: Iterable[int], now: datetime,
          initial: bool = False) -> Change:
    """Record entries and exits (and their outbox events); updates the segment's size."""
    entered, exited = sorted(entered), sorted(exited)
    if entered:
        session.execute(sa.insert(_m), [{"segment_id": segment.id, "customer_id": cid, "entered_at": now,
                                         "exited_at": None} for cid in entered])
    for start in range(0, len(exited), CHUNK):
        session.execute(sa.update(_m).where(_m.c.segment_id == segment.id, _m.c.exited_at.is_(None),
                                            _m.c.customer_id.in_(exited[start:start + CHUNK])).values(exited_at=now))
    if entered or exited:
        payload = {"segment_id": segment.id, "segment": segment.name, "at": now.isoformat()}
        emit_many(session, [("segment.entered", cid, {**payload, "initial": initial}) for cid in entered]
                  + [("segment.exited", cid, payload) for cid in exited])
        session.execute(sa.update(_seg).where(_seg.c.id == segment.id)
                        .values(size=_seg.c.size + len(entered) - len(exited)))
    return Change(len(entered), len(exited))


def recheck(session: Session, segment: Any, customer_ids: Iterable[int], now: datetime,
            timezone: str = "Asia/Ho_Chi_Minh") -> Change:
    """Re-check these customers against one dynamic segment."""
    ids = sorted(set(customer_ids))
    if not ids or segment.kind != "dynamic":
        return Change(0, 0)
    lock(session)
    node = parse_rules(segment.rules)
    entered, exited = 0, 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        ctx = make_context(session, now, timezone, scope_ids=chunk)
        matched = set(session.scalars(members_query(node, ctx)))
        current = current_members(session, segment.id, _m.c.customer_id.in_(chunk))
        change = apply(session, segment, matched - current, current - matched, now)
        entered, exited = entered + change.entered, exited + change.exited
    return Change(entered, exited)


def refresh(session: Session, segment: Any, now: datetime, timezone: str = "Asia/Ho_Chi_Minh",
            on_chunk=None) -> Change:
    """Re-check every customer against one dynamic segment, by id range; returns the entries and exits."""
    if segment.kind != "dynamic":
        return Change(0, 0)
    lock(session)
    node = parse_rules(segment.rules)
    low, high = session.execute(sa.select(sa.func.min(_c.c.id), sa.func.max(_c.c.id))).one()
    first = segment.refreshed_at is None
    entered, exited = 0, 0
    if low is not None:
        for start in range(low, high + 1, RANGE):
            end = min(start + RANGE - 1, high)
            ctx = make_context(session, now, timezone)
            matched = set(session.scalars(members_query(node, ctx, where=_c.c.id.between(start, end))))
            current = current_members(session, segment.id, _m.c.customer_id.between(start, end))
            change = apply(session, segment, matched - current, current - matched, now, initial=first)
            entered, exited = entered + change.entered, exited + change.exited
            if on_chunk:
                on_chunk()
    # Members whose customer was merged away (ids beyond the range cannot exist: they were deleted).
    size = session.scalar(sa.select(sa.func.count()).select_from(_m)
                          .where(_m.c.segment_id == segment.id, _m.c.exited_at.is_(None)))
    session.execute(sa.update(_seg).where(_seg.c.id == segment.id).values(size=size, refreshed_at=now))
    return Change(entered, exited)


def set_list(session: Session, segment: Any, add: Iterable[int] = (), remove: Iterable[int] = (),
             now: datetime | None = None) -> Change:
    """Add customers to (or remove them from) a static segment; unknown or merged ids are ignored."""
    from clm.lib.clock import utcnow

    now = now or utcnow()
    lock(session)
    add, remove = sorted(set(add)), sorted(set(remove))
    entered, exited = set(), set()
    for start in range(0, len(add), CHUNK):
        chunk = add[start:start + CHUNK]
        live = set(session.scalars(sa.select(_c.c.id).where(_c.c.id.in_(chunk), _c.c.merged_into_id.is_(None))))
        entered |= live - current_members(session, segment.id, _m.c.customer_id.in_(chunk))
    for start in range(0, len(remove), CHUNK):
        exited |= current_members(session, segment.id, _m.c.customer_id.in_(remove[start:start + CHUNK]))
    return apply(session, segment, entered - exited, exited, now)
