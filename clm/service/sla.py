"""SLAs: policies, business calendars, and the clocks of each ticket.

A ticket gets the first active policy (by position) whose priority, channel and tier match (None matches
anything). Its targets start clocks: first response and resolution when the ticket opens, next response
whenever the customer writes after an agent's reply. Each clock's deadline is computed when it starts, in
the policy's business hours, and stored with its explanation (the calendar, the days skipped and why).

While the ticket is pending the customer, its running clocks pause. When it leaves that status, the
deadline is computed again from the status history: the business time already used (the pauses left
out) is taken off the target and the rest is added from that moment.

Timers live on the jobs queue: `service.sla_warn` before the deadline and `service.sla_breach` at it,
keyed by timer and deadline, so a moved deadline's old jobs find a different deadline and do nothing. At
a breach the policy's escalation applies, each step recorded on the ticket: notify (an outbox event
`service.sla_breached` for notifications to act on), raise the priority one step, reassign.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from clm.jobs.queue import enqueue
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound
from clm.outbox.service import emit
from clm.service import audit
from clm.service.hours import BusinessHours
from clm.service.models import (
    CHANNELS,
    MAX_ID,
    PRIORITIES,
    PRIORITY_RANK,
    Calendar,
    SlaPolicy,
    SlaTimer,
    Ticket,
)

WARN_KIND, BREACH_KIND = "service.sla_warn", "service.sla_breach"
DEFAULT_HOURS = {d: [["08:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
ACTIVE = ("running", "paused")
PAUSING_STATUS = "pending_customer"


class CalendarIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    timezone: str = Field("Asia/Ho_Chi_Minh", max_length=64)
    hours: dict[str, list[list[str]]] = Field(default_factory=lambda: dict(DEFAULT_HOURS))
    holiday_country: str | None = Field("VN", pattern="^[A-Z]{2}$")
    closed_days: list[str] = Field(default_factory=list, max_length=1000)
    is_default: bool = False


class Escalation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notify: bool = True
    raise_priority: bool = False
    reassign: bool = False


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    position: int = Field(0, ge=0, le=10_000)
    priority: Literal[PRIORITIES] | None = None  # type: ignore[valid-type]
    channel: Literal[CHANNELS] | None = None  # type: ignore[valid-type]
    tier: str | None = Field(None, min_length=1, max_length=32)
    first_response_minutes: int | None = Field(None, ge=1, le=525_600)
    next_response_minutes: int | None = Field(None, ge=1, le=525_600)
    resolution_minutes: int | None = Field(None, ge=1, le=525_600)
    warn_before_minutes: int = Field(15, ge=0, le=10_080)
    escalation: Escalation = Field(default_factory=Escalation)
    calendar_id: int | None = Field(None, ge=1, le=MAX_ID)
    active: bool = True


# --- calendars and policies ------------------------------------------------------------------------


def hours_of(calendar: Calendar | None, timezone: str = "Asia/Ho_Chi_Minh") -> BusinessHours:
    if calendar is None:
        return BusinessHours.of(DEFAULT_HOURS, timezone, "VN")
    return BusinessHours.of(calendar.hours, calendar.timezone, calendar.holiday_country, calendar.closed_days)


def save_calendar(session: Session, data: CalendarIn, calendar_id: int | None = None) -> Calendar:
    BusinessHours.of(data.hours, data.timezone, data.holiday_country, data.closed_days)  # checks every field
    clash = session.scalar(sa.select(Calendar.id).where(Calendar.name == data.name.strip()))
    if clash is not None and clash != calendar_id:
        raise FieldError("name", f"a calendar named {data.name!r} already exists", "duplicate")
    if calendar_id is None:
        calendar = Calendar(created_at=utcnow())
        session.add(calendar)
    else:
        calendar = get_calendar(session, calendar_id)
    calendar.name, calendar.timezone, calendar.hours = data.name.strip(), data.timezone, data.hours
    calendar.holiday_country, calendar.closed_days = data.holiday_country, sorted(set(data.closed_days))
    if data.is_default:
        session.execute(sa.update(Calendar).values(is_default=False))
    calendar.is_default = data.is_default
    session.flush()
    return calendar


def get_calendar(session: Session, calendar_id: int) -> Calendar:
    calendar = session.get(Calendar, calendar_id)
    if calendar is None:
        raise NotFound("calendar", calendar_id)
    return calendar


def default_calendar(session: Session) -> Calendar | None:
    return session.scalar(sa.select(Calendar).where(Calendar.is_default.is_(True)).limit(1))


def list_calendars(session: Session) -> list[Calendar]:
    return list(session.scalars(sa.select(Calendar).order_by(Calendar.name)))


def save_policy(session: Session, data: PolicyIn, policy_id: int | None = None) -> SlaPolicy:
    if not any((data.first_response_minutes, data.next_response_minutes, data.resolution_minutes)):
        raise FieldError("first_response_minutes", "a policy needs at least one target "
                                                    "(first_response_minutes, next_response_minutes, resolution_minutes)")
    if data.calendar_id is not None:
        if session.get(Calendar, data.calendar_id) is None:
            raise FieldError("calendar_id", f"there is no calendar {data.calendar_id}", "not_found")
    clash = session.scalar(sa.select(SlaPolicy.id).where(SlaPolicy.name == data.name.strip()))
    if clash is not None and clash != policy_id:
        raise FieldError("name", f"a policy named {data.name!r} already exists", "duplicate")
    if policy_id is None:
        policy = SlaPolicy(created_at=utcnow())
        session.add(policy)
    else:
        policy = session.get(SlaPolicy, policy_id)
        if policy is None:
            raise NotFound("SLA policy", policy_id)
    values = data.model_dump()
    values["name"] = values["name"].strip()
    for key, value in values.items():
        setattr(policy, key, value)
    session.flush()
    return policy


def list_policies(session: Session) -> list[SlaPolicy]:
    return list(session.scalars(sa.select(SlaPolicy).order_by(SlaPolicy.position, SlaPolicy.id)))


def policy_for(session: Session, ticket: Ticket) -> SlaPolicy | None:
    """The first active policy (by position) matching the ticket's priority, channel and customer tier."""
    from clm.service.snapshot import cached

    tier: list[str | None] = []
    active = cached(session, "sla_policies", lambda: list(session.scalars(
        sa.select(SlaPolicy).where(SlaPolicy.active.is_(True)).order_by(SlaPolicy.position, SlaPolicy.id))))
    for policy in active:
        if policy.priority and policy.priority != ticket.priority:
            continue
        if policy.channel and policy.channel != ticket.channel:
            continue
        if policy.tier:
            if not tier:
                from clm.service.routing import customer_tier

                tier.append(customer_tier(session, ticket.customer_id))
            if tier[0] != policy.tier:
                continue
        return policy
    return None


def _calendar_of(session: Session, policy: SlaPolicy | None) -> Calendar | None:
    if policy is not None and policy.calendar_id is not None:
        return session.get(Calendar, policy.calendar_id)
    from clm.service.snapshot import cached

    return cached(session, "default_calendar", lambda: default_calendar(session))


# --- clocks ----------------------------------------------------------------------------------------


def _explain(hours: BusinessHours, calendar: Calendar | None, policy: SlaPolicy, metric: str, minutes: int,
             start: datetime, due: datetime, used: timedelta = timedelta(0),
             pauses: list[dict[str, str]] | None = None) -> dict[str, Any]:
    local = hours.tz
    skipped = [{"day": d.isoformat(), "reason": r} for d, r in hours.closed_days_between(start, due)]
    text = (f"{metric.replace('_', ' ')}: {minutes} business minutes ({policy.name}) from "
            f"{start.astimezone(local):%a %Y-%m-%d %H:%M}, counted in {calendar.name if calendar else 'the default hours'} "
            f"({hours.tz.key}), due {due.astimezone(local):%a %Y-%m-%d %H:%M}")
    if used:
        text += f"; {int(used.total_seconds() // 60)} min already used before the last pause"
    if skipped:
        text += "; skipped " + ", ".join(f"{s['day']} ({s['reason']})" for s in skipped)
    return {"policy_id": policy.id, "policy": policy.name, "metric": metric, "target_minutes": minutes,
            "calendar": calendar.name if calendar else None, "timezone": hours.tz.key, "from": start.isoformat(),
            "due": due.isoformat(), "used_minutes": int(used.total_seconds() // 60), "skipped": skipped,
            "pauses": pauses or [], "text": text}


def jobs_for(timer_id: int, due_at: datetime, policy: SlaPolicy | None, now: datetime) -> list[dict[str, Any]]:
    """The warning and breach jobs of a running clock (`clm.jobs.queue.enqueue` keyword arguments)."""
    due = due_at.isoformat()
    out = []
    warn_before = timedelta(minutes=policy.warn_before_minutes if policy else 15)
    if warn_before:
        out.append({"kind": WARN_KIND, "args": {"timer_id": timer_id, "due_at": due},
                    "run_at": max(due_at - warn_before, now), "unique_key": f"{WARN_KIND}:{timer_id}:{due}",
                    "max_attempts": 5})
    out.append({"kind": BREACH_KIND, "args": {"timer_id": timer_id, "due_at": due}, "run_at": max(due_at, now),
                "unique_key": f"{BREACH_KIND}:{timer_id}:{due}", "max_attempts": 5})
    return out


def _schedule(session: Session, timer: SlaTimer, policy: SlaPolicy | None, now: datetime) -> None:
    if timer.due_at is None or timer.state != "running":
        return
    for job in jobs_for(timer.id, timer.due_at, policy, now):
        if job["kind"] == WARN_KIND and timer.warned_at is not None:
            continue
        kind = job.pop("kind")
        enqueue(session, kind, **job)


def clock(session: Session, ticket: Ticket, metric: str, at: datetime) -> tuple[SlaPolicy, dict[str, Any]] | None:
    """The policy and the `service_sla_timers` values of the ticket's `metric` clock started at `at`; None when
    its policy has no such target. (`ticket` may be any object with a ticket's priority, channel, customer_id
    and id.)"""
    policy = policy_for(session, ticket)
    minutes = getattr(policy, f"{metric}_minutes", None) if policy else None
    if not minutes:
        return None
    from clm.service.snapshot import cached

    calendar = _calendar_of(session, policy)
    hours = cached(session, f"hours:{calendar.id if calendar else None}", lambda: hours_of(calendar))
    due = hours.add(at, timedelta(minutes=minutes))
    return policy, {"ticket_id": ticket.id, "customer_id": ticket.customer_id, "policy_id": policy.id,
                    "metric": metric, "target_minutes": minutes, "started_at": at, "due_at": due, "state": "running",
                    "explanation": _explain(hours, calendar, policy, metric, minutes, at, due)}


def start(session: Session, ticket: Ticket, metric: str, at: datetime, now: datetime | None = None) -> SlaTimer | None:
    """Start the ticket's `metric` clock at `at` when its policy has that target; the deadline is stored."""
    now = now or utcnow()
    started = clock(session, ticket, metric, at)
    if started is None:
        return None
    policy, values = started
    timer = SlaTimer(**values)
    session.add(timer)
    session.flush()
    _schedule(session, timer, policy, now)
    return timer


def timers(session: Session, ticket_id: int, states: tuple[str, ...] | None = None) -> list[SlaTimer]:
    query = sa.select(SlaTimer).where(SlaTimer.ticket_id == ticket_id)
    if states:
        query = query.where(SlaTimer.state.in_(states))
    return list(session.scalars(query.order_by(SlaTimer.started_at, SlaTimer.id)))


def opened(session: Session, ticket: Ticket, now: datetime) -> None:
    for metric in ("first_response", "resolution"):
        start(session, ticket, metric, ticket.created_at, now)


def agent_replied(session: Session, ticket: Ticket, at: datetime) -> None:
    """An agent's reply meets the running first- and next-response clocks."""
    for timer in timers(session, ticket.id, ACTIVE):
        if timer.metric in ("first_response", "next_response"):
            timer.met_at, timer.state = at, "met"
    session.flush()


def customer_wrote(session: Session, ticket: Ticket, at: datetime, now: datetime) -> SlaTimer | None:
    """A customer's message after an agent's reply starts a next-response clock (one at a time)."""
    if ticket.last_agent_reply_at is None:
        return None
    if any(t.metric == "next_response" for t in timers(session, ticket.id, ACTIVE)):
        return None
    return start(session, ticket, "next_response", at, now)


def paused_spans(session: Session, ticket_id: int, since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    """When the ticket was pending the customer between two instants, from its status history."""
    spans, began = [], None
    for change in audit.history(session, ticket_id, "status"):
        if change.new == PAUSING_STATUS and began is None:
            began = change.at
        elif change.new != PAUSING_STATUS and began is not None:
            spans.append((began, change.at))
            began = None
    if began is not None:
        spans.append((began, until))
    return [(max(a, since), min(b, until)) for a, b in spans if b > since and a < until]


def status_changed(session: Session, ticket: Ticket, old: str, new: str, now: datetime) -> None:
    """Pause on entering pending-customer, recompute deadlines on leaving it, stop the clocks on solved."""
    if new in ("solved", "closed"):
        for timer in timers(session, ticket.id, ACTIVE):
            if timer.metric == "resolution":
                timer.met_at, timer.state = now, "met"
            else:
                timer.state = "cancelled"
        session.flush()
        return
    if new == PAUSING_STATUS and old != PAUSING_STATUS:
        for timer in timers(session, ticket.id, ("running",)):
            timer.state, timer.due_at = "paused", None
            timer.explanation = {**timer.explanation, "paused_at": now.isoformat()}
        session.flush()
        return
    if old == PAUSING_STATUS and new != PAUSING_STATUS:
        for timer in timers(session, ticket.id, ("paused",)):
            resume(session, ticket, timer, now)


def resume(session: Session, ticket: Ticket, timer: SlaTimer, now: datetime) -> None:
    """The deadline again: the business time used outside pauses comes off the target."""
    policy = session.get(SlaPolicy, timer.policy_id) if timer.policy_id else None
    calendar = _calendar_of(session, policy)
    hours = hours_of(calendar)
    pauses = paused_spans(session, ticket.id, timer.started_at, now)
    used = hours.between(timer.started_at, now) - sum((hours.between(a, b) for a, b in pauses), timedelta(0))
    left = max(timedelta(minutes=timer.target_minutes) - used, timedelta(0))
    timer.due_at, timer.state = hours.add(now, left), "running"
    if policy is None:
        timer.explanation = {**timer.explanation, "due": timer.due_at.isoformat()}
    else:
        timer.explanation = _explain(hours, calendar, policy, timer.metric, timer.target_minutes, now, timer.due_at,
                                     used, [{"from": a.isoformat(), "to": b.isoformat()} for a, b in pauses])
    session.flush()
    _schedule(session, timer, policy, now)


# --- the jobs ----------------------------------------------------------------------------------------


def _live_timer(session: Session, timer_id: int, due_at: str) -> SlaTimer | None:
    timer = session.get(SlaTimer, timer_id, with_for_update=True, populate_existing=True)
    if timer is None or timer.state != "running" or timer.due_at is None or timer.due_at.isoformat() != due_at:
        return None
    return timer


def warn(session: Session, timer_id: int, due_at: str, now: datetime) -> bool:
    """Before the deadline: announce `service.sla_warning` once (the assignee or the team should act)."""
    timer = _live_timer(session, timer_id, due_at)
    if timer is None or timer.warned_at is not None:
        return False
    ticket = session.get(Ticket, timer.ticket_id)
    timer.warned_at = now
    audit.record(session, ticket, "sla." + timer.metric, None, "warned", at=now, actor="sla",
                 reason=f"{timer.metric.replace('_', ' ')} due {due_at}")
    emit(session, "service.sla_warning", ticket.customer_id, {
        "ticket_id": ticket.id, "number": ticket.number, "metric": timer.metric, "due_at": due_at,
        "assignee_id": ticket.assignee_id, "team_id": ticket.team_id})
    session.flush()
    return True


def breach(session: Session, timer_id: int, due_at: str, now: datetime) -> bool:
    """At the deadline: the clock is breached and the policy's escalation applies, each step recorded."""
    from clm.service.routing import lock_routing, route

    lock_routing(session)  # reassigning routes, and routing locks come before ticket locks
    timer = _live_timer(session, timer_id, due_at)
    if timer is None:
        return False
    ticket = session.get(Ticket, timer.ticket_id, with_for_update=True, populate_existing=True)
    policy = session.get(SlaPolicy, timer.policy_id) if timer.policy_id else None
    escalation = Escalation.model_validate(policy.escalation if policy else {})
    timer.state, timer.breached_at = "breached", now
    what = timer.metric.replace("_", " ")
    audit.record(session, ticket, "sla." + timer.metric, "running", "breached", at=now, actor="sla",
                 reason=f"{what} was due {due_at}")
    if escalation.raise_priority and ticket.priority != PRIORITIES[-1]:
        old = ticket.priority
        ticket.priority = PRIORITIES[PRIORITY_RANK[old] + 1]
        ticket.priority_rank = PRIORITY_RANK[ticket.priority]
        audit.record(session, ticket, "priority", old, ticket.priority, at=now, actor="sla",
                     reason=f"escalation: {what} breached")
    if escalation.notify:
        emit(session, "service.sla_breached", ticket.customer_id, {
            "ticket_id": ticket.id, "number": ticket.number, "metric": timer.metric, "due_at": due_at,
            "assignee_id": ticket.assignee_id, "team_id": ticket.team_id, "priority": ticket.priority})
    session.flush()
    if escalation.reassign and ticket.assignee_id is not None:
        route(session, ticket.id, now, exclude={ticket.assignee_id}, reassign=True,
              prefix=f"escalation: {what} breached; ")
    return True
