"""What the agent workspace reads: the views with their counts and pages, a ticket's conversation as one
thread (messages both ways, notes and the audit, in time order), and the customer beside it (stage, CLV,
P(alive), loyalty tier and points, last orders, open tasks), each read from the service that owns it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.customers.models import Customer
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError
from clm.service import audit
from clm.service.models import (
    OPEN_STATUSES,
    PRIORITIES,
    STATUSES,
    Message,
    Note,
    SlaTimer,
    TeamMember,
    Ticket,
)
from clm.service.tickets import list_tickets

VIEWS = ("mine", "unassigned", "team", "sla_at_risk", "all")
AT_RISK_AHEAD = timedelta(hours=1)  # a running clock due within the hour (or overdue) puts a ticket at risk
PAGE = 50


@dataclass(frozen=True)
class Filters:
    """What narrows a view: status, priority, channel, tag; `after` is the last ticket id of the page before."""

    status: str | None = None
    priority: str | None = None
    channel: str | None = None
    tag: str | None = None
    after: int | None = None

    @classmethod
    def read(cls, status: str | None = None, priority: str | None = None, channel: str | None = None,
             tag: str | None = None, after: str | None = None) -> Filters:
        """From query parameters, each checked: an unknown value is a FieldError naming the parameter."""
        status, priority = (status or "").strip() or None, (priority or "").strip() or None
        if status is not None and status not in STATUSES:
            raise FieldError("status", f"{status!r} is not a status; choose from {', '.join(STATUSES)}")
        if priority is not None and priority not in PRIORITIES:
            raise FieldError("priority", f"{priority!r} is not a priority; choose from {', '.join(PRIORITIES)}")
        text = (after or "").strip()
        if text and (not text.isdigit() or len(text) > 18):
            raise FieldError("after", "must be a ticket id")
        tag = " ".join((tag or "").split()).lower()[:64] or None
        return cls(status, priority, (channel or "").strip()[:16] or None, tag, int(text) if text else None)


@dataclass
class ViewPage:
    view: str
    tickets: list[Ticket]
    next_after: int | None
    counts: dict[str, int]
    team_ids: list[int]
    names: dict[int, str] = field(default_factory=dict)  # customer id -> name
    agents: dict[int, str] = field(default_factory=dict)  # user id -> name
    due: dict[int, datetime] = field(default_factory=dict)  # ticket id -> its earliest running SLA deadline
    capped: set[str] = field(default_factory=set)  # views whose count is a floor (shown "1,000+")


def teams_of(session: Session, user_id: int) -> list[int]:
    return list(session.scalars(sa.select(TeamMember.team_id).where(TeamMember.user_id == user_id)
                                .order_by(TeamMember.team_id)))


def _view_query(view: str, user_id: int, team_ids: list[int], now: datetime) -> sa.Select:
    query = sa.select(Ticket.id).where(Ticket.merged_into_id.is_(None))
    if view != "all":
        query = query.where(Ticket.status.in_(OPEN_STATUSES))
    if view == "mine":
        query = query.where(Ticket.assignee_id == user_id)
    elif view == "unassigned":
        query = query.where(Ticket.assignee_id.is_(None))
    elif view == "team":
        query = query.where(Ticket.team_id.in_(team_ids or [-1]))
    elif view == "sla_at_risk":
        query = query.where(Ticket.id.in_(sa.select(SlaTimer.ticket_id).where(
            SlaTimer.state == "running", SlaTimer.due_at <= now + AT_RISK_AHEAD)))
    return query


def view_counts(session: Session, user_id: int, team_ids: list[int], now: datetime) -> dict[str, int]:
    """How many tickets each view holds now (open ones; `all` counts every ticket). "SLA at risk" is counted
    from the due running clocks first, like its page, exact up to at_risk.COUNT_CAP (more: COUNT_CAP + 1)."""
    from clm.service import at_risk

    return {view: at_risk.count(session, now + AT_RISK_AHEAD) if view == "sla_at_risk" else
            session.scalar(sa.select(sa.func.count()).select_from(
                _view_query(view, user_id, team_ids, now).subquery())) or 0 for view in VIEWS}


def view_page(session: Session, view: str, user: User, filters: Filters, now: datetime | None = None,
              limit: int = PAGE) -> ViewPage:
    """A page of a view with the filters applied (newest first; unassigned in queue order)."""
    if view not in VIEWS:
        raise FieldError("view", f"{view!r} is not a view; choose from {', '.join(VIEWS)}")
    now = now or utcnow()
    team_ids = teams_of(session, user.id)
    query = sa.select(Ticket).where(Ticket.id.in_(_view_query(view, user.id, team_ids, now)))
    for column, value in ((Ticket.status, filters.status), (Ticket.priority, filters.priority),
                          (Ticket.channel, filters.channel)):
        if value is not None:
            query = query.where(column == value)
    if view == "unassigned" and filters.tag is None:
        # the queue's order, as routing drains it; paged by position, not id
        tickets = list_tickets(session, view="unassigned", status=filters.status, priority=filters.priority,
                               limit=2000)
        if filters.channel:
            tickets = [t for t in tickets if t.channel == filters.channel]
        start = 0
        if filters.after is not None:
            start = next((i + 1 for i, t in enumerate(tickets) if t.id == filters.after), len(tickets))
        page = tickets[start:start + limit + 1]
    elif view == "sla_at_risk":  # due clocks first, then their tickets (clm.service.at_risk)
        from clm.service import at_risk

        base = sa.select(Ticket).where(Ticket.merged_into_id.is_(None), Ticket.status.in_(OPEN_STATUSES))
        for column, value in ((Ticket.status, filters.status), (Ticket.priority, filters.priority),
                              (Ticket.channel, filters.channel)):
            if value is not None:
                base = base.where(column == value)
        page = at_risk.page(session, base, now + AT_RISK_AHEAD, after=filters.after, limit=limit + 1,
                            tag=filters.tag)
    else:
        if filters.after is not None:
            query = query.where(Ticket.id < filters.after)
        if filters.tag is not None:  # tags are a JSON list: filtered here, over the view's newest 2,000
            rows = [t for t in session.scalars(query.order_by(Ticket.id.desc()).limit(2000))
                    if filters.tag in (t.tags or [])]
            page = rows[:limit + 1]
        else:
            page = list(session.scalars(query.order_by(Ticket.id.desc()).limit(limit + 1)))
    more = len(page) > limit
    page = page[:limit]
    from clm.service.at_risk import COUNT_CAP

    counts = view_counts(session, user.id, team_ids, now)
    result = ViewPage(view, page, page[-1].id if more and page else None, counts, team_ids)
    if counts["sla_at_risk"] > COUNT_CAP:
        counts["sla_at_risk"], result.capped = COUNT_CAP, {"sla_at_risk"}
    result.names = customer_names(session, {t.customer_id for t in page})
    result.agents = staff_names(session)
    result.due = earliest_deadlines(session, [t.id for t in page])
    return result


def customer_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(sa.select(Customer.id, Customer.full_name, Customer.email, Customer.phone)
                           .where(Customer.id.in_(ids)))
    return {i: name or email or phone or f"#{i}" for i, name, email, phone in rows}


def staff_names(session: Session) -> dict[int, str]:
    return {i: name or email for i, name, email in session.execute(sa.select(User.id, User.name, User.email))}


def earliest_deadlines(session: Session, ticket_ids: list[int]) -> dict[int, datetime]:
    if not ticket_ids:
        return {}
    rows = session.execute(sa.select(SlaTimer.ticket_id, sa.func.min(SlaTimer.due_at))
                           .where(SlaTimer.ticket_id.in_(ticket_ids), SlaTimer.state == "running",
                                  SlaTimer.due_at.is_not(None)).group_by(SlaTimer.ticket_id))
    return {ticket_id: due for ticket_id, due in rows if due is not None}


# --- a ticket's thread ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One line of a ticket's thread: a message (in/out), a note, or a change from the audit."""

    kind: str  # "in", "out", "note", "change"
    at: datetime
    id: int
    body: str | None = None
    author_id: int | None = None
    change: Any = None
    attachments: tuple[dict[str, Any], ...] = ()  # a message's files: id (to download), filename, size


def thread(session: Session, ticket_id: int, after: datetime | None = None) -> list[Entry]:
    """Messages, notes and changes of a ticket in time order (messages before notes before changes at the
    same instant). `after`: only what happened later (for a live update)."""
    entries: list[Entry] = []
    messages = sa.select(Message).where(Message.ticket_id == ticket_id)
    notes = sa.select(Note).where(Note.ticket_id == ticket_id)
    if after is not None:
        messages, notes = messages.where(Message.created_at > after), notes.where(Note.created_at > after)
    rows = list(session.scalars(messages.order_by(Message.created_at, Message.id)))
    files = _files_of(session, [m.id for m in rows])
    for m in rows:
        entries.append(Entry(m.direction, m.created_at, m.id, m.body, m.author_id, attachments=files.get(m.id, ())))
    for n in session.scalars(notes.order_by(Note.created_at, Note.id)):
        entries.append(Entry("note", n.created_at, n.id, n.body, n.author_id))
    for c in audit.history(session, ticket_id):
        if c.field in ("reply", "note", "created") or (after is not None and c.at <= after):
            continue  # the reply and the note are shown themselves
        entries.append(Entry("change", c.at, c.id, None, c.user_id, c))
    order = {"in": 0, "out": 0, "note": 1, "change": 2}
    return sorted(entries, key=lambda e: (e.at, order[e.kind], e.id))


def _files_of(session: Session, message_ids: list[int]) -> dict[int, tuple[dict[str, Any], ...]]:
    """The stored files of these messages (the attachments table, not what a message's JSON claims)."""
    from clm.service.mail.models import Attachment

    out: dict[int, list[dict[str, Any]]] = {}
    for chunk in range(0, len(message_ids), 500):
        for file_id, message_id, name, size in session.execute(
                sa.select(Attachment.id, Attachment.message_id, Attachment.filename, Attachment.size)
                .where(Attachment.message_id.in_(message_ids[chunk:chunk + 500])).order_by(Attachment.id)):
            out.setdefault(message_id, []).append({"id": file_id, "filename": name, "size": size})
    return {k: tuple(v) for k, v in out.items()}


# --- the customer beside the conversation ----------------------------------------------------------------


@dataclass
class Panel:
    customer: Customer
    stage: str | None
    clv: int | None
    clv_currency: str | None
    p_alive: float | None
    tier: str | None
    points: int | None
    pending_points: int | None
    orders: list[Any]
    order_count: int
    tasks: list[Any]
    other_tickets: list[Ticket]


def customer_panel(session: Session, customer_id: int, ticket_id: int | None = None, orders: int = 5) -> Panel:
    """The customer as the agent needs them beside a conversation, each figure from its own service's table
    (empty when that capability has nothing on them: no scores yet, not a loyalty member)."""
    from clm.analytics.models import CustomerScore
    from clm.commerce.models import Order
    from clm.loyalty.models import Member, Tier
    from clm.sales.models import Task

    customer = session.get(Customer, customer_id)
    score = session.get(CustomerScore, customer_id)
    member = session.get(Member, customer_id)
    tier_name = None
    if member is not None and member.tier:
        tier_name = session.scalar(sa.select(Tier.name).where(Tier.key == member.tier)) or member.tier
    last_orders = list(session.scalars(sa.select(Order).where(Order.customer_id == customer_id)
                                       .order_by(Order.placed_at.desc(), Order.id.desc()).limit(orders)))
    count = session.scalar(sa.select(sa.func.count()).select_from(Order).where(Order.customer_id == customer_id))
    tasks = list(session.scalars(sa.select(Task).where(Task.customer_id == customer_id, Task.done_at.is_(None))
                                 .order_by(Task.due_at, Task.id).limit(10)))
    others = list(session.scalars(sa.select(Ticket).where(
        Ticket.customer_id == customer_id, Ticket.status.in_(OPEN_STATUSES), Ticket.merged_into_id.is_(None),
        Ticket.id != (ticket_id or 0)).order_by(Ticket.id.desc()).limit(10)))
    return Panel(customer=customer, stage=customer.lifecycle_stage if customer else None,
                 clv=score.predicted_clv_12m if score else None, clv_currency=score.currency if score else None,
                 p_alive=score.p_alive if score else None, tier=tier_name,
                 points=member.available if member else None, pending_points=member.pending if member else None,
                 orders=last_orders, order_count=count or 0, tasks=tasks, other_tickets=others)
