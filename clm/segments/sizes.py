"""Segment sizes per day (`segment_sizes`): written by the segments sweep (today's count for every
segment, the last 30 days rebuilt from the membership history the first time a segment is seen), read
by the segment page's chart in one query."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.db.upsert import insert_for
from clm.segments.models import Segment, SegmentMember, SegmentSize

HISTORY_DAYS = 30
_m = SegmentMember.__table__
_z = SegmentSize.__table__
_seg = Segment.__table__


def local_day(at: datetime, timezone: str) -> date:
    return at.astimezone(ZoneInfo(timezone)).date()


def _day_end(day: date, timezone: str) -> datetime:
    """The UTC instant at which `day` (business time zone) ends."""
    return datetime.combine(day + timedelta(days=1), time(0), ZoneInfo(timezone)).astimezone(UTC)


def record_sizes(session: Session, now: datetime, timezone: str, segment_ids: Iterable[int] | None = None) -> int:
    """Write today's size of every segment (or of these); a segment without any recorded day gets its
    last HISTORY_DAYS days from the membership history first. Returns the rows written."""
    query = sa.select(_seg.c.id, _seg.c.size, _seg.c.created_at)
    if segment_ids is not None:
        query = query.where(_seg.c.id.in_(list(segment_ids)))
    segments = session.execute(query).all()
    if not segments:
        return 0
    known = set(session.scalars(sa.select(_z.c.segment_id).where(_z.c.segment_id.in_([s.id for s in segments]))
                                .group_by(_z.c.segment_id)))
    today = local_day(now, timezone)
    rows = [{"segment_id": s.id, "day": today, "members": s.size} for s in segments]
    for s in segments:
        if s.id not in known:
            rows += _history(session, s.id, s.size, local_day(s.created_at, timezone), today, timezone)
    stmt = insert_for(session, _z)
    session.execute(stmt.on_conflict_do_update(index_elements=["segment_id", "day"],
                                               set_={"members": stmt.excluded.members}), rows)
    return len(rows)


def _history(session: Session, segment_id: int, size: int, created: date, today: date,
             timezone: str) -> list[dict]:
    """The size at the end of each of the days before today, from who entered and left since: entries and
    exits of one re-check share one instant, so grouping by instant reads few rows."""
    first = max(today - timedelta(days=HISTORY_DAYS - 1), created)
    if first >= today:
        return []
    since = _day_end(first, timezone)
    entered = session.execute(sa.select(_m.c.entered_at, sa.func.count()).where(
        _m.c.segment_id == segment_id, _m.c.entered_at > since).group_by(_m.c.entered_at)).all()
    exited = session.execute(sa.select(_m.c.exited_at, sa.func.count()).where(
        _m.c.segment_id == segment_id, _m.c.exited_at > since).group_by(_m.c.exited_at)).all()
    out = []
    day = first
    while day < today:
        end = _day_end(day, timezone)
        members = size - sum(n for at, n in entered if at > end) + sum(n for at, n in exited if at > end)
        out.append({"segment_id": segment_id, "day": day, "members": members})
        day += timedelta(days=1)
    return out


def size_over_time(session: Session, segment: Segment, days: list[date]) -> list[int | None]:
    """The recorded size on each of `days` (ascending), read in one query; a day without a record carries
    the one before it, the last day (today) is the live size, days before the first record are None."""
    recorded = dict(session.execute(sa.select(_z.c.day, _z.c.members).where(
        _z.c.segment_id == segment.id, _z.c.day <= days[-1]).where(
        _z.c.day >= sa.select(sa.func.coalesce(sa.func.max(_z.c.day), days[0])).where(
            _z.c.segment_id == segment.id, _z.c.day <= days[0]).scalar_subquery())).all())
    before = [d for d in recorded if d < days[0]]
    last = recorded[max(before)] if before else None
    out: list[int | None] = []
    for day in days:
        last = recorded.get(day, last)
        out.append(last)
    out[-1] = segment.size
    return out
