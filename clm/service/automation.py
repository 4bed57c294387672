"""Automation: triggers (when a ticket is created, updated, or has waited a while) and macros (an agent's
one-click set of actions), over the same typed conditions and actions.

Conditions: `ticket`, a list of field comparisons that must all hold (status, priority, channel, tags,
custom `fields.<key>`...; `changed`, `changed_to` and `changed_from` on updates), and `customer`, a
segment rule tree (clm.segments) compiled to SQL and asked for the ticket's customer: never SQL text.
Actions: assign (to an agent, to routing, or back to the queue), tag, set priority, set status, reply
from a canned reply, notify staff, create a task, add a note.

A trigger fires once per ticket and occasion (a `service_trigger_runs` row with a unique key): a change
read twice or a retried job does nothing more. Changes a trigger makes are audited with actor
`automation` and the trigger's name, and they fire no `updated` trigger themselves (no loops between
triggers). One action that cannot be done (an agent at capacity) is recorded in the run's outcome and
the others still happen.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Union

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound, dotted
from clm.outbox.service import emit
from clm.service.desk_models import TRIGGER_EVENTS, Macro, Trigger, TriggerRun
from clm.service.errors import ServiceConflict
from clm.service.models import MAX_ID, PRIORITIES, STATUSES, Change, Ticket

TICKET_FIELDS = ("status", "priority", "channel", "type", "tags", "team_id", "assignee_id", "inbox_id", "language",
                 "subject", "vip", "message")
CUSTOM_FIELD = re.compile(r"^fields\.[a-z][a-z0-9_]{0,63}$")
OPS = ("eq", "ne", "in", "not_in", "contains", "not_contains", "exists", "not_exists", "changed", "changed_to",
       "changed_from")
CHANGE_OPS = ("changed", "changed_to", "changed_from")
# Elapsed triggers count from one of the ticket's moments.
SINCE = {"created": "created_at", "updated": "updated_at", "status_changed": "status_changed_at",
         "customer_message": "last_customer_message_at", "agent_reply": "last_agent_reply_at"}
ELAPSED_KIND = "service.trigger_elapsed"
AUTOMATION = "automation"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TicketCondition(_Strict):
    field: str = Field(description="status, priority, channel, type, tags, team_id, assignee_id, inbox_id, "
                                   "language, subject, vip, message (who wrote last on an update: in/out) or "
                                   "fields.<key>")
    op: Literal[OPS]  # type: ignore[valid-type]
    value: Any = None


class Conditions(_Strict):
    ticket: list[TicketCondition] = Field(default_factory=list, max_length=50)
    customer: dict[str, Any] | None = Field(None, description="A segment rule tree about the ticket's customer.")


class AssignAction(_Strict):
    type: Literal["assign"]
    user_id: int | None = Field(None, ge=1, le=MAX_ID, description="The agent; none: see `route`.")
    route: bool = Field(False, description="Let routing choose (with user_id empty); false and no user: the queue.")


class TagAction(_Strict):
    type: Literal["tag"]
    add: list[str] = Field(default_factory=list, max_length=30)
    remove: list[str] = Field(default_factory=list, max_length=30)


class PriorityAction(_Strict):
    type: Literal["set_priority"]
    priority: Literal[PRIORITIES]  # type: ignore[valid-type]


class StatusAction(_Strict):
    type: Literal["set_status"]
    status: Literal[STATUSES[1:]]  # type: ignore[valid-type]


class ReplyAction(_Strict):
    type: Literal["reply"]
    canned: str = Field(min_length=1, max_length=64, description="The key of a canned reply.")


class NotifyAction(_Strict):
    type: Literal["notify"]
    to: Literal["assignee", "team"] | list[Annotated[int, Field(ge=1, le=MAX_ID)]]
    text: str = Field(min_length=1, max_length=1000)


class TaskAction(_Strict):
    type: Literal["task"]
    subject: str = Field(min_length=1, max_length=255)
    due_in_minutes: int = Field(60, ge=0, le=60 * 24 * 365)
    assignee: Literal["assignee"] | Annotated[int, Field(ge=1, le=MAX_ID)] | None = "assignee"
    priority: Literal["low", "high", "very_high", "urgent"] = "high"


class NoteAction(_Strict):
    type: Literal["note"]
    body: str = Field(min_length=1, max_length=20_000)


Action = Annotated[Union[AssignAction, TagAction, PriorityAction, StatusAction, ReplyAction,  # noqa: UP007
                         NotifyAction, TaskAction, NoteAction], Field(discriminator="type")]
_ACTIONS = TypeAdapter(list[Action])
ACTION_TYPES = ("assign", "tag", "set_priority", "set_status", "reply", "notify", "task", "note")


class TriggerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    event: Literal[TRIGGER_EVENTS]  # type: ignore[valid-type]
    minutes: int | None = Field(None, ge=1, le=60 * 24 * 365, description="Elapsed triggers: how long to wait.")
    since: Literal[tuple(SINCE)] | None = Field(None, description="Elapsed triggers: counting from.")  # type: ignore[valid-type]
    business_hours: bool = Field(False, description="Elapsed triggers: count the minutes in business hours (the "
                                                    "default calendar, as SLA clocks), not on the wall clock.")
    position: int = Field(0, ge=0, le=10_000)
    conditions: dict[str, Any] = Field(default_factory=dict)
    actions: list[dict[str, Any]] = Field(min_length=1, max_length=20)
    active: bool = True


class MacroIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    actions: list[dict[str, Any]] = Field(min_length=1, max_length=20)
    active: bool = True


# --- checking ------------------------------------------------------------------------------------------


def _first_error(exc: ValidationError, prefix: str) -> FieldError:
    err = exc.errors()[0]
    loc = [p for p in err["loc"] if p not in ACTION_TYPES]  # drop the union's member tag
    return FieldError(dotted([prefix, *loc]), err["msg"].removeprefix("Value error, "))


def parse_conditions(session: Session, data: dict[str, Any], event: str | None) -> Conditions:
    try:
        conditions = Conditions.model_validate(data or {})
    except ValidationError as exc:
        raise _first_error(exc, "conditions") from None
    for i, c in enumerate(conditions.ticket):
        where = f"conditions.ticket[{i}]"
        if c.field not in TICKET_FIELDS and not CUSTOM_FIELD.match(c.field):
            raise FieldError(f"{where}.field", f"choose one of {', '.join(TICKET_FIELDS)} or fields.<key>")
        if c.op in CHANGE_OPS and event != "updated":
            raise FieldError(f"{where}.op", f"{c.op} is only for triggers on updated tickets")
        if c.op in ("in", "not_in") and not isinstance(c.value, list):
            raise FieldError(f"{where}.value", "must be a list")
        if c.op in ("eq", "ne", "contains", "not_contains", "changed_to", "changed_from") and c.value is None:
            raise FieldError(f"{where}.value", f"{c.op} needs a value")
    if conditions.customer is not None:
        from clm.segments.service import check_tree

        try:
            check_tree(session, conditions.customer)
        except FieldError as exc:
            raise FieldError(f"conditions.customer{(exc.field or '').removeprefix('rules')}", exc.message) from None
    return conditions


def parse_actions(session: Session, data: list[dict[str, Any]]) -> list[Any]:
    try:
        actions = _ACTIONS.validate_python(data)
    except ValidationError as exc:
        raise _first_error(exc, "actions") from None
    from clm.service.canned import canned_by_key

    for i, action in enumerate(actions):
        if isinstance(action, ReplyAction):
            try:
                canned_by_key(session, action.canned)
            except NotFound:
                raise FieldError(f"actions[{i}].canned", f"there is no canned reply {action.canned!r}") from None
    return actions


# --- triggers and macros: storing ---------------------------------------------------------------------


def save_trigger(session: Session, data: TriggerIn, trigger_id: int | None = None,
                 now: datetime | None = None) -> Trigger:
    now = now or utcnow()
    if data.event == "elapsed" and (data.minutes is None or data.since is None):
        raise FieldError("minutes" if data.minutes is None else "since", "an elapsed trigger needs minutes and since")
    if data.event != "elapsed" and (data.minutes is not None or data.since is not None):
        raise FieldError("minutes", "only elapsed triggers wait")
    if data.event != "elapsed" and data.business_hours:
        raise FieldError("business_hours", "only elapsed triggers wait, so only they count business hours")
    conditions = parse_conditions(session, data.conditions, data.event)
    actions = parse_actions(session, data.actions)
    clash = session.scalar(sa.select(Trigger.id).where(Trigger.name == data.name.strip()))
    if clash is not None and clash != trigger_id:
        raise FieldError("name", f"a trigger named {data.name!r} already exists", "duplicate")
    if trigger_id is None:
        row = Trigger(created_at=now)
        session.add(row)
    else:
        row = get_trigger(session, trigger_id)
    row.name, row.event, row.minutes, row.since, row.position = (data.name.strip(), data.event, data.minutes,
                                                                 data.since, data.position)
    row.business_hours = data.business_hours
    row.conditions = conditions.model_dump(exclude_none=True)
    row.actions = [a.model_dump() for a in actions]
    row.active, row.updated_at = data.active, now
    session.flush()
    if row.event == "elapsed" and row.active:
        schedule_for_open_tickets(session, row, now)
    return row


def get_trigger(session: Session, trigger_id: int) -> Trigger:
    row = session.get(Trigger, trigger_id)
    if row is None:
        raise NotFound("trigger", trigger_id)
    return row


def list_triggers(session: Session, event: str | None = None, active_only: bool = False) -> list[Trigger]:
    query = sa.select(Trigger).order_by(Trigger.position, Trigger.id)
    if event is not None:
        query = query.where(Trigger.event == event)
    if active_only:
        query = query.where(Trigger.active.is_(True))
    return list(session.scalars(query))


def delete_trigger(session: Session, trigger_id: int) -> None:
    session.delete(get_trigger(session, trigger_id))
    session.flush()


def save_macro(session: Session, data: MacroIn, macro_id: int | None = None, now: datetime | None = None) -> Macro:
    now = now or utcnow()
    actions = parse_actions(session, data.actions)
    clash = session.scalar(sa.select(Macro.id).where(Macro.name == data.name.strip()))
    if clash is not None and clash != macro_id:
        raise FieldError("name", f"a macro named {data.name!r} already exists", "duplicate")
    if macro_id is None:
        row = Macro(created_at=now)
        session.add(row)
    else:
        row = get_macro(session, macro_id)
    row.name, row.actions, row.active, row.updated_at = data.name.strip(), [a.model_dump() for a in actions], \
        data.active, now
    session.flush()
    return row


def get_macro(session: Session, macro_id: int) -> Macro:
    row = session.get(Macro, macro_id)
    if row is None:
        raise NotFound("macro", macro_id)
    return row


def list_macros(session: Session, active_only: bool = False) -> list[Macro]:
    query = sa.select(Macro).order_by(Macro.name)
    if active_only:
        query = query.where(Macro.active.is_(True))
    return list(session.scalars(query))


# --- conditions ------------------------------------------------------------------------------------------


Changed = dict[str, tuple[Any, Any]]  # field -> (old, new) of the update being looked at


def _value(ticket: Ticket, field: str, changed: Changed) -> Any:
    if field.startswith("fields."):
        return (ticket.fields or {}).get(field.removeprefix("fields."))
    if field == "message":
        return changed.get("message", (None, None))[1]
    return getattr(ticket, field)


def _holds(c: TicketCondition, ticket: Ticket, changed: Changed) -> bool:
    if c.op in CHANGE_OPS:
        if c.field not in changed:
            return False
        old, new = changed[c.field]
        return c.op == "changed" or (c.op == "changed_to" and new == c.value) or \
            (c.op == "changed_from" and old == c.value)
    value = _value(ticket, c.field, changed)
    present = value not in (None, "", [])
    if c.op == "exists":
        return present
    if c.op == "not_exists":
        return not present
    if c.op in ("contains", "not_contains"):
        if isinstance(value, list):
            found = c.value in value
        else:
            found = str(c.value).lower() in str(value or "").lower()
        return found if c.op == "contains" else not found
    if c.op in ("in", "not_in"):
        found = any(v in c.value for v in value) if isinstance(value, list) else value in c.value
        return found if c.op == "in" else not found
    same = c.value in value if isinstance(value, list) else value == c.value
    return same if c.op == "eq" else not same


def conditions_hold(session: Session, conditions: Conditions, ticket: Ticket, changed: Changed, now: datetime,
                    timezone: str = "Asia/Ho_Chi_Minh") -> bool:
    if not all(_holds(c, ticket, changed) for c in conditions.ticket):
        return False
    if conditions.customer is None:
        return True
    from clm.segments.compile import members_query
    from clm.segments.lookup import make_context
    from clm.segments.rules import parse_rules

    tree = parse_rules(conditions.customer)
    query = members_query(tree, make_context(session, now, timezone, scope_ids=[ticket.customer_id]))
    return session.scalar(sa.select(sa.exists(query))) is True


# --- actions ---------------------------------------------------------------------------------------------


def run_actions(session: Session, ticket: Ticket, actions: list[Any], *, by: int | None, now: datetime) -> list[str]:
    """Do each action on the ticket; returns what each did ("tagged", "skipped: agent 3 is full")."""
    outcome = []
    for action in actions:
        try:
            with session.begin_nested():
                outcome.append(_act(session, ticket, action, by, now))
        except (ServiceConflict, FieldError, NotFound) as exc:
            outcome.append(f"skipped {action.type}: {getattr(exc, 'message', None) or exc}")
        session.refresh(ticket)
        if ticket.merged_into_id is not None:
            break
    return outcome


def _act(session: Session, ticket: Ticket, action: Any, by: int | None, now: datetime) -> str:
    from clm.service.tickets import TicketUpdate, add_note, update_ticket

    if isinstance(action, AssignAction):
        if action.user_id is None and action.route:
            from clm.service.routing import lock_routing, route

            lock_routing(session)
            if ticket.assignee_id is not None:
                return "already assigned"
            route(session, ticket.id, now)
            return "routed"
        update_ticket(session, ticket.id, TicketUpdate(assignee_id=action.user_id), by=by, now=now)
        return f"assigned to {action.user_id}" if action.user_id else "returned to the queue"
    if isinstance(action, TagAction):
        tags = [t for t in (ticket.tags or []) if t not in {x.strip().lower() for x in action.remove}]
        tags += [t for t in action.add if t not in tags]
        update_ticket(session, ticket.id, TicketUpdate(tags=tags), by=by, now=now)
        return "tagged"
    if isinstance(action, PriorityAction):
        update_ticket(session, ticket.id, TicketUpdate(priority=action.priority), by=by, now=now)
        return f"priority {action.priority}"
    if isinstance(action, StatusAction):
        update_ticket(session, ticket.id, TicketUpdate(status=action.status), by=by, now=now)
        return f"status {action.status}"
    if isinstance(action, ReplyAction):
        from clm.service.canned import canned_by_key, render_canned
        from clm.service.conversations import ReplyIn, reply

        text = render_canned(session, canned_by_key(session, action.canned), ticket, agent_id=by)
        message = reply(session, ticket.id, ReplyIn(body=text), by=by, now=now)
        return f"replied (message {message.id})"
    if isinstance(action, NotifyAction):
        users = _recipients(session, ticket, action.to)
        for user_id in users:
            emit(session, "service.notification", ticket.customer_id, {
                "ticket_id": ticket.id, "number": ticket.number, "user_id": user_id, "text": action.text})
        return f"notified {len(users)}"
    if isinstance(action, TaskAction):
        from clm.sales.tasks import TaskIn
        from clm.service.tasks import task_for_ticket

        assignee = ticket.assignee_id if action.assignee == "assignee" else action.assignee
        task = task_for_ticket(session, TaskIn(subject=action.subject, due_at=now + timedelta(
            minutes=action.due_in_minutes), assignee_id=assignee, priority=action.priority), ticket.id, by=by, now=now)
        return f"task {task.id}"
    if isinstance(action, NoteAction):
        add_note(session, ticket.id, action.body, by=by, now=now)
        return "noted"
    raise TypeError(f"not an action: {action!r}")


def _recipients(session: Session, ticket: Ticket, to: Any) -> list[int]:
    if to == "assignee":
        return [ticket.assignee_id] if ticket.assignee_id else []
    if to == "team":
        from clm.service.models import TeamMember

        if ticket.team_id is None:
            return []
        return list(session.scalars(sa.select(TeamMember.user_id).where(TeamMember.team_id == ticket.team_id)
                                    .order_by(TeamMember.user_id)))
    return list(to)


def _mark(session: Session, ticket_id: int, after_id: int, actor: str | None, reason: str) -> None:
    """The audit rows the actions just wrote name who did them: `automation` (triggers) or the macro."""
    values: dict[str, Any] = {"reason": sa.func.coalesce(Change.reason, reason)}
    if actor is not None:
        values["actor"] = actor
    session.execute(sa.update(Change).where(Change.ticket_id == ticket_id, Change.id > after_id,
                                            Change.actor == "user").values(**values)
                    .execution_options(synchronize_session=False))


def _last_change_id(session: Session) -> int:
    return session.scalar(sa.select(sa.func.max(Change.id))) or 0


# --- firing ----------------------------------------------------------------------------------------------


def fire(session: Session, trigger: Trigger, ticket: Ticket, occasion: str, changed: Changed, now: datetime,
         timezone: str = "Asia/Ho_Chi_Minh") -> TriggerRun | None:
    """Run the trigger on the ticket for this occasion if its conditions hold and it has not run for it."""
    conditions = Conditions.model_validate(trigger.conditions or {})
    if not conditions_hold(session, conditions, ticket, changed, now, timezone):
        return None
    run = TriggerRun(trigger_id=trigger.id, ticket_id=ticket.id, customer_id=ticket.customer_id,
                     occasion=occasion[:64], outcome=[], at=now)
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        return None  # fired for this occasion already
    before = _last_change_id(session)
    run.outcome = run_actions(session, ticket, _ACTIONS.validate_python(trigger.actions), by=None, now=now)
    _mark(session, ticket.id, before, AUTOMATION, f"trigger: {trigger.name}")
    session.flush()
    return run


def apply_macro(session: Session, macro_id: int, ticket_id: int, *, by: int | None,
                now: datetime | None = None) -> list[str]:
    """An agent applies a macro: its actions, audited as theirs with the macro's name."""
    from clm.service.tickets import get_ticket

    now = now or utcnow()
    macro = get_macro(session, macro_id)
    if not macro.active:
        raise FieldError("macro_id", f"macro {macro.name!r} is switched off")
    ticket = get_ticket(session, ticket_id)
    before = _last_change_id(session)
    outcome = run_actions(session, ticket, _ACTIONS.validate_python(macro.actions), by=by, now=now)
    _mark(session, ticket.id, before, None, f"macro: {macro.name}")
    session.flush()
    return outcome


# --- time elapsed ------------------------------------------------------------------------------------------


def _anchor(ticket: Ticket, trigger: Trigger) -> datetime | None:
    return getattr(ticket, SINCE[trigger.since]) if trigger.since in SINCE else None


def business_hours(session: Session):
    """The calendar elapsed triggers count in when told to: the default one (else Monday-Friday 08:00-17:00 in
    Asia/Ho_Chi_Minh with Vietnam's public holidays), the same as SLA policies without a calendar of their own."""
    from clm.service.sla import default_calendar, hours_of

    return hours_of(default_calendar(session))


def due_after_wait(trigger: Trigger, anchor: datetime, hours=None) -> datetime:
    """When the trigger's wait from `anchor` is over: `minutes` later on the wall clock, or, for a trigger
    counting business hours, once that much open time has passed (nights, weekends and holidays left out)."""
    wait = timedelta(minutes=trigger.minutes or 0)
    if trigger.business_hours and hours is not None:
        return hours.add(anchor, wait)
    return anchor + wait


def elapsed_job(trigger: Trigger, ticket: Ticket, hours=None) -> tuple[dict, datetime, str] | None:
    """The job that fires `trigger` on `ticket` once it has waited: args, due time, unique key. `hours`: the
    business hours (`business_hours(session)`), needed by triggers that count them."""
    anchor = _anchor(ticket, trigger)
    if anchor is None or trigger.minutes is None:
        return None
    stamp = anchor.isoformat()
    return ({"trigger_id": trigger.id, "ticket_id": ticket.id, "anchor": stamp},
            due_after_wait(trigger, anchor, hours), f"{ELAPSED_KIND}:{trigger.id}:{ticket.id}:{stamp}")


def schedule_elapsed(session: Session, ticket: Ticket, triggers: list[Trigger], now: datetime) -> int:
    """Queue the elapsed triggers' jobs for the ticket's current moments (one per trigger and moment)."""
    from clm.jobs.queue import enqueue

    if ticket.status == "closed" or ticket.merged_into_id is not None:
        return 0
    made = 0
    hours = business_hours(session) if any(t.business_hours for t in triggers) else None
    for trigger in triggers:
        job = elapsed_job(trigger, ticket, hours)
        if job is not None:
            enqueue(session, ELAPSED_KIND, job[0], run_at=max(job[1], now), unique_key=job[2], max_attempts=5,
                    now=now)
            made += 1
    return made


def schedule_for_open_tickets(session: Session, trigger: Trigger, now: datetime, limit: int = 100_000) -> int:
    """A new elapsed trigger applies to the tickets already open too."""
    from clm.jobs.queue import enqueue_many
    from clm.service.models import OPEN_STATUSES

    jobs = []
    hours = business_hours(session) if trigger.business_hours else None
    rows = session.scalars(sa.select(Ticket).where(Ticket.status.in_(OPEN_STATUSES), Ticket.merged_into_id.is_(None))
                           .order_by(Ticket.id).limit(limit))
    for ticket in rows:
        job = elapsed_job(trigger, ticket, hours)
        if job is not None:
            jobs.append(job)
    for due in {max(j[1], now) for j in jobs}:  # run_at is one per call: group by due time
        group = [j for j in jobs if max(j[1], now) == due]
        enqueue_many(session, ELAPSED_KIND, [j[0] for j in group], run_at=due, max_attempts=5,
                     unique_keys=[j[2] for j in group], now=now)
    return len(jobs)


def fire_elapsed(session: Session, trigger_id: int, ticket_id: int, anchor: str, now: datetime,
                 timezone: str = "Asia/Ho_Chi_Minh") -> TriggerRun | None:
    """The job's work: fire when the trigger is still on and the ticket's moment is still `anchor` (a newer
    moment has a job of its own)."""
    trigger = session.get(Trigger, trigger_id)
    ticket = session.get(Ticket, ticket_id)
    if trigger is None or not trigger.active or trigger.event != "elapsed" or ticket is None:
        return None
    if ticket.merged_into_id is not None or ticket.status == "closed":
        return None
    current = _anchor(ticket, trigger)
    if current is None or current.isoformat() != anchor:
        return None
    if now < due_after_wait(trigger, current, business_hours(session) if trigger.business_hours else None):
        return None
    return fire(session, trigger, ticket, f"e{anchor}", {}, now, timezone)
