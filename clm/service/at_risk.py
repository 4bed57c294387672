"""The "SLA at risk" view: open tickets with a running SLA clock due before a moment (overdue included),
newest first, paged by the last ticket id.

It is read in two index-only steps instead of one join, so that its cost does not depend on where the due
tickets lie among the others: (1) the ids of the tickets with a due running clock, newest first, from the
partial index on running clocks (`ix_service_sla_timers_running_ticket`: ticket id and due time of the
clocks in state running, a small part of all clocks); (2) those tickets by primary key, with the view's
filters, until a page is full. A single `IN (subquery) ORDER BY id DESC LIMIT 50` let PostgreSQL walk the
tickets' primary key backwards from the newest ticket and join as it went: quick while due tickets are
spread evenly, but when they are the oldest open ones (an overdue backlog, the usual case) it read most of
the million tickets first (465 ms measured, see docs/benchmarks.md).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.service.models import OPEN_STATUSES, SlaTimer, Ticket

FIRST_CHUNK = 200
MAX_CHUNK = 20_000
COUNT_CAP = 1000  # the view's count is exact up to this, then "1,000+"


def due_ticket_ids(session: Session, before: datetime, below: int | None, limit: int) -> list[int]:
    """Ids of tickets with a running clock due at or before `before`, below `below`, newest first."""
    query = sa.select(SlaTimer.ticket_id).where(SlaTimer.state == "running", SlaTimer.due_at <= before)
    if below is not None:
        query = query.where(SlaTimer.ticket_id < below)
    return list(session.scalars(query.group_by(SlaTimer.ticket_id).order_by(SlaTimer.ticket_id.desc()).limit(limit)))


def count(session: Session, before: datetime, cap: int | None = None) -> int:
    """How many open, unmerged tickets have a running clock due at or before `before` (the view's count), exact
    up to `cap` (COUNT_CAP); `cap + 1` means more than `cap` (shown "1,000+"). Read like the page: the due clocks' ticket
    ids, newest first, from the partial index of running clocks, then those tickets by primary key, a chunk at
    a time until the count passes `cap`, so it costs about `cap` ticket reads however many are due. Counting
    all in one statement let PostgreSQL read every open ticket (100,000 at 1,000,000 tickets: 120 ms warm,
    990 ms cold, on every page load), whichever way it was written."""
    cap = COUNT_CAP if cap is None else cap
    found, below, chunk = 0, None, cap + 1
    while found <= cap:
        ids = due_ticket_ids(session, before, below, chunk)
        if not ids:
            break
        found += session.scalar(sa.select(sa.func.count()).select_from(Ticket).where(
            Ticket.id.in_(ids), Ticket.merged_into_id.is_(None), Ticket.status.in_(OPEN_STATUSES))) or 0
        if len(ids) < chunk:
            break
        below, chunk = ids[-1], min(chunk * 4, MAX_CHUNK)
    return min(found, cap + 1)


def page(session: Session, tickets: sa.Select, before: datetime, *, after: int | None = None, limit: int = 50,
         tag: str | None = None) -> list[Ticket]:
    """Up to `limit` tickets of `tickets` (a select of Ticket with the view's other filters) that have a due
    running clock, newest first, with ids below `after`; `tag` is checked on the rows (tags are JSON)."""
    found: list[Ticket] = []
    below, chunk = after, max(FIRST_CHUNK, limit)
    while len(found) < limit:
        ids = due_ticket_ids(session, before, below, chunk)
        if not ids:
            break
        query = tickets.where(Ticket.id.in_(ids)).order_by(Ticket.id.desc())
        if tag is None:  # only the page's rest is loaded (a tag is checked on the rows: all of the chunk)
            query = query.limit(limit - len(found))
        found += [t for t in session.scalars(query) if tag is None or tag in (t.tags or [])]
        if len(ids) < chunk:
            break
        below, chunk = ids[-1], min(chunk * 4, MAX_CHUNK)
    return found[:limit]
