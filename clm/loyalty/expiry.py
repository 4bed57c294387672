"""The sweep's ledger work, set-based: a chunk of due members settled in a handful of statements.

`ledger.settle` brings one member up to date through the ORM (about a dozen statements). A sweep over a
million members cannot afford that, so `settle_chunk` does the same work for a chunk of members at once
and writes EXACTLY what `settle` would have written for each of them, in the same order:

- a `release` entry (`release:<customer>:<highest lot id>`, details `{"lots": [...]}`) when lots passed
  their return window: those lots become released, their points move from pending to available;
- an `expire` entry (`expire:<customer>:<expired so far>`) taking what is left of every lot past its
  expiry, with one lot use per lot, and its `loyalty.points_changed` event;
- the member row's balances, `expired`, and `next_due_at` (the next release or expiry).

Statements per chunk: lock the members (PostgreSQL: FOR UPDATE SKIP LOCKED, so a member held by a
redemption is left for the next sweep instead of holding the sweep up; SQLite: the caller's BEGIN
IMMEDIATE), read their due lots ordered by customer, insert the entries and lot uses (one executemany
each), mark the lots (two UPDATEs by id list), recompute `next_due_at`, update the members (one
executemany) and emit the events. All of it is in the caller's transaction: a chunk is applied whole
or not at all. Every writer of the ledger locks the member row first, so holding the member rows is
what keeps the lots still.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.db.base import UTCDateTime
from clm.db.bulk import allocate_ids, insert_rows, json_text, update_rows
from clm.db.idlist import ids_condition, ids_value
from clm.lib.clock import utcnow
from clm.loyalty.models import Entry, Lot, LotUse, Member
from clm.outbox.models import OutboxEvent

_members = Member.__table__
_lots = Lot.__table__
_entries = Entry.__table__
_uses = LotUse.__table__
_outbox = OutboxEvent.__table__

_ENTRY_COLUMNS = ("id", "customer_id", "key", "kind", "reason", "source", "source_id", "available", "pending",
                  "debt", "qualifying", "lost", "spend", "details", "created_at")


def lock_due(session: Session, now: datetime, limit: int, after: int) -> list[sa.Row]:
    """Lock up to `limit` members due by `now` with ids above `after`, in id order (customer_id, available,
    pending, debt, expired). On PostgreSQL members locked by someone else are skipped."""
    query = (sa.select(_members.c.customer_id, _members.c.available, _members.c.pending, _members.c.debt,
                       _members.c.expired)
             .where(_members.c.next_due_at <= now, _members.c.customer_id > after)
             .order_by(_members.c.customer_id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.execute(query))


def settle_chunk(session: Session, members: list[sa.Row], now: datetime) -> None:
    """Release and expire what is due by `now` for `members` (rows of `lock_due`, locked)."""
    if not members:
        return
    dialect = session.get_bind().dialect.name
    ids = [m.customer_id for m in members]
    ids_param = {"ids": ids_value(ids, dialect)}
    releasing = sa.and_(_lots.c.released.is_(False), _lots.c.available_at <= now)
    expiring = _lots.c.expires_at <= now
    lots = session.execute(
        sa.select(_lots.c.id, _lots.c.customer_id, _lots.c.remaining, _lots.c.released,
                  releasing.label("releasing"), expiring.label("expiring"))
        .where(ids_condition(_lots.c.customer_id, "ids", dialect), _lots.c.remaining > 0,
               sa.or_(releasing, expiring))
        .order_by(_lots.c.customer_id, _lots.c.id), ids_param).all()

    by_member: dict[int, list[sa.Row]] = {}
    for lot in lots:
        by_member.setdefault(lot.customer_id, []).append(lot)
    entry_count = sum(any(lot.releasing for lot in ls) + any(lot.expiring for lot in ls) for ls in by_member.values())
    entry_ids = iter(allocate_ids(session, _entries, entry_count))

    entries: list[tuple] = []
    uses: list[tuple] = []
    released_ids: list[int] = []
    expired_ids: list[int] = []
    events: list[tuple[str, int, dict]] = []
    balances: dict[int, list[int]] = {}
    for member in members:
        cid = member.customer_id
        available, pending, expired = member.available, member.pending, member.expired
        mine = by_member.get(cid, ())
        release = [lot for lot in mine if lot.releasing]
        if release:
            moved = sum(lot.remaining for lot in release)
            released_ids += [lot.id for lot in release]
            entries.append((next(entry_ids), cid, f"release:{cid}:{max(lot.id for lot in release)}", "release",
                            "Points became available", "system", None, moved, -moved, 0, 0, 0, 0,
                            {"lots": [lot.id for lot in release]}, now))
            available, pending = available + moved, pending - moved
        expire = [lot for lot in mine if lot.expiring]
        if expire:
            entry_id = next(entry_ids)
            took_available = sum(lot.remaining for lot in expire if lot.released or lot.releasing)
            took_pending = sum(lot.remaining for lot in expire) - took_available
            # member.expired only grows, so it makes each expiry run's key distinct (as ledger.settle)
            entries.append((entry_id, cid, f"expire:{cid}:{expired}", "expire", "Points expired", "system", None,
                            -took_available, -took_pending, 0, 0, 0, 0, {}, now))
            uses += [(cid, entry_id, lot.id, lot.remaining, None) for lot in expire]
            expired_ids += [lot.id for lot in expire]
            available, pending = available - took_available, pending - took_pending
            expired += took_available + took_pending
            if took_available or took_pending:
                events.append(("loyalty.points_changed", cid, {
                    "entry_id": entry_id, "kind": "expire", "change": -(took_available + took_pending),
                    "available": available, "pending": pending, "debt": member.debt}))
        balances[cid] = [available, pending, expired]

    insert_bulk(session, _entries, _ENTRY_COLUMNS, entries)
    insert_bulk(session, _uses, ("customer_id", "entry_id", "lot_id", "points", "of_use_id"), uses)
    if released_ids:
        session.execute(sa.update(_lots).where(ids_condition(_lots.c.id, "ids", dialect)).values(released=True),
                        {"ids": ids_value(released_ids, dialect)})
    if expired_ids:
        session.execute(sa.update(_lots).where(ids_condition(_lots.c.id, "ids", dialect)).values(remaining=0),
                        {"ids": ids_value(expired_ids, dialect)})
    due = next_due(session, ids_param, dialect)
    _update_members(session, [(*balances[cid], due.get(cid), now, cid) for cid in ids])
    at = utcnow()
    insert_bulk(session, _outbox, ("topic", "customer_id", "payload", "created_at"),
            [(topic, cid, payload, at) for topic, cid, payload in events])


def next_due(session: Session, ids_param: dict, dialect: str) -> dict[int, datetime]:
    """Each member's next time-driven change: the earliest return window end of an unreleased lot with points
    left, or the earliest expiry of a lot with points left (as `ledger._schedule`)."""
    rows = session.execute(
        sa.select(_lots.c.customer_id,
                  sa.func.min(sa.case((_lots.c.released.is_(False), _lots.c.available_at))).label("release"),
                  sa.func.min(_lots.c.expires_at).label("expiry"))
        .where(ids_condition(_lots.c.customer_id, "ids", dialect), _lots.c.remaining > 0)
        .group_by(_lots.c.customer_id), ids_param)
    due = {}
    for cid, release, expiry in rows:
        times = [t for t in (release, expiry) if t is not None]
        if times:
            due[cid] = min(times)
    return due


_MEMBER_COLUMNS = ("available", "pending", "expired", "next_due_at", "updated_at")


def insert_bulk(session: Session, table: sa.Table, columns: Sequence[str], rows: list[tuple]) -> None:
    """INSERT `rows`: on PostgreSQL one statement whatever their number (a column of values is one array
    parameter, read back with unnest); on SQLite one executemany (in-process, already cheap)."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        insert_rows(session, table, columns, rows)
        return
    session.connection().exec_driver_sql(_unnest_insert(table, tuple(columns)), _arrays(table, columns, rows))


def _update_members(session: Session, rows: list[tuple]) -> None:
    update_members(session, _MEMBER_COLUMNS, rows)


def update_members(session: Session, columns: Sequence[str], rows: list[tuple]) -> None:
    """Set `columns` of each member (rows end with the customer id): one UPDATE ... FROM unnest on
    PostgreSQL, an executemany on SQLite."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        update_rows(session, _members, columns, rows, key="customer_id")
        return
    session.connection().exec_driver_sql(_unnest_update(tuple(columns)),
                                         _arrays(_members, (*columns, "customer_id"), rows))


def _pg_type(column: sa.Column) -> tuple[str, str]:
    """(array type to bind, cast back to the column's type) of a column, for unnest."""
    kind = column.type
    if isinstance(kind, sa.JSON) or isinstance(getattr(kind, "impl", None), sa.JSON) or "JSON" in type(kind).__name__.upper():
        return "text[]", "::jsonb"
    if isinstance(kind, UTCDateTime):
        return "timestamptz[]", ""
    if isinstance(kind, sa.Boolean):
        return "boolean[]", ""
    if isinstance(kind, sa.Integer):
        return "bigint[]", ""
    return "text[]", ""


def _arrays(table: sa.Table, columns: Sequence[str], rows: list[tuple]) -> tuple[list, ...]:
    out = []
    for name, values in zip(columns, zip(*rows, strict=True), strict=True):
        array, cast = _pg_type(table.c[name])
        out.append(list(map(json_text, values)) if cast == "::jsonb" else list(values))
    return tuple(out)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@lru_cache(maxsize=8)
def _unnest_insert(table: sa.Table, columns: tuple[str, ...]) -> str:
    # Identifiers and types come from table metadata; the values are bound parameters.
    types = [_pg_type(table.c[c]) for c in columns]
    names = ", ".join(_quote(c) for c in columns)
    picks = ", ".join(f"v{i}{cast}" for i, (_, cast) in enumerate(types))
    arrays = ", ".join(f"%b::{array}" for array, _ in types)
    aliases = ", ".join(f"v{i}" for i in range(len(columns)))
    return f"INSERT INTO {_quote(table.name)} ({names}) SELECT {picks} FROM unnest({arrays}) AS v({aliases})"  # noqa: S608


@lru_cache(maxsize=8)
def _unnest_update(columns: tuple[str, ...]) -> str:
    every = (*columns, "customer_id")
    types = [_pg_type(_members.c[c]) for c in every]
    sets = ", ".join(f"{_quote(c)} = v.{_quote(c)}" for c in columns)
    arrays = ", ".join(f"%b::{array}" for array, _ in types)
    aliases = ", ".join(_quote(c) for c in every)
    return (f"UPDATE {_quote(_members.name)} AS m SET {sets} FROM unnest({arrays}) AS v({aliases}) "  # noqa: S608
            "WHERE m.customer_id = v.customer_id")
