"""Folding customer profiles into others, recording what moved.

Merges are applied in bulk: identity resolution decides them while it reads a request's messages
and applies them all at the end with one statement per table, because a merge per message (an
anonymous visitor logging in) would otherwise cost a dozen statements each.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.models import Customer, CustomerMerge, Identity
from clm.customers.profile import search_text
from clm.db.base import Base
from clm.lib.clock import utcnow
from clm.outbox.service import emit_many

_PROFILE_FIELDS = ("external_id", "email", "phone", "full_name", "given_name", "family_name", "birthday",
                   "gender", "city", "owner_id", "lifecycle_stage")


def _customer_tables() -> list[tuple[sa.Table, type | None]]:
    """Every table with a customer_id, and its mapped class (which may know how to merge its rows)."""
    classes = {m.local_table: m.class_ for m in Base.registry.mappers}
    out = []
    for table in Base.metadata.sorted_tables:
        if table.name in ("customers", "customer_merges") or "customer_id" not in table.c:
            continue
        out.append((table, classes.get(table)))
    return out


def merge_customers(session: Session, winner_id: int, loser_id: int, reason: str) -> CustomerMerge:
    """Move everything of `loser` onto `winner`; the loser stays as a tombstone pointing at the winner."""
    if winner_id == loser_id:
        raise ValueError("cannot merge a customer into itself")
    return merge_many(session, [(winner_id, loser_id, reason)])[0]


def merge_many(session: Session, merges: list[tuple[int, int, str]]) -> list[CustomerMerge]:
    """Apply (winner, loser, reason) merges; every loser must be distinct and no winner a loser.

    Tables whose rows are keyed by customer (rollups) define `merge_customers(session, pairs)` (or the
    one-pair `merge_customer(session, winner, loser)`); every other table with a customer_id is
    re-pointed with one executemany UPDATE.
    """
    merges = [(w, lo, r) for w, lo, r in merges if w != lo]
    if not merges:
        return []
    losers = [lo for _, lo, _ in merges]
    winners = {w for w, _, _ in merges}
    if len(set(losers)) != len(losers) or winners & set(losers):
        raise ValueError("each customer can be merged away once per call, and not into a merged customer")
    ids = winners | set(losers)
    people = {c.id: c for c in session.scalars(
        sa.select(Customer).where(Customer.id.in_(ids)).with_for_update().execution_options(populate_existing=True)
    )}
    missing = ids - set(people)
    if missing:
        raise LookupError(f"customer {min(missing)} does not exist")
    session.flush()
    moved: dict[int, dict[str, Any]] = {lo: {"identities": [], "rows": {}, "fields": []} for lo in losers}
    idt = Identity.__table__
    for cid, kind, value in session.execute(
        sa.select(idt.c.customer_id, idt.c.kind, idt.c.value).where(idt.c.customer_id.in_(losers))
    ):
        moved[cid]["identities"].append({"kind": kind, "value": value})
    pairs = [(w, lo) for w, lo, _ in merges]
    tables = _customer_tables()
    # One query finds which tables hold anything of the losers (most hold nothing of a new visitor);
    # only those are touched.
    held, touched = _rows_held(session, [table for table, _ in tables], losers)
    for table, cls in tables:
        if table.name not in touched:
            continue
        if cls is not None and hasattr(cls, "merge_customers"):
            counts = cls.merge_customers(session, pairs)
        elif cls is not None and hasattr(cls, "merge_customer"):
            counts = {lo: cls.merge_customer(session, w, lo) for w, lo in pairs}
        else:
            counts = held.get(table.name, {})
            if counts:
                session.execute(
                    sa.update(table).where(table.c.customer_id == sa.bindparam("loser"))
                    .values(customer_id=sa.bindparam("winner")),
                    [{"winner": w, "loser": lo} for w, lo in pairs if lo in counts],
                )
        for loser, count in counts.items():
            if count:
                moved[loser]["rows"][table.name] = count
    by_winner: dict[int, list[int]] = defaultdict(list)
    for w, lo in pairs:
        by_winner[w].append(lo)
    for winner_id, loser_ids in by_winner.items():
        _fold_profiles(people[winner_id], [people[lo] for lo in loser_ids], moved)
    session.flush()
    # Earlier tombstones of the losers now point straight at their winners.
    session.execute(
        sa.update(Customer.__table__).where(Customer.__table__.c.merged_into_id == sa.bindparam("loser"))
        .values(merged_into_id=sa.bindparam("winner")),
        [{"winner": w, "loser": lo} for w, lo in pairs],
    )
    now = utcnow()
    records = [CustomerMerge(winner_id=w, loser_id=lo, reason=r, moved=moved[lo], created_at=now)
               for w, lo, r in merges]
    session.add_all(records)
    emit_many(session, [("customer.merged", w, {"winner_id": w, "loser_id": lo, "reason": r}) for w, lo, r in merges])
    session.flush()
    return records


def _customer_columns(table: sa.Table) -> list[sa.Column]:
    """`customer_id` and every other column of `table` that refers to a customer (a referrer, ...)."""
    others = [c for c in table.c if c.name != "customer_id"
              and any(fk.column.table.name == "customers" for fk in c.foreign_keys)]
    return [table.c.customer_id, *others]


def _rows_held(session: Session, tables: list[sa.Table],
               customers: list[int]) -> tuple[dict[str, dict[int, int]], set[str]]:
    """Rows per table and customer (by `customer_id`), and the tables where any column refers to one of
    `customers`; for every table in one statement."""
    if not tables:
        return {}, set()
    dialect = session.get_bind().dialect.name
    sql, selects = _rows_held_sql(tuple(tables), len(customers), dialect)
    held: dict[str, dict[int, int]] = {}
    touched: set[str] = set()
    for name, column, customer_id, count in session.connection().exec_driver_sql(sql, tuple(customers) * selects):
        touched.add(name)
        if column == "customer_id":
            held.setdefault(name, {})[customer_id] = count
    return held, touched


@lru_cache(maxsize=64)
def _rows_held_sql(tables: tuple[sa.Table, ...], count: int, dialect: str) -> tuple[str, int]:
    """The statement for `_rows_held`, written once per table set and number of customers (building and
    compiling a forty-way UNION through SQLAlchemy on every merge cost more than running it). Names
    come from the table metadata; the customer ids are bound parameters."""
    mark = "?" if dialect == "sqlite" else "%s"
    marks = ", ".join([mark] * count)

    def quote(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    parts = []
    for table in tables:
        for column in _customer_columns(table):
            parts.append(f"SELECT '{table.name}', '{column.name}', {quote(column.name)}, count(*) "  # noqa: S608
                         f"FROM {quote(table.name)} WHERE {quote(column.name)} IN ({marks}) "
                         f"GROUP BY {quote(column.name)}")
    return " UNION ALL ".join(parts), len(parts)


def _fold_profiles(winner: Customer, losers: list[Customer], moved: dict[int, dict[str, Any]]) -> None:
    for loser in losers:
        external_id = loser.external_id
        loser.external_id = None
        for field in _PROFILE_FIELDS:
            value = external_id if field == "external_id" else getattr(loser, field)
            if getattr(winner, field) in (None, "") and value not in (None, ""):
                setattr(winner, field, value)
                moved[loser.id]["fields"].append(field)
        if loser.traits:
            winner.traits = {**loser.traits, **(winner.traits or {})}
        for attr, pick in (("first_seen_at", min), ("last_seen_at", max)):
            values = [v for v in (getattr(winner, attr), getattr(loser, attr)) if v is not None]
            if values:
                setattr(winner, attr, pick(values))
        loser.merged_into_id = winner.id
        loser.email = loser.phone = None
        loser.search_text = ""
    winner.search_text = search_text(winner)
