"""Customers' messages in: accepted fast and durably, processed by the worker in batches.

**Accepting** (`accept`, `accept_replies`): what `POST /api/v1/service/messages` and the channels' webhooks
(SMS, Zalo, Messenger replies) do in the request, after checking the key or signature: one INSERT of the
message as it arrived into `service_inbound`, unique on (source, external_id), committed before the answer.
A resend (the same id again) inserts nothing and is answered 2xx like the first.

**Processing** (`process`, the worker's consumer step `service.inbound`): the waiting rows in arrival order,
hundreds per transaction. Channel replies first become `Message Received` events (the customer found by
identity, created when new, in one set-based call of the tracking pipeline) and, when the desk has an
active inbox on that channel, desk messages. Every desk message then goes through `conversations.receive`
with the batch's routing pool: the routing lock is taken once for the batch, the agents' loads are read
once and kept exact in memory as the batch assigns (no agent above capacity, no ticket assigned twice,
even with several workers, because the step is claimed by one worker at a time and routing elsewhere
waits for the lock). One worker at a time, in order, is also what makes two first messages of one
customer arriving together open one ticket. A row that cannot be processed (an inbox switched off, a
customer erased) is marked with the reason and never blocks the rest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.db.bulk import update_rows
from clm.db.upsert import insert_for
from clm.lib.clock import as_utc, utcnow
from clm.lib.errors import FieldError, NotFound
from clm.service import snapshot, timeline
from clm.service.errors import ServiceConflict
from clm.service.models import Inbound, Inbox

BATCH = 500
# SQLite has one writer: a batch holds it, and the requests accepting messages wait for it meanwhile.
SQLITE_BATCH = 100
STEP = "service.inbound"
_table = Inbound.__table__
REPLY_SOURCES = ("sms", "zalo", "messenger")


def accept(session: Session, source: str, external_id: str | None, payload: dict[str, Any],
           now: datetime | None = None) -> tuple[int, bool]:
    """Store one message as it arrived (the caller commits, then answers). Returns (row id, created):
    created is False for a resend of an id already stored."""
    external_id = external_id or f"noid:{uuid.uuid4().hex}"
    inserted = session.execute(
        insert_for(session, _table).values(source=source, external_id=external_id, payload=payload,
                                           received_at=now or utcnow())
        .on_conflict_do_nothing(index_elements=["source", "external_id"]).returning(_table.c.id)).scalar()
    if inserted is not None:
        return inserted, True
    return session.execute(sa.select(_table.c.id).where(_table.c.source == source,
                                                        _table.c.external_id == external_id)).scalar_one(), False


def accept_replies(session: Session, replies: list, now: datetime | None = None) -> int:
    """Store a webhook's replies (clm.channels.inbound.replies.Reply); returns how many were new."""
    if not replies:
        return 0
    now = now or utcnow()
    rows = [{"source": r.channel, "external_id": r.message_id, "received_at": now,
             "payload": {"channel": r.channel, "sender": r.sender, "provider_message_id": r.provider_message_id,
                         "text": r.text, "at": r.at.isoformat() if r.at else None, "provider": r.provider,
                         "properties": r.properties}} for r in replies]
    stored = session.execute(insert_for(session, _table).values(rows)
                             .on_conflict_do_nothing(index_elements=["source", "external_id"])
                             .returning(_table.c.id)).all()
    return len(stored)


def status(session: Session, inbound_id: int) -> Inbound:
    row = session.get(Inbound, inbound_id)
    if row is None:
        raise NotFound("inbound message", inbound_id)
    return row


# --- processing ----------------------------------------------------------------------------------------


def waiting(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(Inbound).where(Inbound.processed_at.is_(None)))


def process(session: Session, now: datetime | None = None, batch: int | None = None) -> int:
    """Process up to `batch` waiting messages (default 500, 100 on SQLite) in arrival order, in the caller's
    transaction (the worker claims the step, so one worker at a time). Returns how many rows were processed."""
    now = now or utcnow()
    if batch is None:
        batch = BATCH if session.get_bind().dialect.name == "postgresql" else SQLITE_BATCH
    t = _table
    query = (sa.select(t.c.id, t.c.source, t.c.external_id, t.c.payload, t.c.received_at)
             .where(t.c.processed_at.is_(None)).order_by(t.c.id).limit(batch))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = [_Row(*r) for r in session.execute(query)]
    if not rows:
        return 0
    customers = _replies_customers(session, [r for r in rows if r.source in REPLY_SOURCES])
    inboxes = _reply_inboxes(session)
    from clm.service.filing import Filer
    from clm.service.routing import Pool, lock_routing

    lock_routing(session)  # held to the commit: this batch's assignments and everyone else's take turns
    pool = Pool.load_all(session)
    with timeline.batched(session), snapshot.held(session):  # timeline events in one INSERT at the end
        items = [(row, _desk_message(row, customers, inboxes)) for row in rows]
        filer = Filer(session, now, pool, [data for _, data in items if data is not None])
        taken: list[tuple[_Row, Any]] = []
        for row, data in items:
            if data is None:
                continue
            message = filer.take(data)
            if message is not None:
                taken.append((row, message))
                continue
            _write(filer, taken)  # what came before, so that receive sees it
            filer.leave(data.customer_id)
            mark = timeline.batch_mark(session)
            try:
                with session.begin_nested():
                    received = _receive(session, data, now, pool)
            except (FieldError, NotFound, ServiceConflict) as exc:
                row.error = str(getattr(exc, "message", None) or exc)[:500]
                timeline.batch_undo(session, mark)
                pool = filer.pool = Pool.load_all(session)  # the savepoint undid what it counted
            else:
                row.ticket_id, row.message_id = received.ticket.id, received.message.id
        _write(filer, taken)
    update_rows(session, t, ["processed_at", "ticket_id", "message_id", "error"],
                [(now, r.ticket_id, r.message_id, r.error, r.id) for r in rows])
    return len(rows)


@dataclass(eq=False)
class _Row:
    """A waiting `service_inbound` row as the step reads it, and what filing it gave."""

    id: int
    source: str
    external_id: str
    payload: dict[str, Any]
    received_at: datetime
    ticket_id: int | None = None
    message_id: int | None = None
    error: str | None = None


def _write(filer, taken: list) -> None:
    filer.write()
    for row, message in taken:
        row.ticket_id, row.message_id = message.conversation.ticket.id, message.id
    taken.clear()


def _receive(session: Session, data, now: datetime, pool):
    from clm.service.conversations import receive

    return receive(session, data, now, pool=pool)


def _desk_message(row: _Row, customers: dict[str, int], inboxes: dict[str, int]):
    """The row as `conversations.InboundIn`, or None when it is not for the desk (a reply on a channel the
    desk has no inbox for: its event is all)."""
    from clm.service.conversations import InboundIn

    payload = dict(row.payload)
    if row.source == "api":
        payload.setdefault("at", None)
        data = InboundIn.model_validate(payload)
        return data if data.at else data.model_copy(update={"at": row.received_at})
    customer_id = customers.get(row.external_id)
    inbox_id = inboxes.get(row.source)
    if customer_id is None or inbox_id is None or not (payload.get("text") or "").strip():
        return None
    at = as_utc(datetime.fromisoformat(payload["at"])) if payload.get("at") else row.received_at
    return InboundIn(inbox_id=inbox_id, customer_id=customer_id, body=payload["text"][:100_000],
                     thread_key=f"{row.source}:{payload['sender']}"[:255], external_id=row.external_id, at=at)


def _reply_inboxes(session: Session) -> dict[str, int]:
    """The desk's inbox for each reply channel: the first active one (by id)."""
    out: dict[str, int] = {}
    for inbox_id, channel in session.execute(sa.select(Inbox.id, Inbox.channel).where(
            Inbox.active.is_(True), Inbox.channel.in_(REPLY_SOURCES)).order_by(Inbox.id)):
        out.setdefault(channel, inbox_id)
    return out


def _replies_customers(session: Session, rows: list[_Row]) -> dict[str, int]:
    """Record the channel replies as `Message Received` events (identity resolution, the answered message
    marked replied), set-based; returns each row's customer by external_id."""
    if not rows:
        return {}
    from clm.channels.inbound.replies import Reply, record_replies_of
    from clm.customers.models import Identity

    replies = []
    for row in rows:
        p = row.payload
        at = as_utc(datetime.fromisoformat(p["at"])) if p.get("at") else row.received_at
        replies.append(Reply(channel=p["channel"], sender=p["sender"], provider_message_id=p["provider_message_id"],
                             text=p.get("text") or "", at=at, provider=p.get("provider") or "",
                             properties=p.get("properties") or {}))
    found = record_replies_of(session, replies, max(r.received_at for r in rows))
    missing = [r for r in replies if r.message_id not in found]  # events stored before (a re-run): by identity
    if missing:
        keys: dict[tuple[str, str], list[str]] = {}
        for r in missing:
            keys.setdefault((r.key.kind, r.key.value), []).append(r.message_id)
        for kind, value, customer_id in session.execute(
                sa.select(Identity.kind, Identity.value, Identity.customer_id).where(
                    sa.tuple_(Identity.kind, Identity.value).in_(list(keys)))):
            for message_id in keys.get((kind, value), []):
                found[message_id] = customer_id
    return found


class InboundConsumer:
    """The worker's consumer step: a batch of waiting messages per round."""

    name = STEP

    def __init__(self, batch: int | None = None):
        self.batch = batch

    def __call__(self, session: Session, now: datetime) -> int:
        return process(session, now, self.batch)
