"""Inboxes, conversations and messages: what arrives from customers and what agents answer.

`receive` is the one entry for inbound messages, whatever the channel (the channel adapters, the mail
listener and the CTI endpoint call it once they know the customer): it finds the conversation by inbox and
thread, opens a ticket when there is none (or it is closed), reopens a solved one, starts the
next-response clock and routes. A message with the channel's id is stored once however often it is sent.
`reply` records an agent's answer and queues it on the channels' outbox (clm.service.outbound).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from clm.lib.clock import as_utc, utcnow
from clm.lib.errors import FieldError, NotFound
from clm.outbox.service import emit
from clm.service import audit, outbound, sla, timeline
from clm.service.errors import ServiceConflict
from clm.service.models import CHANNELS, MAX_ID, Conversation, Inbox, Message, Ticket
from clm.service.routing import Pool, lock_routing, route
from clm.service.tickets import TicketIn, _customer, _set_status, get_ticket, open_ticket

SUBJECT_FROM_BODY = 80


class InboxIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    channel: str = Field(pattern="^(" + "|".join(CHANNELS) + ")$")
    address: str | None = Field(None, max_length=320)
    language: str | None = Field(None, min_length=2, max_length=8)
    active: bool = True


class InboundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inbox_id: int = Field(ge=1, le=MAX_ID)
    customer_id: int = Field(ge=1, le=MAX_ID)
    body: str = Field(min_length=1, max_length=100_000)
    subject: str | None = Field(None, max_length=255)
    thread_key: str | None = Field(None, max_length=255,
                                   description="The channel's thread (root Message-ID, chat id); none: the latest.")
    external_id: str | None = Field(None, min_length=1, max_length=255,
                                    description="The channel's message id: sending it again stores nothing new.")
    at: datetime | None = None
    attachments: list[dict[str, Any]] = Field(default_factory=list, max_length=50)


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=100_000)
    conversation_id: int | None = Field(None, ge=1, le=MAX_ID)
    external_id: str | None = Field(None, min_length=1, max_length=255)


@dataclass(frozen=True)
class Received:
    message: Message
    ticket: Ticket
    created: bool  # False: a repeat of a message already stored


def save_inbox(session: Session, data: InboxIn, inbox_id: int | None = None) -> Inbox:
    clash = session.scalar(sa.select(Inbox.id).where(Inbox.name == data.name.strip()))
    if clash is not None and clash != inbox_id:
        raise FieldError("name", f"an inbox named {data.name!r} already exists", "duplicate")
    if inbox_id is None:
        inbox = Inbox(created_at=utcnow())
        session.add(inbox)
    else:
        inbox = get_inbox(session, inbox_id)
    inbox.name, inbox.channel, inbox.address = data.name.strip(), data.channel, data.address
    inbox.language, inbox.active = (data.language or "").lower() or None, data.active
    session.flush()
    return inbox


def get_inbox(session: Session, inbox_id: int) -> Inbox:
    inbox = session.get(Inbox, inbox_id)
    if inbox is None:
        raise NotFound("inbox", inbox_id)
    return inbox


def list_inboxes(session: Session) -> list[Inbox]:
    return list(session.scalars(sa.select(Inbox).order_by(Inbox.name)))


def _live(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    hops = 0
    while ticket is not None and ticket.merged_into_id is not None and hops < 10:
        ticket, hops = session.get(Ticket, ticket.merged_into_id), hops + 1
    return ticket


def _conversation_for(session: Session, inbox: Inbox, customer_id: int, thread_key: str | None) -> Conversation | None:
    """The customer's latest conversation in this inbox (on this thread) whose ticket is not closed."""
    query = (sa.select(Conversation).join(Ticket, Ticket.id == Conversation.ticket_id)
             .where(Conversation.inbox_id == inbox.id, Conversation.customer_id == customer_id,
                    Ticket.status != "closed")
             .order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(1))
    if thread_key is not None:
        query = query.where(Conversation.thread_key == thread_key)
    return session.scalar(query)


def receive(session: Session, data: InboundIn, now: datetime | None = None, *, pool: Pool | None = None) -> Received:
    """Store a customer's message on the right ticket (opening or reopening it), idempotently.

    `pool`: the routing pool of a batch (clm.service.inbound) whose caller holds the routing lock."""
    now = now or utcnow()
    at = as_utc(data.at) if data.at else now
    if data.external_id:
        known = session.scalar(sa.select(Message).where(Message.external_id == data.external_id))
        if known is not None:
            return Received(known, _live(session, known.ticket_id), False)
    inbox = session.get(Inbox, data.inbox_id)
    if inbox is None:
        raise FieldError("inbox_id", f"there is no inbox {data.inbox_id}", "not_found")
    if not inbox.active:
        raise FieldError("inbox_id", f"inbox {inbox.name!r} is switched off")
    customer = _customer(session, data.customer_id)
    conversation = _conversation_for(session, inbox, customer.id, data.thread_key)
    if conversation is None:
        subject = (data.subject or " ".join(data.body.split())[:SUBJECT_FROM_BODY] or inbox.name).strip()
        ticket = open_ticket(session, TicketIn(customer_id=customer.id, subject=subject[:255], inbox_id=inbox.id,
                                               channel=inbox.channel), actor="customer", now=now, at=at,
                             pool=pool)
        conversation = Conversation(ticket_id=ticket.id, inbox_id=inbox.id, customer_id=customer.id,
                                    channel=inbox.channel, thread_key=data.thread_key, created_at=at)
        session.add(conversation)
        session.flush()
        created_ticket = True
    else:
        if pool is None:
            lock_routing(session)  # a reopened ticket may be routed: the routing lock before the ticket's
        ticket = _live(session, conversation.ticket_id)
        ticket = get_ticket(session, ticket.id, for_update=True)
        created_ticket = False
    message = Message(conversation_id=conversation.id, ticket_id=ticket.id, customer_id=customer.id, direction="in",
                      body=data.body, external_id=data.external_id, attachments=data.attachments, created_at=at)
    session.add(message)
    conversation.last_message_at = at
    ticket.last_customer_message_at, ticket.updated_at = at, now
    session.flush()
    timeline.record(session, customer.id, timeline.RECEIVED, f"service:message:{message.id}", at,
                    {"ticket": ticket.number, "channel": conversation.channel, "text": timeline.excerpt(data.body)})
    if not created_ticket:
        _woken(session, ticket, at, now, pool)
    emit(session, "service.message_received", customer.id, {"ticket_id": ticket.id, "message_id": message.id,
                                                             "channel": conversation.channel})
    session.flush()
    return Received(message, ticket, True)


def _woken(session: Session, ticket: Ticket, at: datetime, now: datetime, batch: Pool | None = None) -> None:
    """The customer wrote on an existing ticket: it is open again, a next-response clock starts, and an
    agent who is no longer available (or a ticket that had none) gets routing again. `batch`: the pool of a
    batch, whose loads count the reopened ticket again."""
    if ticket.status in ("solved", "pending_customer", "on_hold"):
        was = ticket.status
        _set_status(session, ticket, "open", now, None, "customer", reason="the customer wrote")
        if batch is not None and was == "solved" and ticket.assignee_id is not None:
            batch.load[ticket.assignee_id] = batch.load.get(ticket.assignee_id, 0) + 1
    sla.customer_wrote(session, ticket, at, now)
    if ticket.assignee_id is None:
        route(session, ticket.id, now, pool=batch)
        return
    pool = batch or Pool.load_all(session)
    agent = pool.agents.get(ticket.assignee_id)
    if agent is None or agent.availability != "online":
        name = pool.names.get(ticket.assignee_id, str(ticket.assignee_id))
        state = agent.availability if agent else "no longer an agent"
        route(session, ticket.id, now, exclude={ticket.assignee_id}, reassign=True,
              prefix=f"the customer wrote again while {name} is {state}; ", pool=batch)


def reply(session: Session, ticket_id: int, data: ReplyIn, *, by: int | None, now: datetime | None = None,
          settings=None) -> Message:
    """An agent's answer on the ticket (on the given conversation, or the latest): the first- and
    next-response clocks are met, a new ticket becomes open, and it is queued on the conversation's channel
    (`settings`: the process settings when not given)."""
    now = now or utcnow()
    if data.external_id:
        known = session.scalar(sa.select(Message).where(Message.external_id == data.external_id))
        if known is not None:
            return known
    ticket = get_ticket(session, ticket_id, for_update=True)
    if ticket.merged_into_id is not None:
        raise ServiceConflict("ticket_merged", f"ticket {ticket.number} was merged; answer on the ticket it went into")
    if ticket.status == "closed":
        raise ServiceConflict("ticket_closed", f"ticket {ticket.number} is closed")
    if data.conversation_id is not None:
        conversation = session.get(Conversation, data.conversation_id)
        if conversation is None or conversation.ticket_id != ticket.id:
            raise FieldError("conversation_id", f"ticket {ticket.number} has no conversation {data.conversation_id}")
    else:
        conversation = session.scalar(sa.select(Conversation).where(Conversation.ticket_id == ticket.id)
                                      .order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(1))
    if conversation is None:
        conversation = Conversation(ticket_id=ticket.id, inbox_id=ticket.inbox_id, customer_id=ticket.customer_id,
                                    channel=ticket.channel, created_at=now)
        session.add(conversation)
        session.flush()
    outbound.check_reply(session, conversation, now)  # e.g. Messenger's window: refused before anything is stored
    message = Message(conversation_id=conversation.id, ticket_id=ticket.id, customer_id=ticket.customer_id,
                      direction="out", author_id=by, body=data.body, external_id=data.external_id, created_at=now)
    session.add(message)
    conversation.last_message_at = now
    if ticket.first_response_at is None:
        ticket.first_response_at = now
    ticket.last_agent_reply_at, ticket.updated_at = now, now
    session.flush()
    sla.agent_replied(session, ticket, now)
    if ticket.status == "new":
        _set_status(session, ticket, "open", now, by, "user", reason="an agent replied")
    audit.record(session, ticket, "reply", None, message.id, at=now, user_id=by)
    timeline.record(session, ticket.customer_id, timeline.REPLIED, f"service:message:{message.id}", now,
                    {"ticket": ticket.number, "channel": conversation.channel, "text": timeline.excerpt(data.body)})
    emit(session, "service.reply", ticket.customer_id, {
        "ticket_id": ticket.id, "message_id": message.id, "conversation_id": conversation.id,
        "channel": conversation.channel, "inbox_id": conversation.inbox_id, "author_id": by})
    outbound.deliver_reply(session, ticket, conversation, message, settings=settings, now=now)  # the outbox, in this transaction
    session.flush()
    return message
