"""The service desk's tables: inboxes, teams and agents, tickets with their conversations and messages,
notes, custom fields, the audit of every change, routing rules, business calendars, SLA policies and timers.

A ticket is the unit of work: it has the status, priority, assignee and SLA clocks. Its conversations
are the threads on each channel (one per inbox and thread), and messages belong to a conversation.
Routing assigns tickets; "a conversation is assigned" means its ticket is.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clm.db.base import Base, BigId, Json, UTCDateTime
from clm.lib.clock import utcnow

CHANNELS = ("email", "sms", "zalo", "messenger", "chat", "phone", "web", "api")
STATUSES = ("new", "open", "pending_customer", "on_hold", "solved", "closed")
OPEN_STATUSES = ("new", "open", "pending_customer", "on_hold")  # what counts towards an agent's load
PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_RANK = {p: i for i, p in enumerate(PRIORITIES)}
AVAILABILITY = ("online", "busy", "offline")
FIELD_KINDS = ("text", "number", "date", "choice")
DIRECTIONS = ("in", "out")
METRICS = ("first_response", "next_response", "resolution")
TIMER_STATES = ("running", "paused", "met", "breached", "cancelled")
MAX_ID = 2**63 - 1

_CUSTOMER_FK = "customers.id"
_USER_FK = "users.id"


class Team(Base):
    __tablename__ = "service_teams"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TeamMember(Base):
    __tablename__ = "service_team_members"

    team_id: Mapped[int] = mapped_column(sa.ForeignKey("service_teams.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey(_USER_FK, ondelete="CASCADE"), primary_key=True, index=True)


class Agent(Base):
    """A staff user who answers customers: availability, capacity (open tickets at once), last assignment.

    `last_assigned_at` breaks ties between equally loaded agents in turn (least recently assigned first).
    """

    __tablename__ = "service_agents"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey(_USER_FK, ondelete="CASCADE"), primary_key=True)
    availability: Mapped[str] = mapped_column(sa.String(8), default="offline")
    capacity: Mapped[int] = mapped_column(sa.Integer, default=8)
    languages: Mapped[list[str]] = mapped_column(Json, default=list)
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    availability_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Inbox(Base):
    """Where messages arrive: one per channel account (a Zalo OA, a mailbox, a hotline)."""

    __tablename__ = "service_inboxes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    address: Mapped[str | None] = mapped_column(sa.String(320))  # the mailbox, OA id, page id or number
    language: Mapped[str | None] = mapped_column(sa.String(8))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Ticket(Base):
    __tablename__ = "service_tickets"
    __table_args__ = (
        sa.Index("ix_service_tickets_assignee_status", "assignee_id", "status"),
        sa.Index("ix_service_tickets_queue", "status", "assignee_id", "priority_rank", "created_at"),
        sa.Index("ix_service_tickets_customer_time", "customer_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(16), unique=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(sa.String(16), default="new")
    priority: Mapped[str] = mapped_column(sa.String(8), default="normal")
    priority_rank: Mapped[int] = mapped_column(sa.SmallInteger, default=1)  # for ordering the queue
    vip: Mapped[bool] = mapped_column(sa.Boolean, default=False)  # routed ahead when VIPs go first
    type: Mapped[str | None] = mapped_column(sa.String(32))
    tags: Mapped[list[str]] = mapped_column(Json, default=list)
    fields: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    channel: Mapped[str] = mapped_column(sa.String(16))
    inbox_id: Mapped[int | None] = mapped_column(sa.ForeignKey("service_inboxes.id", ondelete="SET NULL"))
    language: Mapped[str | None] = mapped_column(sa.String(8))
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey(_USER_FK, ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(sa.ForeignKey("service_teams.id", ondelete="SET NULL"), index=True)
    assignment_reason: Mapped[str | None] = mapped_column(sa.String(500))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id", ondelete="SET NULL"), index=True)
    merged_into_id: Mapped[int | None] = mapped_column(sa.ForeignKey("service_tickets.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey(_USER_FK, ondelete="SET NULL"))
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_customer_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_agent_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    solved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Conversation(Base):
    """One thread with the customer on one inbox: a Zalo chat, an email thread, a call."""

    __tablename__ = "service_conversations"
    __table_args__ = (
        sa.Index("ix_service_conversations_inbox_thread", "inbox_id", "thread_key"),
        sa.Index("ix_service_conversations_customer_time", "customer_id", "last_message_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("service_tickets.id", ondelete="CASCADE"), index=True)
    inbox_id: Mapped[int | None] = mapped_column(sa.ForeignKey("service_inboxes.id", ondelete="SET NULL"))
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(sa.String(16))
    # The channel's own thread: the root Message-ID, the Zalo user id, the call id; None: one per ticket.
    thread_key: Mapped[str | None] = mapped_column(sa.String(255))
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Message(Base):
    """A message in a conversation, from the customer (in) or from an agent (out)."""

    __tablename__ = "service_messages"
    __table_args__ = (sa.Index("ix_service_messages_ticket_time", "ticket_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("service_conversations.id", ondelete="CASCADE"),
                                                 index=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("service_tickets.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(sa.String(3))
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey(_USER_FK, ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    # The channel's id of the message: a retried delivery of the same message finds it instead of adding it.
    external_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    html: Mapped[str | None] = mapped_column(sa.Text)  # an email's HTML, sanitised (clm.service.mail.parse)
    # What the channel said beside the text: an email's from, to, cc, subject and Message-ID.
    meta: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Note(Base):
    """An internal note on a ticket (never shown to the customer); @mentions notify the staff named."""

    __tablename__ = "service_notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("service_tickets.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey(_USER_FK, ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(sa.Text)
    mentions: Mapped[list[int]] = mapped_column(Json, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Change(Base):
    """The audit: one row per changed field of a ticket, who (a user, or the system actor) and when.

    The rows with field "status" are the ticket's status history, which the SLA clocks read for pauses.
    """

    __tablename__ = "service_ticket_changes"
    __table_args__ = (sa.Index("ix_service_ticket_changes_ticket", "ticket_id", "at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("service_tickets.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey(_USER_FK, ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(sa.String(16), default="user")  # user | routing | sla | system | customer
    field: Mapped[str] = mapped_column(sa.String(64))
    # {"old": ..., "new": ...}: one document, since SQLite's JSON columns turn a bare number into an integer
    values: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def old(self) -> Any:
        return (self.values or {}).get("old")

    @property
    def new(self) -> Any:
        return (self.values or {}).get("new")


class Field(Base):
    """A custom ticket field the business defines: text, number, date or choice (from `choices`)."""

    __tablename__ = "service_fields"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    label: Mapped[dict[str, str]] = mapped_column(Json, default=dict)  # {"vi": ..., "en": ...}
    kind: Mapped[str] = mapped_column(sa.String(8))
    choices: Mapped[list[str]] = mapped_column(Json, default=list)
    required: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RoutingRule(Base):
    """Send matching tickets to a team. Every condition set must hold; rules are tried by position."""

    __tablename__ = "service_routing_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    position: Mapped[int] = mapped_column(sa.Integer, default=0)
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("service_teams.id", ondelete="CASCADE"))
    channel: Mapped[str | None] = mapped_column(sa.String(16))
    language: Mapped[str | None] = mapped_column(sa.String(8))
    tag: Mapped[str | None] = mapped_column(sa.String(64))
    tier: Mapped[str | None] = mapped_column(sa.String(32))
    segment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("segments.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Setting(Base):
    """The desk's settings by name ("routing": follow-up days, VIPs first, re-offer minutes).

    The "routing" row is also the routing lock: every routing decision holds it, so decisions take
    turns and no agent is given more than their capacity by two decisions at once.
    """

    __tablename__ = "service_settings"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Calendar(Base):
    """Business hours: intervals per weekday in a time zone, a country's public holidays, added days off."""

    __tablename__ = "service_calendars"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="Asia/Ho_Chi_Minh")
    # {"mon": [["08:00", "12:00"], ["13:30", "17:30"]], ...}; a missing day is closed
    hours: Mapped[dict[str, list[list[str]]]] = mapped_column(Json, default=dict)
    holiday_country: Mapped[str | None] = mapped_column(sa.String(2), default="VN")
    closed_days: Mapped[list[str]] = mapped_column(Json, default=list)  # ISO dates the business adds
    is_default: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SlaPolicy(Base):
    """Targets in business minutes for tickets matching priority, channel and tier (None: any)."""

    __tablename__ = "service_sla_policies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    position: Mapped[int] = mapped_column(sa.Integer, default=0)
    priority: Mapped[str | None] = mapped_column(sa.String(8))
    channel: Mapped[str | None] = mapped_column(sa.String(16))
    tier: Mapped[str | None] = mapped_column(sa.String(32))
    first_response_minutes: Mapped[int | None] = mapped_column(sa.Integer)
    next_response_minutes: Mapped[int | None] = mapped_column(sa.Integer)
    resolution_minutes: Mapped[int | None] = mapped_column(sa.Integer)
    warn_before_minutes: Mapped[int] = mapped_column(sa.Integer, default=15)
    # {"notify": true, "raise_priority": true, "reassign": false}
    escalation: Mapped[dict[str, bool]] = mapped_column(Json, default=dict)
    calendar_id: Mapped[int | None] = mapped_column(sa.ForeignKey("service_calendars.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SlaTimer(Base):
    """One SLA clock of a ticket: its deadline, computed when it starts (and again when a pause ends),
    stored with the explanation of how; warned, breached or met, each recorded once."""

    __tablename__ = "service_sla_timers"
    __table_args__ = (
        sa.Index("ix_service_sla_timers_ticket", "ticket_id", "metric"),
        # Running clocks only (a small part of all): by due time (few due: the "SLA at risk" view and the
        # reports), and by ticket, newest first, with the due time (many due: the view reads them index-only).
        sa.Index("ix_service_sla_timers_running_due", "due_at", "ticket_id",
                 postgresql_where=sa.text("state = 'running'"), sqlite_where=sa.text("state = 'running'")),
        sa.Index("ix_service_sla_timers_running_ticket", "ticket_id", "due_at",
                 postgresql_where=sa.text("state = 'running'"), sqlite_where=sa.text("state = 'running'")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("service_tickets.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"), index=True)
    policy_id: Mapped[int | None] = mapped_column(sa.ForeignKey("service_sla_policies.id", ondelete="SET NULL"))
    metric: Mapped[str] = mapped_column(sa.String(16))
    target_minutes: Mapped[int] = mapped_column(sa.Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None while paused
    state: Mapped[str] = mapped_column(sa.String(12), default="running")
    explanation: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    met_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def day_key(day: date) -> str:
    return ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[day.weekday()]


class ChatSite(Base):
    """A website carrying the web chat widget: its public key (in the embed snippet, not a secret), the
    origins allowed to call the chat endpoints, and the chat inbox its conversations arrive in."""

    __tablename__ = "service_chat_sites"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    public_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    inbox_id: Mapped[int] = mapped_column(sa.ForeignKey("service_inboxes.id", ondelete="CASCADE"), index=True)
    origins: Mapped[list[str]] = mapped_column(Json, default=list)  # empty: any origin
    greeting: Mapped[dict[str, str]] = mapped_column(Json, default=dict)  # {"vi": ..., "en": ...}
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Inbound(Base):
    """A customer's message as it arrived (the API or a channel's webhook), stored once and committed before
    the request is answered; the worker's `service.inbound` step turns waiting rows into desk messages in
    batches, in arrival order (clm.service.inbound). `(source, external_id)` is unique: a resend is a no-op."""

    __tablename__ = "service_inbound"
    __table_args__ = (
        sa.UniqueConstraint("source", "external_id", name="uq_service_inbound_source"),
        sa.Index("ix_service_inbound_waiting", "id", postgresql_where=sa.text("processed_at IS NULL"),
                 sqlite_where=sa.text("processed_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(16))  # api | sms | zalo | messenger
    external_id: Mapped[str] = mapped_column(sa.String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What processing made of it (no foreign keys: the row stays when a ticket or customer is erased).
    ticket_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    message_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    error: Mapped[str | None] = mapped_column(sa.Text)


# Ticket numbers on PostgreSQL: nextval takes no lock held to the commit (SQLite: the code_sequences row).
TICKET_NUMBERS = sa.Sequence("service_ticket_numbers", metadata=Base.metadata)
