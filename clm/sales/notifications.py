"""Staff notifications: what a task's reminder or a late first contact tells the people concerned.

A notification is a row shown in the dashboard (the sales pages' bell); `key` is unique, so a job that
runs twice (at-least-once delivery) notifies once.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.db.upsert import insert_for
from clm.lib.clock import utcnow
from clm.sales.models import StaffNotification


def notify(session: Session, key: str, user_ids: list[int], kind: str, text: dict[str, str], link: str | None,
           now: datetime | None = None) -> int:
    """Notify each user once per `key`; the number of new notifications."""
    now = now or utcnow()
    rows = [{"key": f"{key}:u{user_id}"[:120], "user_id": user_id, "kind": kind, "text": text, "link": link,
             "created_at": now} for user_id in dict.fromkeys(user_ids)]
    if not rows:
        return 0
    before = session.scalar(sa.select(sa.func.count()).select_from(StaffNotification)
                            .where(StaffNotification.key.in_([r["key"] for r in rows])))
    session.execute(insert_for(session, StaffNotification).on_conflict_do_nothing(index_elements=["key"]), rows)
    return len(rows) - int(before or 0)


def unread(session: Session, user_id: int, limit: int = 20) -> list[StaffNotification]:
    return list(session.scalars(sa.select(StaffNotification).where(
        StaffNotification.user_id == user_id, StaffNotification.read_at.is_(None))
        .order_by(StaffNotification.created_at.desc(), StaffNotification.id.desc()).limit(limit)))


def mark_read(session: Session, user_id: int, now: datetime | None = None) -> int:
    """Mark all of the user's notifications read; how many were unread."""
    result = session.execute(sa.update(StaffNotification).where(
        StaffNotification.user_id == user_id, StaffNotification.read_at.is_(None)).values(read_at=now or utcnow()))
    return result.rowcount or 0
