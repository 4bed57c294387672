"""Readable codes (LD-000123) from counters that are safe under concurrency on both databases.

The counter row is bumped with one UPDATE ... RETURNING: on PostgreSQL the row lock makes concurrent
transactions take turns (the second waits for the first to commit or roll back, then reads the new
value), on SQLite writers are serialised anyway. A rolled-back transaction gives its numbers back,
so codes have no gaps from failed submissions; they never repeat, even after a lead is erased.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.db.upsert import insert_for
from clm.sales.models import CodeSequence

PREFIXES = {"lead": "LD", "opportunity": "OP"}
_table = CodeSequence.__table__


def next_numbers(session: Session, name: str, count: int = 1) -> list[int]:
    """`count` consecutive numbers of the counter `name`, reserved in the caller's transaction."""
    if count < 1:
        return []
    session.execute(insert_for(session, _table).values(name=name, value=0)
                    .on_conflict_do_nothing(index_elements=["name"]))
    last = session.execute(
        sa.update(_table).where(_table.c.name == name).values(value=_table.c.value + count)
        .returning(_table.c.value)
    ).scalar_one()
    return list(range(last - count + 1, last + 1))


def format_code(name: str, number: int) -> str:
    return f"{PREFIXES[name]}-{number:06d}"


def next_codes(session: Session, name: str, count: int = 1) -> list[str]:
    return [format_code(name, n) for n in next_numbers(session, name, count)]
