"""Reading a log table (the outbox, the events) by id without skipping rows that commit late.

On PostgreSQL ids come from a sequence when a row is inserted, not when it commits: a transaction
that took id 10 may commit after another that took id 11. A reader that saw 11 and moved its cursor
past 10 would never read 10. So each read also looks back behind the cursor at rows written in the
last `grace` seconds (by their own clock column) and handles those it has not handled yet. This
assumes a transaction commits within `grace` of writing its rows (ingestion and imports commit in
small batches). Reactions are idempotent, so a row handled twice (after a restart) is harmless.
SQLite has one writer at a time, so there ids commit in order and the look-back finds nothing new.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.db.upsert import insert_for
from clm.lib.clock import utcnow
from clm.outbox.models import OutboxCursor

_cursors = OutboxCursor.__table__


class Tail:
    def __init__(self, consumer: str, table: sa.Table, time_column: str, columns: list[str],
                 where: sa.ColumnElement | None = None, grace: timedelta = timedelta(seconds=30),
                 lookback: int = 20_000):
        self.consumer = consumer
        self.table = table
        self.time = table.c[time_column]
        self.columns = [table.c.id, *(table.c[c] for c in columns)]
        self.where = where if where is not None else sa.true()
        self.grace = grace
        self.lookback = lookback
        self._handled: set[int] = set()  # ids at or behind the cursor handled by this process
        self._reach = self._read_from = 0  # where the last read started and how far it looked

    def position(self, session: Session) -> int:
        return session.scalar(sa.select(_cursors.c.last_id).where(_cursors.c.consumer == self.consumer)) or 0

    def read(self, session: Session, limit: int = 1000, clock: datetime | None = None) -> list[sa.Row]:
        """Rows after the cursor (up to `limit`), plus recent rows behind it not handled yet."""
        cursor = self._read_from = self.position(session)
        horizon = (clock or utcnow()) - self.grace
        recent = set(session.scalars(
            sa.select(self.table.c.id).where(self.table.c.id > cursor - self.lookback, self.table.c.id <= cursor,
                                             self.time >= horizon, self.where)
        ))
        late = sorted(recent - self._handled)
        rows = list(session.execute(sa.select(*self.columns).where(self.table.c.id.in_(late)).order_by(self.table.c.id)
                                    )) if late else []
        # Read up to the head as it is now; when fewer than `limit` rows match, the cursor may move to the
        # head, so rows other consumers care about (stage.changed...) are scanned past only once.
        head = session.scalar(sa.select(sa.func.max(self.table.c.id)).where(self.table.c.id > cursor))
        if head is None:
            self._reach = cursor
            return rows
        fresh = session.execute(
            sa.select(*self.columns).where(self.table.c.id > cursor, self.table.c.id <= head, self.where)
            .order_by(self.table.c.id).limit(limit)
        ).all()
        self._reach = head if len(fresh) < limit else fresh[-1].id
        return rows + fresh

    def advance(self, session: Session, rows: list[sa.Row]) -> None:
        """Record `rows` (what `read` returned) as handled, in the transaction that applied their effects."""
        ids = [r.id for r in rows]
        if ids:
            sa.event.listen(session, "after_commit", lambda _s: self._remember(ids), once=True)
        last = max([self._reach, *ids])
        if last <= self._read_from:
            return  # nothing new: no write (an idle worker polls often)
        stmt = insert_for(session, _cursors).values(consumer=self.consumer, last_id=last, updated_at=utcnow())
        stmt = stmt.on_conflict_do_update(
            index_elements=["consumer"],
            set_={"last_id": sa.case((_cursors.c.last_id < last, last), else_=_cursors.c.last_id),
                  "updated_at": utcnow()},
        )
        session.execute(stmt)

    def _remember(self, ids: list[int]) -> None:
        self._handled.update(ids)
        floor = max(self._handled) - self.lookback
        self._handled = {i for i in self._handled if i > floor}
