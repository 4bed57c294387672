"""The desk's tables for calls, automation and satisfaction (migration 0021), beside the core of models.py.

- `service_calls`: the caller log a PBX feeds through the Generic CTI endpoint (one row per `callId`).
- `service_triggers` and `service_trigger_runs`: rules that act on tickets when they are created, updated
  or have waited a while; a run row per trigger, ticket and occasion makes each firing happen once.
- `service_canned_replies`, `service_macros`: answers with variables, and named sets of actions.
- `service_surveys`: CSAT requests sent when a ticket is solved and NPS surveys sent by journeys, with
  their answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clm.db.base import Base, BigId, Json, UTCDateTime
from clm.lib.clock import utcnow

CALL_STATES = ("ringing", "answered", "ended", "missed")
TRIGGER_EVENTS = ("created", "updated", "elapsed")
SURVEY_KINDS = ("csat", "nps")

_CUSTOMER_FK = "customers.id"
_USER_FK = "users.id"
_TICKET_FK = "service_tickets.id"


class Call(Base):
    """One phone call as the PBX reported it: who called whom, who answered, how long, the recording."""

    __tablename__ = "service_calls"
    __table_args__ = (sa.Index("ix_service_calls_customer_time", "customer_id", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    call_id: Mapped[str] = mapped_column(sa.String(250), unique=True)  # the PBX's callId
    direction: Mapped[str] = mapped_column(sa.String(3))  # in | out
    from_number: Mapped[str] = mapped_column(sa.String(64))
    to_number: Mapped[str] = mapped_column(sa.String(64))
    phone: Mapped[str | None] = mapped_column(sa.String(32))  # the customer's side, E.164 (None: anonymous)
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(sa.String(8), default="ringing")
    users: Mapped[list[str]] = mapped_column(Json, default=list)  # user[]: the staff rung (in) or calling (out)
    queue: Mapped[str | None] = mapped_column(sa.String(120))
    agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey(_USER_FK, ondelete="SET NULL"))
    cause: Mapped[str | None] = mapped_column(sa.String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_seconds: Mapped[int | None] = mapped_column(sa.Integer)  # talk time, answer to hang-up
    recording_url: Mapped[str | None] = mapped_column(sa.String(2000))
    task_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tasks.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Trigger(Base):
    """When a ticket is created, updated, or has waited `minutes` since `since`: if `conditions` hold, do
    `actions`. Conditions and actions are stored as the typed JSON of clm.service.automation."""

    __tablename__ = "service_triggers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    event: Mapped[str] = mapped_column(sa.String(8))
    position: Mapped[int] = mapped_column(sa.Integer, default=0)
    minutes: Mapped[int | None] = mapped_column(sa.Integer)  # elapsed triggers: how long
    since: Mapped[str | None] = mapped_column(sa.String(24))  # elapsed triggers: from which moment
    # elapsed triggers: count the minutes in the business hours of the default calendar (as SLA clocks do)
    business_hours: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    conditions: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TriggerRun(Base):
    """A trigger fired on a ticket for one occasion (created; the change id of an update; the moment an
    elapsed wait started): the unique key makes a re-read change or a retried job fire nothing twice."""

    __tablename__ = "service_trigger_runs"
    __table_args__ = (sa.UniqueConstraint("trigger_id", "ticket_id", "occasion"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    trigger_id: Mapped[int] = mapped_column(sa.ForeignKey("service_triggers.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey(_TICKET_FK, ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"), index=True)
    occasion: Mapped[str] = mapped_column(sa.String(64))
    outcome: Mapped[list[str]] = mapped_column(Json, default=list)  # what each action did
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CannedReply(Base):
    """A ready answer with variables ({{ customer.name }}, {{ ticket.number }}, {{ agent.name }}), per language."""

    __tablename__ = "service_canned_replies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(64), unique=True)  # what agents type after "/"
    title: Mapped[str] = mapped_column(sa.String(120))
    bodies: Mapped[dict[str, str]] = mapped_column(Json, default=dict)  # {"vi": ..., "en": ...}
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Macro(Base):
    """A named list of actions an agent applies to a ticket in one click (tag, set status, reply...)."""

    __tablename__ = "service_macros"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Survey(Base):
    """A satisfaction question sent to a customer and its answer: CSAT (1-5) for a solved ticket, or NPS
    (0-10) from a journey. The agent, team and channel are the ticket's when it was solved (for reports)."""

    __tablename__ = "service_surveys"
    __table_args__ = (
        sa.Index("ix_service_surveys_kind_answered", "kind", "answered_at"),
        sa.Index("ix_service_surveys_customer", "customer_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(4))
    # "csat:<ticket id>" or "nps:<journey effect key>": asking twice stores (and sends) one survey
    key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"))
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey(_TICKET_FK, ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(sa.ForeignKey(_USER_FK, ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(sa.ForeignKey("service_teams.id", ondelete="SET NULL"))
    channel: Mapped[str | None] = mapped_column(sa.String(16))  # where the ticket came in (or the journey's)
    journey_run_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    message_id: Mapped[int | None] = mapped_column(sa.BigInteger)  # the channels outbox message that asked
    score: Mapped[int | None] = mapped_column(sa.SmallInteger)
    comment: Mapped[str | None] = mapped_column(sa.Text)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
