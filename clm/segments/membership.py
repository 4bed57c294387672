"""Keeping `segment_members` current: re-check some customers (a fact arrived) or everyone (a save, the
sweep), record who entered and who left, and announce it (`segment.entered` / `segment.exited`).

Re-checking is idempotent: with no new facts, the members the rules say are the members on record, so a
second run changes nothing and emits nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.models import Customer
from clm.db.idlist import ids_condition, ids_table, ids_value
from clm.lifecycle.models import CustomerStats
from clm.outbox.service import emit_many, emit_to_customers
from clm.segments.compile import SCORES, compile_rules, expand, members_query, uses_scores
from clm.segments.lookup import make_context
from clm.segments.models import Segment, SegmentMember
from clm.segments.rules import (
    RELATIVE_OPS,
    SegmentCondition,
    StageEnteredCondition,
    field_type,
    parse_rules,
)

_m = SegmentMember.__table__
_c = Customer.__table__
_s = CustomerStats.__table__
_seg = Segment.__table__
# Serialises membership writes across workers on PostgreSQL (a transaction-scoped advisory lock).
_MEMBERS_LOCK = 0x636C6D_05
CHUNK = 1000
RANGE = 50_000
COLUMNS = 64  # segments answered by one query


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
    """Re-check, for each (dynamic segment, customer ids), those customers against that segment, and record
    who entered and who left: `plan_many` then `apply_plan` in the caller's transaction."""
    return apply_plan(session, plan_many(session, wanted, now, timezone), now)


def plan_many(session: Session, wanted: Iterable[tuple[Any, set[int]]], now: datetime,
              timezone: str = "Asia/Ho_Chi_Minh") -> list[tuple[Any, set[int], set[int]]]:
    """(segment, who enters, who leaves) for each (dynamic segment, customer ids): reads only, so that a
    worker can compute it without holding the database's write lock (SQLite has one writer: ingestion).

    Segments re-checked for the same customers (those counting the same event, or every segment for a
    new customer) are answered together: per chunk of those customers one query, a 0-3 column per segment
    (matches, is a member). A segment's query reads only its own customers, so a batch costs in proportion
    to the (segment, customer) pairs it can affect."""
    wanted = [(s, set(ids)) for s, ids in wanted if ids and s.kind == "dynamic"]
    nodes = {s.id: parse_rules(s.rules) for s, _ in wanted}
    groups: dict[frozenset[int], list[Any]] = {}
    for segment, ids in wanted:
        groups.setdefault(frozenset(ids), []).append(segment)
    changes = []
    for ids, segments in groups.items():
        customers = sorted(ids)
        for start in range(0, len(customers), CHUNK):
            chunk = customers[start:start + CHUNK]
            for first in range(0, len(segments), COLUMNS):
                group = segments[first:first + COLUMNS]
                states = _states(session, [(s.id, nodes[s.id]) for s in group], chunk, now, timezone)
                for k, segment in enumerate(group):
                    entered = {c for c, row in states.items() if row[k] == 1}
                    exited = {c for c, row in states.items() if row[k] == 2}
                    if entered or exited:
                        changes.append((segment, entered, exited))
    return changes


def apply_plan(session: Session, changes: list[tuple[Any, set[int], set[int]]], now: datetime) -> Change:
    """Record a plan's entries and exits (and announce them), taking the membership lock first. Membership
    is read again, so a plan computed earlier never enters a member twice nor ends a stay already ended
    (another worker, or an API call, may have got there first)."""
    if not changes:
        return Change(0, 0)
    lock(session)
    dialect = session.get_bind().dialect.name
    customers = sorted(set().union(*(e | x for _, e, x in changes)))
    current: dict[int, set[int]] = {}
    for start in range(0, len(customers), RANGE):
        rows = session.execute(sa.select(_m.c.segment_id, _m.c.customer_id).where(
            _m.c.segment_id.in_(sorted({s.id for s, _, _ in changes})), _m.c.exited_at.is_(None),
            ids_condition(_m.c.customer_id, "customer_ids", dialect)),
            {"customer_ids": ids_value(customers[start:start + RANGE], dialect)})
        for segment_id, customer_id in rows:
            current.setdefault(segment_id, set()).add(customer_id)
    return apply_many(session, [(s, e - current.get(s.id, set()), x & current.get(s.id, set()))
                                for s, e, x in changes], now)


def _scope_sqlite(column: sa.ColumnElement) -> sa.ColumnElement[bool]:
    return ids_condition(column, "scope_ids", "sqlite")


def _scope_postgresql(column: sa.ColumnElement) -> sa.ColumnElement[bool]:
    return ids_condition(column, "scope_ids", "postgresql")


# "column is one of the re-checked customers", the list bound once as `scope_ids`: fixed functions, so that
# a segment's compiled column can be kept and reused by later batches (see _column), with a fixed SQL text,
# which the database prepares once.
_SCOPES = {"sqlite": _scope_sqlite, "postgresql": _scope_postgresql}
_COLUMNS: OrderedDict[tuple, tuple[sa.ColumnElement, bool]] = OrderedDict()
_COLUMNS_KEPT = 2048
_COLUMNS_LOCK = threading.Lock()


def _states(session: Session, segments: list[tuple[int, Any]], customers: list[int], now: datetime,
            timezone: str) -> dict[int, tuple[int, ...]]:
    """customer id -> one number per segment: 0 out and not a member, 1 matches but not a member (enters),
    2 a member who no longer matches (exits), 3 a member who matches; only customers with a 1 or a 2 for
    some segment. One SELECT over these customers, a column per segment, whose sub-queries read only them."""
    ctx = make_context(session, now, timezone, scope_ids=customers)
    source = _c.outerjoin(_s, _s.c.customer_id == _c.c.id)
    columns = []
    for k, (segment_id, node) in enumerate(segments):
        column, scores = _column(segment_id, node, ctx)
        if scores and SCORES not in _froms(source):
            source = source.outerjoin(SCORES, SCORES.c.customer_id == _c.c.id)
        columns.append(column.label(f"s{k}"))
    # merged-away customers are read too: they match nothing, so their stays end
    query = sa.select(_c.c.id, *columns).select_from(source).where(_SCOPES[ctx.dialect](_c.c.id))
    rows = session.execute(query, {"scope_ids": ids_value(customers, ctx.dialect)})
    return {row[0]: tuple(row[1:]) for row in rows if 1 in row[1:] or 2 in row[1:]}


def _column(segment_id: int, node: Any, ctx: Any) -> tuple[sa.ColumnElement, bool]:
    """A segment's state column (0-3, see _states) over the re-checked customers, and whether it reads
    scores. Kept between batches while what it depends on is the same: the tree and the day (windows and
    dates), or the instant when the tree compares times with now."""
    key = (segment_id, repr(node), ctx.dialect, ctx.timezone, _clock_key(node, ctx))
    with _COLUMNS_LOCK:  # the worker thread and API requests share the cache
        found = _COLUMNS.get(key)
        if found is not None:
            _COLUMNS.move_to_end(key)
            return found
    scope = _SCOPES[ctx.dialect]
    here = replace(ctx, scope=scope)
    member = _c.c.id.in_(sa.select(_m.c.customer_id).where(
        _m.c.segment_id == segment_id, _m.c.exited_at.is_(None), scope(_m.c.customer_id)))
    matches = sa.and_(_c.c.merged_into_id.is_(None), compile_rules(node, here))
    found = (sa.case((matches, 1), else_=0) + sa.case((member, 2), else_=0), uses_scores(node, here))
    if key[-1] is not None:
        with _COLUMNS_LOCK:
            _COLUMNS[key] = found
            if len(_COLUMNS) > _COLUMNS_KEPT:
                _COLUMNS.popitem(last=False)
    return found


def _clock_key(node: Any, ctx: Any) -> Any:
    """What of the clock a compiled tree depends on: the UTC and the local day, or None (do not keep it)
    when it compares times with the instant now or reads other segments (which may change)."""
    for c in expand(node, ctx):
        if isinstance(c, SegmentCondition | StageEnteredCondition):
            return None
        if getattr(c, "op", None) in RELATIVE_OPS and field_type(c) == "datetime":
            return None
    return (ctx.now.astimezone(UTC).date(), ctx.today)


def _froms(source: sa.FromClause) -> set:
    out = set()
    while isinstance(source, sa.Join):
        out.add(source.right)
        source = source.left
    return out


def apply_many(session: Session, changes: list[tuple[Any, set[int], set[int]]], now: datetime) -> Change:
    """apply() for several segments at once, in five statements whatever the number of segments: entries,
    exits, each kind of outbox event (INSERT ... SELECT / UPDATE run per segment by executemany, each
    segment's customer ids bound as one parameter), and sizes."""
    changes = [(s, sorted(e), sorted(x)) for s, e, x in changes if e or x]
    if not changes:
        return Change(0, 0)
    dialect = session.get_bind().dialect.name
    enter, leave = _writes(dialect)
    entries = [(s, ids) for s, ids, _ in changes if ids]
    exits = [(s, ids) for s, _, ids in changes if ids]
    if entries:
        session.execute(enter, [{"b_segment": s.id, "customer_ids": ids_value(ids, dialect), "b_now": now}
                                for s, ids in entries])
    if exits:
        session.execute(leave, [{"b_segment": s.id, "customer_ids": ids_value(ids, dialect), "b_now": now}
                                for s, ids in exits])

    def payload(s: Any) -> dict[str, Any]:
        return {"segment_id": s.id, "segment": s.name, "at": now.isoformat()}

    emit_to_customers(session, "segment.entered", [(ids, {**payload(s), "initial": False}) for s, ids in entries])
    emit_to_customers(session, "segment.exited", [(ids, payload(s)) for s, ids in exits])
    session.execute(sa.update(_seg).where(_seg.c.id == sa.bindparam("b_id"))
                    .values(size=_seg.c.size + sa.bindparam("b_delta", type_=sa.Integer)),
                    [{"b_id": s.id, "b_delta": len(e) - len(x)} for s, e, x in changes])
    return Change(sum(len(ids) for _, ids in entries), sum(len(ids) for _, ids in exits))


@lru_cache(maxsize=2)
def _writes(dialect: str) -> tuple[sa.Insert, sa.Update]:
    """The entry INSERT ... SELECT and the exit UPDATE of one segment's customers (one parameter each)."""
    ids = ids_table("customer_ids", dialect)
    segment = sa.bindparam("b_segment", type_=sa.BigInteger)
    enter = sa.insert(_m).from_select(["segment_id", "customer_id", "entered_at"], sa.select(
        segment, ids.c.value, sa.bindparam("b_now", type_=_m.c.entered_at.type)))
    leave = sa.update(_m).where(_m.c.segment_id == segment, _m.c.exited_at.is_(None),
                                ids_condition(_m.c.customer_id, "customer_ids", dialect)
                                ).values(exited_at=sa.bindparam("b_now", type_=_m.c.exited_at.type))
    return enter, leave


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
