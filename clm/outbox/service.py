"""Writing domain events and reading them in order, per consumer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.db.bulk import insert_rows
from clm.db.idlist import ids_table, ids_value
from clm.lib.clock import utcnow
from clm.outbox.models import OutboxCursor, OutboxEvent


def emit(session: Session, topic: str, customer_id: int | None, payload: dict[str, Any]) -> None:
    """Record one domain event in the caller's transaction."""
    emit_many(session, [(topic, customer_id, payload)])


def emit_many(session: Session, rows: Iterable[tuple[str, int | None, dict[str, Any]]]) -> None:
    now = utcnow()
    insert_rows(session, OutboxEvent.__table__, ("topic", "customer_id", "payload", "created_at"),
                [(t, c, p, now) for t, c, p in rows])


def emit_to_customers(session: Session, topic: str, groups: Sequence[tuple[Sequence[int], dict[str, Any]]]) -> None:
    """For each (customer ids, payload): the same event for each of those customers. One INSERT ... SELECT
    run for every group (executemany), the ids of a group bound as one parameter: no per-row work in
    Python (segment entries announce thousands of customers at once)."""
    groups = [(ids, payload) for ids, payload in groups if ids]
    if not groups:
        return
    dialect = session.get_bind().dialect.name
    session.execute(_insert_for_customers(dialect), [
        {"b_topic": topic, "customer_ids": ids_value(ids, dialect), "b_payload": payload, "b_created_at": utcnow()}
        for ids, payload in groups])


@lru_cache(maxsize=2)
def _insert_for_customers(dialect: str) -> sa.Insert:
    table = OutboxEvent.__table__
    ids = ids_table("customer_ids", dialect)
    rows = sa.select(sa.bindparam("b_topic", type_=sa.String), ids.c.value,
                     sa.bindparam("b_payload", type_=table.c.payload.type),
                     sa.bindparam("b_created_at", type_=table.c.created_at.type))
    return sa.insert(table).from_select(["topic", "customer_id", "payload", "created_at"], rows)


def read(session: Session, consumer: str, limit: int = 500, topics: list[str] | None = None) -> list[OutboxEvent]:
    """The next events after `consumer`'s cursor, oldest first. Call `advance` once they are handled."""
    last = session.scalar(sa.select(OutboxCursor.last_id).where(OutboxCursor.consumer == consumer)) or 0
    query = sa.select(OutboxEvent).where(OutboxEvent.id > last).order_by(OutboxEvent.id).limit(limit)
    if topics:
        query = query.where(OutboxEvent.topic.in_(topics))
    return list(session.scalars(query))


def advance(session: Session, consumer: str, last_id: int) -> None:
    cursor = session.get(OutboxCursor, consumer)
    if cursor is None:
        session.add(OutboxCursor(consumer=consumer, last_id=last_id, updated_at=utcnow()))
    elif last_id > cursor.last_id:
        cursor.last_id = last_id
    session.flush()
