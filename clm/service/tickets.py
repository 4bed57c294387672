"""Tickets: open, change (every change audited), note with @mentions, merge, link to an order; custom fields.

Locks: an operation that may route (a status that frees the agent, an assignment) takes the routing lock
before the ticket's row lock, as routing does (see clm.service.routing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.commerce.models import Order
from clm.customers.models import Customer
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound
from clm.outbox.service import emit
from clm.service import audit, sla, timeline
from clm.service.errors import ServiceConflict
from clm.service.models import (
    CHANNELS,
    FIELD_KINDS,
    MAX_ID,
    OPEN_STATUSES,
    PRIORITIES,
    PRIORITY_RANK,
    STATUSES,
    TICKET_NUMBERS,
    Agent,
    Conversation,
    Message,
    Note,
    Team,
    Ticket,
)
from clm.service.models import (
    Field as CustomField,
)
from clm.service.routing import assign, drain, lock_routing, route, routing_settings

Priority = Literal[PRIORITIES]  # type: ignore[valid-type]
Status = Literal[STATUSES]  # type: ignore[valid-type]
Channel = Literal[CHANNELS]  # type: ignore[valid-type]
TAG = re.compile(r"^[\w][\w .:/-]{0,63}$")
KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MENTION = re.compile(r"(?<![\w@])@([\w.+-]+(?:@[\w-]+(?:\.[\w-]+)+)?)")
CLOSED = ("solved", "closed")


class TicketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: int = Field(ge=1, le=MAX_ID)
    subject: str = Field(min_length=1, max_length=255)
    body: str | None = Field(None, max_length=100_000, description="The customer's first message, if any.")
    channel: Channel = "api"
    inbox_id: int | None = Field(None, ge=1, le=MAX_ID)
    priority: Priority = "normal"
    type: str | None = Field(None, max_length=32)
    tags: list[str] = Field(default_factory=list, max_length=30)
    fields: dict[str, Any] = Field(default_factory=dict)
    language: str | None = Field(None, min_length=2, max_length=8)
    assignee_id: int | None = Field(None, ge=1, le=MAX_ID)
    team_id: int | None = Field(None, ge=1, le=MAX_ID)
    order_id: int | None = Field(None, ge=1, le=MAX_ID)
    route: bool = Field(True, description="Route the ticket to an agent now (unless assignee_id is given).")


class TicketUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str | None = Field(None, min_length=1, max_length=255)
    status: Status | None = None
    priority: Priority | None = None
    type: str | None = Field(None, max_length=32)
    tags: list[str] | None = Field(None, max_length=30)
    fields: dict[str, Any] | None = None
    language: str | None = Field(None, min_length=2, max_length=8)
    assignee_id: int | None = Field(None, ge=1, le=MAX_ID)
    team_id: int | None = Field(None, ge=1, le=MAX_ID)
    order_id: int | None = Field(None, ge=1, le=MAX_ID)


class FieldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=KEY.pattern, description="lowercase letters, digits and _; starts with a letter")
    label: dict[str, str] = Field(default_factory=dict)
    kind: Literal[FIELD_KINDS]  # type: ignore[valid-type]
    choices: list[str] = Field(default_factory=list, max_length=200)
    required: bool = False
    active: bool = True


# --- custom fields ---------------------------------------------------------------------------------


def save_field(session: Session, data: FieldIn) -> CustomField:
    """Define (or redefine, by key) a custom ticket field."""
    if data.kind == "choice" and not data.choices:
        raise FieldError("choices", "a choice field needs at least one choice")
    if data.kind != "choice" and data.choices:
        raise FieldError("choices", f"only choice fields have choices, not {data.kind} fields")
    row = session.scalar(sa.select(CustomField).where(CustomField.key == data.key))
    if row is None:
        row = CustomField(key=data.key, created_at=utcnow())
        session.add(row)
    row.label = {k: v[:120] for k, v in data.label.items() if k in ("vi", "en")} or {"en": data.key, "vi": data.key}
    row.kind, row.choices, row.required, row.active = data.kind, [c.strip() for c in data.choices], data.required, \
        data.active
    session.flush()
    return row


def list_fields(session: Session, active_only: bool = False) -> list[CustomField]:
    query = sa.select(CustomField).order_by(CustomField.key)
    if active_only:
        query = query.where(CustomField.active.is_(True))
    return list(session.scalars(query))


def _field_value(spec: CustomField, value: Any, where: str) -> Any:
    if value is None:
        return None
    if spec.kind == "text":
        if not isinstance(value, str) or len(value) > 2000:
            raise FieldError(where, "must be text of at most 2000 characters")
        return value
    if spec.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise FieldError(where, "must be a number")
        return value
    if spec.kind == "date":
        try:
            return date.fromisoformat(value).isoformat()
        except (TypeError, ValueError):
            raise FieldError(where, f"{value!r} is not a date (YYYY-MM-DD)") from None
    if value not in spec.choices:
        raise FieldError(where, f"{value!r} is not one of {', '.join(spec.choices)}")
    return value


def check_fields(session: Session, values: dict[str, Any], current: dict[str, Any] | None = None,
                 creating: bool = False) -> dict[str, Any]:
    """Custom field values merged onto `current`, each checked against its definition (None removes)."""
    from clm.service.snapshot import cached

    specs = cached(session, "fields", lambda: {f.key: f for f in list_fields(session)})
    out = dict(current or {})
    for key, value in values.items():
        spec = specs.get(key)
        if spec is None or not spec.active:
            raise FieldError(f"fields.{key}", "is not a custom field; define it first (POST /api/v1/service/fields)")
        checked = _field_value(spec, value, f"fields.{key}")
        if checked is None:
            out.pop(key, None)
        else:
            out[key] = checked
    if creating:
        for key, spec in specs.items():
            if spec.active and spec.required and key not in out:
                raise FieldError(f"fields.{key}", "is required")
    return out


def _tags(tags: list[str]) -> list[str]:
    out = []
    for i, tag in enumerate(tags):
        tag = " ".join(tag.split()).lower()
        if not TAG.match(tag):
            raise FieldError(f"tags[{i}]", "must be 1-64 letters, digits, spaces or . : / - _")
        if tag not in out:
            out.append(tag)
    return out


# --- opening ---------------------------------------------------------------------------------------


def ticket_numbers(session: Session, count: int = 1) -> list[int]:
    """`count` new ticket numbers. PostgreSQL: the `service_ticket_numbers` sequence (no lock held until the
    commit, so tickets open side by side; a rolled-back number is skipped). SQLite, whose writers take turns
    anyway: the shared counters table (code_sequences)."""
    if session.get_bind().dialect.name == "postgresql":
        return list(session.scalars(sa.select(TICKET_NUMBERS.next_value()).select_from(
            sa.func.generate_series(1, count))))
    from clm.sales.codes import next_numbers

    return next_numbers(session, "ticket", count)


def ticket_number(session: Session) -> str:
    return f"TK-{ticket_numbers(session)[0]:06d}"


def _customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    hops = 0
    while customer is not None and customer.merged_into_id is not None and hops < 10:
        customer, hops = session.get(Customer, customer.merged_into_id), hops + 1
    if customer is None:
        raise FieldError("customer_id", f"there is no customer {customer_id}", "not_found")
    return customer


def is_vip(session: Session, customer_id: int) -> bool:
    settings = routing_settings(session)
    if settings.vip_tiers:
        from clm.service.routing import customer_tier

        if customer_tier(session, customer_id) in settings.vip_tiers:
            return True
    if settings.vip_min_clv is not None:
        from clm.analytics.models import CustomerScore

        clv = session.scalar(sa.select(CustomerScore.predicted_clv_12m).where(CustomerScore.customer_id == customer_id))
        return clv is not None and clv >= settings.vip_min_clv
    return False


def _check_order(session: Session, order_id: int, customer_id: int) -> None:
    order = session.get(Order, order_id)
    if order is None:
        raise FieldError("order_id", f"there is no order {order_id}", "not_found")
    if order.customer_id != customer_id:
        raise FieldError("order_id", f"order {order_id} belongs to another customer")


def _check_team(session: Session, team_id: int | None) -> None:
    if team_id is not None and session.get(Team, team_id) is None:
        raise FieldError("team_id", f"there is no team {team_id}", "not_found")


def _check_agent(session: Session, user_id: int) -> Agent:
    agent = session.get(Agent, user_id)
    user = session.get(User, user_id)
    if agent is None or user is None or not user.active:
        raise FieldError("assignee_id", f"staff user {user_id} is not an active agent", "not_found")
    return agent


def open_ticket(session: Session, data: TicketIn, *, by: int | None = None, actor: str = "user",
                now: datetime | None = None, at: datetime | None = None, pool=None) -> Ticket:
    """Open a ticket (and, with `body`, its conversation and the customer's first message); start its SLA
    clocks; put it on the customer's timeline; route it unless told not to or given an assignee."""
    now = now or utcnow()
    at = at or now
    customer = _customer(session, data.customer_id)
    inbox = None
    if data.inbox_id is not None:
        from clm.service.models import Inbox

        inbox = session.get(Inbox, data.inbox_id)
        if inbox is None:
            raise FieldError("inbox_id", f"there is no inbox {data.inbox_id}", "not_found")
    _check_team(session, data.team_id)
    if data.order_id is not None:
        _check_order(session, data.order_id, customer.id)
    if data.assignee_id is not None:
        _check_agent(session, data.assignee_id)
    fields = check_fields(session, data.fields, creating=True)
    channel = inbox.channel if inbox is not None else data.channel
    ticket = Ticket(number=ticket_number(session), customer_id=customer.id, subject=data.subject.strip(),
                    status="new", priority=data.priority, priority_rank=PRIORITY_RANK[data.priority],
                    vip=is_vip(session, customer.id), type=data.type, tags=_tags(data.tags), fields=fields,
                    channel=channel, inbox_id=inbox.id if inbox else None,
                    language=(data.language or (inbox.language if inbox else None) or None),
                    team_id=data.team_id, order_id=data.order_id, created_by_id=by, status_changed_at=at,
                    created_at=at, updated_at=now)
    session.add(ticket)
    session.flush()
    audit.record(session, ticket, "created", None, {"status": "new", "priority": ticket.priority,
                                                    "channel": channel}, at=at, user_id=by, actor=actor)
    audit.record(session, ticket, "status", None, "new", at=at, user_id=by, actor=actor)
    if data.body:
        conversation = Conversation(ticket_id=ticket.id, inbox_id=ticket.inbox_id, customer_id=customer.id,
                                    channel=channel, last_message_at=at, created_at=at)
        session.add(conversation)
        session.flush()
        session.add(Message(conversation_id=conversation.id, ticket_id=ticket.id, customer_id=customer.id,
                            direction="in", body=data.body, created_at=at))
        ticket.last_customer_message_at = at
    timeline.record(session, customer.id, timeline.OPENED, f"service:ticket:{ticket.id}:opened", at,
                    {"ticket": ticket.number, "subject": ticket.subject, "channel": channel,
                     "priority": ticket.priority})
    emit(session, "service.ticket_opened", customer.id, {"ticket_id": ticket.id, "number": ticket.number,
                                                         "channel": channel, "priority": ticket.priority})
    sla.opened(session, ticket, now)
    if data.assignee_id is not None:
        lock_routing(session)
        _assign_by_hand(session, ticket, data.assignee_id, by, now)
    elif data.route:
        route(session, ticket.id, now, pool=pool)
    session.flush()
    return ticket


# --- reading ---------------------------------------------------------------------------------------


def get_ticket(session: Session, ticket_id: int, *, for_update: bool = False) -> Ticket:
    ticket = session.get(Ticket, ticket_id, with_for_update=for_update, populate_existing=for_update)
    if ticket is None:
        raise NotFound("ticket", ticket_id)
    return ticket


def find_ticket(session: Session, key: str) -> Ticket:
    """A ticket by id ("42") or number ("TK-000042")."""
    if key.isdigit():
        return get_ticket(session, int(key))
    ticket = session.scalar(sa.select(Ticket).where(Ticket.number == key.strip().upper()))
    if ticket is None:
        raise NotFound("ticket", key)
    return ticket


VIEWS = ("all", "open", "mine", "unassigned", "team", "sla_at_risk")


def list_tickets(session: Session, *, view: str = "all", user_id: int | None = None, team_id: int | None = None,
                 customer_id: int | None = None, status: str | None = None, priority: str | None = None,
                 tag: str | None = None, at_risk_before: datetime | None = None, after: int | None = None,
                 limit: int = 50) -> list[Ticket]:
    """Tickets of a view, newest first (the unassigned view in queue order). `after`: the last id seen."""
    query = sa.select(Ticket).where(Ticket.merged_into_id.is_(None))
    if view in ("open", "mine", "unassigned", "team", "sla_at_risk"):
        query = query.where(Ticket.status.in_(OPEN_STATUSES))
    if view == "mine":
        if user_id is None:
            raise FieldError("user_id", "the mine view needs the agent's user id")
        query = query.where(Ticket.assignee_id == user_id)
    elif view == "unassigned":
        query = query.where(Ticket.assignee_id.is_(None))
    elif view == "team":
        if team_id is None:
            raise FieldError("team_id", "the team view needs a team id")
    for column, value in ((Ticket.team_id, team_id), (Ticket.customer_id, customer_id), (Ticket.status, status),
                          (Ticket.priority, priority)):
        if value is not None:
            query = query.where(column == value)
    if view == "sla_at_risk":  # due clocks first, then their tickets: see clm.service.at_risk
        from clm.service import at_risk

        return at_risk.page(session, query, at_risk_before or utcnow(), after=after, limit=limit, tag=tag)
    if tag is not None:
        rows = [t for t in session.scalars(query.order_by(Ticket.id.desc())) if tag in (t.tags or [])]
        return [t for t in rows if after is None or t.id < after][:limit]
    if view == "unassigned":
        from clm.service.routing import queue_order

        return list(session.scalars(query.order_by(*queue_order(routing_settings(session).vip_first)).limit(limit)))
    if after is not None:
        query = query.where(Ticket.id < after)
    return list(session.scalars(query.order_by(Ticket.id.desc()).limit(limit)))


def open_tickets_of(session: Session, customer_id: int, limit: int = 20) -> list[Ticket]:
    """The customer's unsolved tickets, newest first (for the customer 360)."""
    return list(session.scalars(sa.select(Ticket).where(
        Ticket.customer_id == customer_id, Ticket.status.in_(OPEN_STATUSES), Ticket.merged_into_id.is_(None))
        .order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit)))


# --- changing --------------------------------------------------------------------------------------


def _assign_by_hand(session: Session, ticket: Ticket, user_id: int | None, by: int | None, now: datetime) -> None:
    """A person's assignment: to an agent with room (capacity holds for people too), or back to the queue."""
    if user_id is None:
        assign(session, ticket, None, "returned to the queue by hand", now, actor="user", by=by)
        return
    agent = _check_agent(session, user_id)
    if ticket.assignee_id == user_id:
        return
    from clm.service.agents import loads

    load = loads(session, [user_id]).get(user_id, 0)
    if ticket.status in OPEN_STATUSES and load >= agent.capacity:
        raise ServiceConflict("agent_full", f"agent {user_id} already has {load} open tickets, their capacity; "
                                            "raise the capacity or solve one first", "assignee_id")
    who = session.get(User, by).name if by and session.get(User, by) else "a staff member"
    assign(session, ticket, user_id, f"manual: assigned by {who} ({agent.availability}, {load + 1} of {agent.capacity})",
           now, actor="user", by=by)


def _set_status(session: Session, ticket: Ticket, status: str, now: datetime, by: int | None, actor: str,
                reason: str | None = None) -> None:
    old = ticket.status
    if old == status:
        return
    if old == "closed":
        raise ServiceConflict("ticket_closed", f"ticket {ticket.number} is closed; open a new ticket instead", "status")
    if status == "new":
        raise FieldError("status", "a ticket cannot go back to new")
    ticket.status, ticket.status_changed_at, ticket.updated_at = status, now, now
    if status == "solved":
        ticket.solved_at = now
    if status == "closed":
        ticket.closed_at = now
        ticket.solved_at = ticket.solved_at or now
    if old in CLOSED and status in OPEN_STATUSES:
        ticket.solved_at = ticket.closed_at = None
    audit.record(session, ticket, "status", old, status, at=now, user_id=by, actor=actor, reason=reason)
    sla.status_changed(session, ticket, old, status, now)
    if status == "solved":
        timeline.record(session, ticket.customer_id, timeline.SOLVED, f"service:ticket:{ticket.id}:solved:{now.isoformat()}",
                        now, {"ticket": ticket.number, "subject": ticket.subject, "channel": ticket.channel})
    emit(session, "service.ticket_status_changed", ticket.customer_id,
         {"ticket_id": ticket.id, "number": ticket.number, "from": old, "to": status})


def update_ticket(session: Session, ticket_id: int, changes: TicketUpdate, *, by: int | None = None,
                  now: datetime | None = None) -> Ticket:
    """Apply the sent fields, each change audited. Solving or closing frees the agent: the queue drains."""
    now = now or utcnow()
    sent = changes.model_fields_set
    may_route = bool(sent & {"status", "assignee_id"})
    if may_route:
        lock_routing(session)
    ticket = get_ticket(session, ticket_id, for_update=True)
    if ticket.merged_into_id is not None:
        raise ServiceConflict("ticket_merged", f"ticket {ticket.number} was merged into another; change that one")
    for name in ("subject", "priority", "status"):
        if name in sent and getattr(changes, name) is None:
            raise FieldError(name, "must not be empty")
    simple: dict[str, Any] = {}
    if "subject" in sent:
        simple["subject"] = changes.subject.strip()
    if "priority" in sent:
        simple["priority"] = changes.priority
    if "type" in sent:
        simple["type"] = changes.type
    if "language" in sent:
        simple["language"] = changes.language.lower() if changes.language else None
    if "tags" in sent:
        simple["tags"] = _tags(changes.tags or [])
    if "fields" in sent:
        simple["fields"] = check_fields(session, changes.fields or {}, ticket.fields)
    if "team_id" in sent:
        _check_team(session, changes.team_id)
        simple["team_id"] = changes.team_id
    if "order_id" in sent:
        if changes.order_id is not None:
            _check_order(session, changes.order_id, ticket.customer_id)
        simple["order_id"] = changes.order_id
    changed = []
    for name, value in simple.items():
        old = getattr(ticket, name)
        if old != value:
            setattr(ticket, name, value)
            audit.record(session, ticket, name, old, value, at=now, user_id=by)
            changed.append(name)
    if changed:  # status and assignee announce themselves; this is for open pages (clm.service.live)
        emit(session, "service.ticket_updated", ticket.customer_id,
             {"ticket_id": ticket.id, "number": ticket.number, "fields": changed, "by": by})
    if "priority" in simple:
        ticket.priority_rank = PRIORITY_RANK[ticket.priority]
    if "status" in sent:
        _set_status(session, ticket, changes.status, now, by, "user")
    if "assignee_id" in sent:
        _assign_by_hand(session, ticket, changes.assignee_id, by, now)
    ticket.updated_at = now
    session.flush()
    if may_route:
        drain(session, now)
    return ticket


# --- notes, merge ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mentioned:
    note: Note
    users: list[User]


def mentioned_users(session: Session, body: str) -> list[User]:
    """Active staff named by `@email` or `@local-part` (when only one user has it); others are plain text."""
    tokens = {m.group(1).rstrip(".").lower() for m in MENTION.finditer(body or "")}
    if not tokens:
        return []
    users = list(session.scalars(sa.select(User).where(User.active.is_(True))))
    found: dict[int, User] = {}
    for token in tokens:
        if "@" in token:
            hits = [u for u in users if u.email.lower() == token]
        else:
            hits = [u for u in users if u.email.lower().split("@")[0] == token]
        if len(hits) == 1:
            found[hits[0].id] = hits[0]
    return [found[k] for k in sorted(found)]


def add_note(session: Session, ticket_id: int, body: str, *, by: int | None = None,
             now: datetime | None = None) -> Mentioned:
    """An internal note; each staff member @mentioned gets a `service.mentioned` outbox event."""
    now = now or utcnow()
    body = (body or "").strip()
    if not body:
        raise FieldError("body", "a note needs some text")
    if len(body) > 20_000:
        raise FieldError("body", "a note is at most 20,000 characters")
    ticket = get_ticket(session, ticket_id)
    users = mentioned_users(session, body)
    note = Note(ticket_id=ticket.id, customer_id=ticket.customer_id, author_id=by, body=body,
                mentions=[u.id for u in users], created_at=now)
    session.add(note)
    session.flush()
    audit.record(session, ticket, "note", None, note.id, at=now, user_id=by)
    emit(session, "service.note_added", ticket.customer_id, {"ticket_id": ticket.id, "note_id": note.id, "by": by})
    for user in users:
        emit(session, "service.mentioned", ticket.customer_id, {
            "ticket_id": ticket.id, "number": ticket.number, "note_id": note.id, "user_id": user.id, "by": by})
    session.flush()
    return Mentioned(note, users)


def notes_of(session: Session, ticket_id: int) -> list[Note]:
    return list(session.scalars(sa.select(Note).where(Note.ticket_id == ticket_id).order_by(Note.created_at, Note.id)))


def merge_tickets(session: Session, source_id: int, target_id: int, *, by: int | None = None,
                  now: datetime | None = None) -> Ticket:
    """Move the source ticket's conversations, messages, notes and tasks into the target, which keeps its
    number; the source is closed, pointing at the target. Both must be the same customer's."""
    from clm.sales.models import Task

    now = now or utcnow()
    if source_id == target_id:
        raise ServiceConflict("same_ticket", "a ticket cannot be merged into itself", "target_id")
    lock_routing(session)
    first, second = sorted((source_id, target_id))
    get_ticket(session, first, for_update=True)  # row locks in id order: two opposite merges wait, not deadlock
    get_ticket(session, second, for_update=True)
    source, target = get_ticket(session, source_id), get_ticket(session, target_id)
    for ticket in (source, target):
        if ticket.merged_into_id is not None:
            raise ServiceConflict("ticket_merged", f"ticket {ticket.number} was already merged")
    if target.status == "closed":
        raise ServiceConflict("ticket_closed", f"ticket {target.number} is closed; merge into an open ticket",
                              "target_id")
    if source.customer_id != target.customer_id:
        raise ServiceConflict("other_customer", f"tickets {source.number} and {target.number} belong to different "
                                                "customers; merge the customers first", "target_id")
    for model in (Conversation, Message, Note):
        session.execute(sa.update(model).where(model.ticket_id == source.id).values(ticket_id=target.id))
    session.execute(sa.update(Task).where(Task.ticket_id == source.id).values(ticket_id=target.id))
    for timer in sla.timers(session, source.id, sla.ACTIVE):
        timer.state = "cancelled"
    merged_tags = list(dict.fromkeys([*(target.tags or []), *(source.tags or [])]))
    if merged_tags != (target.tags or []):
        audit.record(session, target, "tags", target.tags, merged_tags, at=now, user_id=by)
        target.tags = merged_tags
    for stamp in ("last_customer_message_at", "last_agent_reply_at"):
        values = [v for v in (getattr(source, stamp), getattr(target, stamp)) if v is not None]
        setattr(target, stamp, max(values) if values else None)
    if target.first_response_at is None:
        target.first_response_at = source.first_response_at
    if target.order_id is None and source.order_id is not None:
        target.order_id = source.order_id
    if source.status != "closed":
        _set_status(session, source, "closed", now, by, "user", reason=f"merged into {target.number}")
    source.merged_into_id = target.id
    audit.record(session, source, "merged_into", None, target.number, at=now, user_id=by)
    audit.record(session, target, "merged_from", None, source.number, at=now, user_id=by)
    target.updated_at = source.updated_at = now
    session.flush()
    session.expire_all()
    drain(session, now)
    return get_ticket(session, target.id)


def ticket_detail(session: Session, ticket: Ticket) -> dict[str, Any]:
    """What a ticket's page shows beside its fields: messages, notes, SLA clocks, the audit."""
    messages = list(session.scalars(sa.select(Message).where(Message.ticket_id == ticket.id)
                                    .order_by(Message.created_at, Message.id)))
    return {"messages": messages, "notes": notes_of(session, ticket.id), "timers": sla.timers(session, ticket.id),
            "changes": audit.history(session, ticket.id)}
