"""Broadcasts: one template sent to the members of a segment, now or at a set time, and its report.

A broadcast is a draft until it is scheduled; scheduling queues a `broadcasts.send` job due at its
time ("send now" is a schedule for now). That job reads the segment's members at that moment in
chunks and queues their messages through `enqueue_many` (so every guardrail applies: consent,
suppressions, the frequency cap, quiet hours), committing chunk by chunk. Each recipient's message
key is `broadcast:<id>:<customer id>`, so a worker that dies half-way leaves nothing twice: the job
runs again and skips who is queued already. The broadcast stays `sending` while any of its messages
waits in the outbox (a `broadcasts.finish` job looks again later) and becomes `sent` when none does.

Cancelling a scheduled broadcast cancels its job; cancelling one that is sending stops the queueing
at the next chunk and suppresses its messages that have not gone out ("the broadcast was cancelled").

The report counts messages by what happened to them (from each message's history, so a message that
was opened and then clicked counts as sent, delivered, opened and clicked) and the orders its
recipients placed within the attribution window after their message went out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.channels.models import (
    BROADCAST_STATUSES,
    PURPOSES,
    SENDING,
    SUPPRESSED,
    WAITING,
    Broadcast,
    Message,
)
from clm.channels.rendering import InlineRenderer
from clm.channels.status import record_status
from clm.lib import cursor
from clm.lib.clock import as_utc, utcnow
from clm.lib.errors import FieldError, NotFound

SEND_JOB = "broadcasts.send"
FINISH_JOB = "broadcasts.finish"
DRAFT, SCHEDULED, SENDING_B, SENT_B, CANCELLED = BROADCAST_STATUSES
EDITABLE = (DRAFT, SCHEDULED)
CHUNK = 2000  # recipients queued per transaction
FINISH_FIRST = 60.0  # seconds before the first look at whether everything left the outbox
FINISH_MAX = 3600.0  # never look less often than hourly
CANCELLED_REASON = "the broadcast was cancelled"


def idempotency_prefix(broadcast_id: int) -> str:
    return f"broadcast:{broadcast_id}"


def _settings(settings):
    if settings is not None:
        return settings
    from clm.config import get_settings

    return get_settings()


# --- drafts ----------------------------------------------------------------------------------------


def _check_name(name: Any) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > 120 or "\x00" in name:
        raise FieldError("name", "must be 1 to 120 characters")
    return name


def _check_template(session: Session, key: Any) -> str:
    from clm.channels.templates import get_template

    if not isinstance(key, str) or not key.strip():
        raise FieldError("template_key", "choose a template")
    try:
        return get_template(session, key.strip()).channel
    except NotFound:
        raise FieldError("template_key", f"there is no template {key!r}", "not_found") from None


def _check_segment(session: Session, segment_id: Any) -> int:
    from clm.segments.models import Segment

    if not isinstance(segment_id, int) or isinstance(segment_id, bool) or session.get(Segment, segment_id) is None:
        raise FieldError("segment_id", f"there is no segment {segment_id!r}", "not_found")
    return segment_id


def _check_days(days: Any, settings) -> int:
    if days is None:
        return settings.broadcast_attribution_days
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 90:
        raise FieldError("attribution_days", "must be a whole number of days from 1 to 90")
    return days


def create_broadcast(session: Session, *, name: str, template_key: str, segment_id: int,
                     purpose: str = "marketing", context: dict | None = None, attribution_days: int | None = None,
                     created_by: str | None = None, settings=None, now: datetime | None = None) -> Broadcast:
    """A draft: nothing is sent until it is scheduled (`schedule`). The channel is the template's."""
    settings = _settings(settings)
    now = now or utcnow()
    if purpose not in PURPOSES:
        raise FieldError("purpose", "must be transactional or marketing")
    if context is not None and not isinstance(context, dict):
        raise FieldError("context", "must be an object")
    broadcast = Broadcast(name=_check_name(name), channel=_check_template(session, template_key),
                          template_key=template_key.strip(), segment_id=_check_segment(session, segment_id),
                          purpose=purpose, context=context or {}, status=DRAFT,
                          attribution_days=_check_days(attribution_days, settings), recipients=0,
                          created_by=created_by, created_at=now, updated_at=now)
    session.add(broadcast)
    session.flush()
    return broadcast


def get_broadcast(session: Session, broadcast_id: int, *, lock: bool = False) -> Broadcast:
    postgres = session.get_bind().dialect.name == "postgresql"
    broadcast = session.get(Broadcast, broadcast_id, with_for_update=lock and postgres, populate_existing=lock)
    if broadcast is None:
        raise NotFound("broadcast", broadcast_id)
    return broadcast


def list_broadcasts(session: Session, status: str | None = None, *, after: str | None = None,
                    limit: int = 50) -> tuple[list[Broadcast], str | None]:
    """One page of broadcasts, newest first, and the cursor of the next page (None on the last);
    `after` is the previous page's cursor (FieldError on `cursor` when it is not one)."""
    query = sa.select(Broadcast)
    if status:
        query = query.where(Broadcast.status == status)
    return cursor.page_newest_first(session, query, Broadcast.created_at, Broadcast.id, after, limit)


def update_broadcast(session: Session, broadcast_id: int, *, name: str | None = None, template_key: str | None = None,
                     segment_id: int | None = None, purpose: str | None = None, context: dict | None = None,
                     attribution_days: int | None = None, now: datetime | None = None) -> Broadcast:
    """Change a draft or a scheduled broadcast (its time: `schedule` again)."""
    broadcast = get_broadcast(session, broadcast_id, lock=True)
    if broadcast.status not in EDITABLE:
        raise FieldError("status", f"a {broadcast.status} broadcast cannot be changed", "conflict")
    if name is not None:
        broadcast.name = _check_name(name)
    if template_key is not None:
        broadcast.channel = _check_template(session, template_key)
        broadcast.template_key = template_key.strip()
    if segment_id is not None:
        broadcast.segment_id = _check_segment(session, segment_id)
    if purpose is not None:
        if purpose not in PURPOSES:
            raise FieldError("purpose", "must be transactional or marketing")
        broadcast.purpose = purpose
    if context is not None:
        if not isinstance(context, dict):
            raise FieldError("context", "must be an object")
        broadcast.context = context
    if attribution_days is not None:
        broadcast.attribution_days = _check_days(attribution_days, None)
    broadcast.updated_at = now or utcnow()
    session.flush()
    return broadcast


def delete_broadcast(session: Session, broadcast_id: int) -> None:
    """Only a draft (or a cancelled broadcast that never sent anything) may be deleted."""
    broadcast = get_broadcast(session, broadcast_id, lock=True)
    sent_any = session.scalar(sa.select(Message.id).where(Message.broadcast_id == broadcast_id).limit(1))
    if broadcast.status not in (DRAFT, CANCELLED) or sent_any is not None:
        raise FieldError("status", "only a draft, or a cancelled broadcast that queued nothing, can be deleted",
                         "conflict")
    session.delete(broadcast)
    session.flush()


# --- scheduling and cancelling ---------------------------------------------------------------------


def schedule(session: Session, broadcast_id: int, send_at: datetime | None = None, *,
             now: datetime | None = None) -> Broadcast:
    """Queue the broadcast's send job for `send_at` (None: now). A scheduled broadcast is moved to the
    new time. The caller commits; the worker does the sending."""
    from clm.jobs import queue

    now = now or utcnow()
    broadcast = get_broadcast(session, broadcast_id, lock=True)
    if broadcast.status not in EDITABLE:
        raise FieldError("status", f"a {broadcast.status} broadcast cannot be scheduled", "conflict")
    if send_at is not None:
        if send_at.tzinfo is None:
            raise FieldError("send_at", "give a time with its time zone")
        send_at = as_utc(send_at)
        if send_at < now - timedelta(minutes=1):
            raise FieldError("send_at", "is in the past; leave it empty to send now")
    if broadcast.segment_id is None:
        raise FieldError("segment_id", "the segment was deleted; choose another")
    _check_template(session, broadcast.template_key)
    if broadcast.job_id is not None:
        _cancel_job(session, broadcast.job_id, now)
    when = max(send_at or now, now)
    job = queue.enqueue(session, SEND_JOB, {"broadcast_id": broadcast.id}, run_at=when, max_attempts=10, now=now,
                        unique_key=f"{SEND_JOB}:{broadcast.id}:{when.isoformat()}")
    broadcast.status, broadcast.status_reason = SCHEDULED, None
    broadcast.send_at, broadcast.job_id, broadcast.updated_at = when, job.id, now
    session.flush()
    return broadcast


def _cancel_job(session: Session, job_id: int, now: datetime) -> None:
    from clm.jobs import queue

    try:
        queue.cancel(session, job_id, now)
    except NotFound:
        pass


def unschedule(session: Session, broadcast_id: int, *, now: datetime | None = None) -> Broadcast:
    """Back to a draft: the scheduled send job is cancelled (a draft stays as it is)."""
    now = now or utcnow()
    broadcast = get_broadcast(session, broadcast_id, lock=True)
    if broadcast.status not in EDITABLE:
        raise FieldError("status", f"a {broadcast.status} broadcast is not scheduled", "conflict")
    if broadcast.status == DRAFT:
        return broadcast
    _cancel_job(session, broadcast.job_id, now)
    broadcast.status, broadcast.job_id, broadcast.updated_at = DRAFT, None, now
    session.flush()
    return broadcast


def cancel(session: Session, broadcast_id: int, *, now: datetime | None = None) -> Broadcast:
    """Stop it: nothing more is queued, and its messages still waiting in the outbox are suppressed.
    Messages already handed to a provider stay as they are."""
    now = now or utcnow()
    broadcast = get_broadcast(session, broadcast_id, lock=True)
    if broadcast.status not in (DRAFT, SCHEDULED, SENDING_B):
        raise FieldError("status", f"a {broadcast.status} broadcast cannot be cancelled", "conflict")
    if broadcast.job_id is not None:
        _cancel_job(session, broadcast.job_id, now)
    stopped = suppress_waiting(session, broadcast.id, now)
    broadcast.status, broadcast.job_id = CANCELLED, None
    broadcast.status_reason = f"cancelled; {stopped} waiting messages were not sent" if stopped else "cancelled"
    broadcast.finished_at = broadcast.updated_at = now
    session.flush()
    return broadcast


def suppress_waiting(session: Session, broadcast_id: int, now: datetime) -> int:
    """The broadcast's messages not yet handed to a provider become `suppressed`; their send jobs then skip."""
    postgres = session.get_bind().dialect.name == "postgresql"
    query = sa.select(Message).where(Message.broadcast_id == broadcast_id, Message.status.in_(WAITING))
    waiting = list(session.scalars(query.with_for_update(skip_locked=True) if postgres else query))
    for message in waiting:
        message.deferred_until = None
        record_status(session, message, SUPPRESSED, reason=CANCELLED_REASON, at=now, force=True)
    return len(waiting)


# --- the worker's side -----------------------------------------------------------------------------


def _members_after(session: Session, segment_id: int, after: int, limit: int) -> list[int]:
    from clm.segments.models import SegmentMember

    return list(session.scalars(
        sa.select(SegmentMember.customer_id)
        .where(SegmentMember.segment_id == segment_id, SegmentMember.exited_at.is_(None),
               SegmentMember.customer_id > after)
        .order_by(SegmentMember.customer_id).limit(limit)))


def run_send(session: Session, broadcast_id: int, *, settings=None, now: datetime | None = None,
             heartbeat=None, chunk: int = CHUNK) -> str:
    """The `broadcasts.send` job: queue a message for every current member of the segment, committing
    per chunk (`heartbeat()` between chunks renews the job's lease). Returns what happened."""
    from clm.channels.rendering import renderer_for

    settings = _settings(settings)
    clock = (lambda: now) if now is not None else utcnow
    broadcast = session.get(Broadcast, broadcast_id, with_for_update=session.get_bind().dialect.name == "postgresql")
    if broadcast is None or broadcast.status not in (SCHEDULED, SENDING_B) or broadcast.queued_at is not None:
        session.commit()
        return "skipped"
    if broadcast.segment_id is None:
        broadcast.status, broadcast.status_reason = CANCELLED, "the segment was deleted before the broadcast was sent"
        broadcast.finished_at = broadcast.updated_at = clock()
        session.commit()
        return "cancelled"
    broadcast.status, broadcast.job_id = SENDING_B, None
    broadcast.started_at = broadcast.started_at or clock()
    broadcast.updated_at = clock()
    segment_id, template_key, channel = broadcast.segment_id, broadcast.template_key, broadcast.channel
    purpose, context = broadcast.purpose, dict(broadcast.context or {})
    session.commit()
    # One set of render processes for every chunk of a large segment (started once: clm.channels.rendering).
    renderer = renderer_for(_segment_size(session, segment_id), getattr(settings, "render_processes", None))
    try:
        return _queue_members(session, broadcast_id, segment_id, template_key, channel, purpose, context, settings,
                              clock, heartbeat, chunk, renderer)
    finally:
        renderer.close()


def _segment_size(session: Session, segment_id: int) -> int:
    from clm.segments.models import Segment

    return session.scalar(sa.select(Segment.size).where(Segment.id == segment_id)) or 0


def _queue_members(session: Session, broadcast_id: int, segment_id: int, template_key: str, channel: str,
                   purpose: str, context: dict, settings, clock, heartbeat, chunk: int, renderer) -> str:
    """One transaction per chunk. With render processes on PostgreSQL, the members of the next chunks are
    read (and their rendering started) while the current one renders, and written in a later transaction:
    `ahead` chunks wait read but unwritten (see clm.channels.bulk). A cancel or a crash drops them unwritten,
    like the members not read yet; the job run again reads them again."""
    from clm.channels.bulk import BulkQueue
    from clm.db.engine import for_writing
    from clm.jobs import queue

    postgres = session.get_bind().dialect.name == "postgresql"
    ahead = renderer.workers if postgres and not isinstance(renderer, InlineRenderer) else 0
    after, members_left, bulk = 0, True, None
    while True:
        for_writing(session)
        # Locked for the chunk (PostgreSQL): a concurrent `cancel` waits, then suppresses this chunk too.
        current = session.get(Broadcast, broadcast_id, populate_existing=True, with_for_update=postgres)
        if current is None or current.status != SENDING_B:
            session.commit()
            return "cancelled"  # cancelled meanwhile: what was queued was suppressed by `cancel`
        try:
            if bulk is None:
                bulk = BulkQueue(session, channel=channel, template_key=template_key,
                                 idempotency_prefix=idempotency_prefix(broadcast_id), purpose=purpose,
                                 context=context, broadcast_id=broadcast_id, settings=settings, renderer=renderer)
            if members_left:
                ids = _members_after(session, segment_id, after, chunk)
                if ids:
                    bulk.read(ids, now=clock())
                    after = ids[-1]
                members_left = bool(ids)
            if not members_left and not bulk.pending:
                break
            # One chunk written per transaction; while members are read, `ahead` more wait rendered or rendering.
            bulk.write(keep=max(len(bulk.pending) - 1, ahead if members_left else 0))
        except (FieldError, NotFound) as exc:  # the template was deleted or changed channel meanwhile
            session.rollback()
            for_writing(session)
            current = session.get(Broadcast, broadcast_id, populate_existing=True)
            current.status = CANCELLED
            current.status_reason = f"stopped: {getattr(exc, 'message', exc)}"
            current.finished_at = current.updated_at = clock()
            session.commit()
            return "cancelled"
        if heartbeat is not None:
            heartbeat()  # in this chunk's transaction
        session.commit()
    current = session.get(Broadcast, broadcast_id, populate_existing=True)
    current.recipients = session.scalar(sa.select(sa.func.count()).select_from(Message)
                                        .where(Message.broadcast_id == broadcast_id)) or 0
    current.queued_at = current.updated_at = clock()
    queue.enqueue(session, FINISH_JOB, {"broadcast_id": broadcast_id, "delay": FINISH_FIRST},
                  run_at=clock() + timedelta(seconds=FINISH_FIRST), max_attempts=5, now=clock(),
                  unique_key=f"{FINISH_JOB}:{broadcast_id}:{FINISH_FIRST}")
    session.commit()
    return "queued"


def waiting_count(session: Session, broadcast_id: int) -> int:
    """Messages of the broadcast still in the outbox (queued, deferred or being sent)."""
    return session.scalar(sa.select(sa.func.count()).select_from(Message).where(
        Message.broadcast_id == broadcast_id, Message.status.in_((*WAITING, SENDING)))) or 0


def run_finish(session: Session, broadcast_id: int, delay: float, *, now: datetime | None = None) -> str:
    """The `broadcasts.finish` job: `sent` once nothing of the broadcast waits in the outbox; else look
    again later (twice the delay, at most hourly). The caller (the job runner) commits."""
    from clm.jobs import queue

    now = now or utcnow()
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None or broadcast.status != SENDING_B:
        return "skipped"
    if waiting_count(session, broadcast_id):
        later = min(delay * 2, FINISH_MAX)
        queue.enqueue(session, FINISH_JOB, {"broadcast_id": broadcast_id, "delay": later},
                      run_at=now + timedelta(seconds=later), max_attempts=5, now=now,
                      unique_key=f"{FINISH_JOB}:{broadcast_id}:{now.isoformat()}")
        return "waiting"
    broadcast.status, broadcast.finished_at, broadcast.updated_at = SENT_B, now, now
    session.flush()
    return "sent"


def register(registry, settings) -> None:
    """The broadcasts' job kinds (called by clm.jobs.registry.build_registry)."""
    from clm.jobs import queue
    from clm.jobs.runner import JobError

    def send(session: Session, job) -> None:
        broadcast_id = job.args.get("broadcast_id")
        if not isinstance(broadcast_id, int):
            raise JobError("broadcasts.send needs an integer broadcast_id", permanent=True)
        holder = {"job": job}

        def heartbeat() -> None:  # a big segment takes longer than one lease
            renewed = queue.extend_lease(session, holder["job"], 300)
            if renewed is not None:
                holder["job"] = renewed

        run_send(session, broadcast_id, settings=settings, heartbeat=heartbeat)
        from clm.db.engine import for_writing

        for_writing(session)

    def finish(session: Session, job) -> None:
        broadcast_id = job.args.get("broadcast_id")
        if not isinstance(broadcast_id, int):
            raise JobError("broadcasts.finish needs an integer broadcast_id", permanent=True)
        run_finish(session, broadcast_id, float(job.args.get("delay") or FINISH_FIRST))

    registry.register(SEND_JOB, send)
    registry.register(FINISH_JOB, finish)


# --- the report (clm.channels.broadcast_report) ----------------------------------------------------


def report(session: Session, broadcast_id: int, *, timezone: str = "Asia/Ho_Chi_Minh"):
    """The broadcast's figures: see clm.channels.broadcast_report.Report."""
    from clm.channels.broadcast_report import report as figures

    return figures(session, get_broadcast(session, broadcast_id), timezone=timezone)


def reasons(session: Session, broadcast_id: int, limit: int = 8) -> list[tuple[str, str, int]]:
    """Why messages of the broadcast were not sent (or not yet): (status, reason, messages), commonest first."""
    from clm.channels.broadcast_report import reasons as why

    return why(session, broadcast_id, limit)
