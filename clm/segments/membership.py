"""Keeping `segment_members` current: re-check some customers (a fact arrived) or everyone (a save, the
sweep), record who entered and who left, and announce it (`segment.entered` / `segment.exited`).

Re-checking is idempotent: with no new facts, the members the rules say are the members on record, so a
second run changes nothing and emits nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.models import Customer
from clm.lifecycle.models import CustomerStats
from clm.outbox.service import emit_many
from clm.segments.compile import SCORES, compile_rules, members_query, uses_scores
from clm.segments.lookup import make_context
from clm.segments.models import Segment, SegmentMember
from clm.segments.rules import parse_rules

_m = SegmentMember.__table__
_c = Customer.__table__
_s = CustomerStats.__table__
_seg = Segment.__table__
# Serialises membership writes across workers on PostgreSQL (a transaction-scoped advisory lock).
_MEMBERS_LOCK = 0x636C6D_05
CHUNK = 1000
RANGE = 50_000
COLUMNS = 64  # segments answered by one query
SCOPES = 8  # distinct lists of customers named in one query (more: one list for all)


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
    return recheck_many(session, [(segment, set(customer_ids))], now, timezone)


def recheck_many(session: Session, wanted: Iterable[tuple[Any, set[int]]], now: datetime,
                 timezone: str = "Asia/Ho_Chi_Minh") -> Change:
    """Re-check, for each (dynamic segment, customer ids), those customers against that segment: per chunk
    of customers one query answers every segment (a boolean column each), one query reads their current
    members, and entries, exits, sizes and outbox events are written in bulk."""
    wanted = [(s, set(ids)) for s, ids in wanted if ids and s.kind == "dynamic"]
    if not wanted:
        return Change(0, 0)
    lock(session)
    nodes = {s.id: parse_rules(s.rules) for s, _ in wanted}
    everyone = sorted(set().union(*(ids for _, ids in wanted)))
    entered, exited = 0, 0
    for start in range(0, len(everyone), CHUNK):
        chunk = everyone[start:start + CHUNK]
        in_chunk = set(chunk)
        todo = [(s, ids & in_chunk) for s, ids in wanted]
        todo = [(s, ids) for s, ids in todo if ids]
        for first in range(0, len(todo), COLUMNS):
            group = todo[first:first + COLUMNS]
            states = _states(session, [(s.id, nodes[s.id], ids) for s, ids in group], now, timezone)
            changes = []
            for k, (segment, ids) in enumerate(group):
                changes.append((segment, {c for c in ids if states.get(c, ())[k:k + 1] == (1,)},
                                {c for c in ids if states.get(c, ())[k:k + 1] == (2,)}))
            change = apply_many(session, changes, now)
            entered, exited = entered + change.entered, exited + change.exited
    return Change(entered, exited)


def _states(session: Session, wanted: list[tuple[int, Any, set[int]]], now: datetime,
            timezone: str) -> dict[int, tuple[int, ...]]:
    """customer id -> one number per segment: 0 out and not a member, 1 matches but not a member (enters),
    2 a member who no longer matches (exits), 3 a member who matches. One SELECT over these customers,
    a column per segment; each segment's sub-queries read only the customers re-checked for it (segments
    re-checked for the same customers share one list)."""
    everyone = sorted(set().union(*(ids for _, _, ids in wanted)))
    ctx = make_context(session, now, timezone, scope_ids=everyone)
    union = sa.select(_c.c.id.label("id")).where(_c.c.id.in_(everyone)).cte("scope")
    # numbered in the order segments name them, so that the same shape of batch is the same statement
    # (compiled once, then taken from SQLAlchemy's cache)
    distinct = list(dict.fromkeys(frozenset(ids) for _, _, ids in wanted))
    scopes = {ids: sa.select(_c.c.id.label("id")).where(_c.c.id.in_(sorted(ids))).cte(f"scope{k}")
              for k, ids in enumerate(distinct)} if 1 < len(distinct) <= SCOPES else {}
    source = _c.outerjoin(_s, _s.c.customer_id == _c.c.id)
    columns = []
    for k, (segment_id, node, ids) in enumerate(wanted):
        scope = scopes.get(frozenset(ids), union)
        here = replace(ctx, scope=scope)
        if uses_scores(node, here) and SCORES not in _froms(source):
            source = source.outerjoin(SCORES, SCORES.c.customer_id == _c.c.id)
        member = _c.c.id.in_(sa.select(_m.c.customer_id).where(
            _m.c.segment_id == segment_id, _m.c.exited_at.is_(None), _m.c.customer_id.in_(sa.select(scope.c.id))))
        matches = sa.and_(_c.c.merged_into_id.is_(None), compile_rules(node, here))
        columns.append((sa.case((matches, 1), else_=0)
                        + sa.case((member, 2), else_=0)).label(f"s{k}"))
    # merged-away customers are read too: they match nothing, so their stays end
    query = sa.select(_c.c.id, *columns).select_from(source).where(_c.c.id.in_(sa.select(union.c.id)))
    return {row[0]: tuple(row[1:]) for row in session.execute(query)}


def _froms(source: sa.FromClause) -> set:
    out = set()
    while isinstance(source, sa.Join):
        out.add(source.right)
        source = source.left
    return out


def apply_many(session: Session, changes: list[tuple[Any, set[int], set[int]]], now: datetime) -> Change:
    """apply() for several segments at once: one INSERT, one UPDATE (executemany) for the exits, one for
    the sizes, one batch of outbox events."""
    changes = [(s, sorted(e), sorted(x)) for s, e, x in changes if e or x]
    if not changes:
        return Change(0, 0)
    entries = [{"segment_id": s.id, "customer_id": cid, "entered_at": now, "exited_at": None}
               for s, entered, _ in changes for cid in entered]
    exits = [{"b_segment": s.id, "b_customer": cid} for s, _, exited in changes for cid in exited]
    if entries:
        session.execute(sa.insert(_m), entries)
    if exits:
        session.execute(sa.update(_m).where(_m.c.segment_id == sa.bindparam("b_segment"),
                                            _m.c.customer_id == sa.bindparam("b_customer"),
                                            _m.c.exited_at.is_(None)).values(exited_at=now), exits)
    events = []
    for s, entered, exited in changes:
        payload = {"segment_id": s.id, "segment": s.name, "at": now.isoformat()}
        events += [("segment.entered", cid, {**payload, "initial": False}) for cid in entered]
        events += [("segment.exited", cid, payload) for cid in exited]
    emit_many(session, events)
    session.execute(sa.update(_seg).where(_seg.c.id == sa.bindparam("b_id"))
                    .values(size=_seg.c.size + sa.bindparam("b_delta", type_=sa.Integer)),
                    [{"b_id": s.id, "b_delta": len(e) - len(x)} for s, e, x in changes])
    return Change(len(entries), len(exits))


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
