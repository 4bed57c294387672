"""The service desk API under /api/v1/service: tickets, messages, notes, agents, teams, routing, custom
fields, SLA policies and calendars, tasks. A thin adapter over clm.service.

Scopes: `service:read` (views, tickets, agents, settings), `service:write` (what an agent does: open and
change tickets, reply, note, merge, record inbound messages, set their availability), `service:manage`
(inboxes, teams, routing, fields, SLA policies and calendars). API keys belong to no one, so a write names
the staff member acting with `by` (recorded in the audit). A request the ticket's state forbids is a 409.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.db.engine import for_writing
from clm.lib.errors import FieldError
from clm.service import accepting_http, conversations, routing, sla, tasks, tickets
from clm.service import agents as agent_service
from clm.service.errors import ServiceConflict
from clm.service.models import PRIORITIES, STATUSES
from clm.service.schemas import (
    AgentOut,
    CalendarOut,
    ChangeOut,
    FieldOut,
    InboxOut,
    MessageOut,
    MyTasksOut,
    NoteOut,
    PolicyOut,
    RuleOut,
    TaskOut,
    TeamOut,
    TicketDetail,
    TicketOut,
    TicketPage,
    TimerOut,
)
from clm.web.api_docs import MAX_ID, Id, Instant, Limit, error_responses, text_param
from clm.web.deps import get_session, require_scope
from clm.web.errors import ApiError

router = APIRouter(prefix="/service", tags=["service"])
read = Depends(require_scope("service:read"))
write = Depends(require_scope("service:write"))
manage = Depends(require_scope("service:manage"))
By = Annotated[int | None, Query(ge=1, le=MAX_ID, description="The staff user acting (recorded in the audit).")]


@contextmanager
def writing(session: Session) -> Iterator[Session]:
    """A writer's transaction, committed on success; a refusal applies nothing (409 for a state conflict)."""
    session.commit()  # the API key check read in a reader's transaction
    for_writing(session)
    try:
        yield session
        session.commit()
    except ServiceConflict as exc:
        session.rollback()
        raise ApiError(exc.status, exc.code, exc.message, exc.field) from None
    except BaseException:
        session.rollback()
        raise


def _staff(session: Session, user_id: int | None) -> int | None:
    if user_id is not None and session.get(User, user_id) is None:
        raise FieldError("by", f"no staff user has id {user_id}")
    return user_id


def _choice(values: tuple[str, ...], what: str):
    return Query(pattern="^(" + "|".join(values) + ")$", description=f"{what}: {', '.join(values)}")


# --- tickets ---------------------------------------------------------------------------------------


@router.get("/tickets", response_model=TicketPage, summary="Tickets of a view", dependencies=[read],
            responses=error_responses(422))
def tickets_list(
    session: Session = Depends(get_session),
    view: Annotated[str, _choice(tickets.VIEWS, "view")] = "all",
    user_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="The agent, for the mine view.")] = None,
    team_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Annotated[str | None, _choice(STATUSES, "status")] = None,
    priority: Annotated[str | None, _choice(PRIORITIES, "priority")] = None,
    tag: Annotated[str | None, text_param("Tickets with this tag.", 64)] = None,
    at_risk_before: Instant | None = None,
    after: Annotated[int | None, Query(ge=1, le=MAX_ID, description="The `next` of the previous page.")] = None,
    limit: Limit = 50,
) -> TicketPage:
    """Views: all, open, mine (user_id), unassigned (queue order), team (team_id), sla_at_risk (a running
    clock due before `at_risk_before`, default now). Newest first, paged by `after`."""
    rows = tickets.list_tickets(session, view=view, user_id=user_id, team_id=team_id, customer_id=customer_id,
                                status=status, priority=priority, tag=tag, at_risk_before=at_risk_before,
                                after=after, limit=limit)
    more = len(rows) == limit and view != "unassigned"
    return TicketPage(data=[TicketOut.model_validate(t) for t in rows], next=rows[-1].id if more else None)


@router.post("/tickets", response_model=TicketOut, status_code=201, summary="Open a ticket", dependencies=[write],
             responses=error_responses(404, 409, 422))
def tickets_create(body: tickets.TicketIn, by: By = None, session: Session = Depends(get_session)) -> TicketOut:
    """Starts its SLA clocks and routes it (unless `route` is false or `assignee_id` is given)."""
    with writing(session):
        ticket = tickets.open_ticket(session, body, by=_staff(session, by))
    return TicketOut.model_validate(ticket)


def _detail(session: Session, ticket) -> TicketDetail:
    parts = tickets.ticket_detail(session, ticket)
    return TicketDetail(ticket=TicketOut.model_validate(ticket),
                        messages=[MessageOut.model_validate(m) for m in parts["messages"]],
                        notes=[NoteOut.model_validate(n) for n in parts["notes"]],
                        sla=[TimerOut.model_validate(t) for t in parts["timers"]],
                        changes=[ChangeOut.model_validate(c) for c in parts["changes"]])


@router.get("/tickets/{ticket_id}", response_model=TicketDetail, summary="A ticket: messages, notes, SLA, audit",
            dependencies=[read], responses=error_responses(404, 422))
def tickets_get(ticket_id: Id, session: Session = Depends(get_session)) -> TicketDetail:
    return _detail(session, tickets.get_ticket(session, ticket_id))


@router.patch("/tickets/{ticket_id}", response_model=TicketOut, summary="Change a ticket", dependencies=[write],
              responses=error_responses(404, 409, 422))
def tickets_update(ticket_id: Id, body: tickets.TicketUpdate, by: By = None,
                   session: Session = Depends(get_session)) -> TicketOut:
    """Every change is audited. `assignee_id` to an agent at capacity is a 409; null returns the ticket to
    the queue. Solving or closing frees the agent, and the queue drains."""
    with writing(session):
        ticket = tickets.update_ticket(session, ticket_id, body, by=_staff(session, by))
    return TicketOut.model_validate(ticket)


class ReplyBody(conversations.ReplyIn):
    author_id: int | None = Field(None, ge=1, le=MAX_ID, description="The agent answering.")


@router.post("/tickets/{ticket_id}/replies", response_model=MessageOut, status_code=201,
             summary="Answer the customer", dependencies=[write], responses=error_responses(404, 409, 422))
def tickets_reply(ticket_id: Id, body: ReplyBody, request: Request,
                  session: Session = Depends(get_session)) -> MessageOut:
    """Meets the first- and next-response clocks; the channel sends it through the message outbox (email with
    threading headers, SMS, Messenger: a 409 `messenger_window_closed` 7 days after the customer's last message)."""
    with writing(session):
        message = conversations.reply(session, ticket_id, conversations.ReplyIn(
            **body.model_dump(exclude={"author_id"})), by=_staff(session, body.author_id),
            settings=request.app.state.settings)
    return MessageOut.model_validate(message)


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=20_000, description="@email or @name mentions notify staff.")
    author_id: int | None = Field(None, ge=1, le=MAX_ID)


@router.post("/tickets/{ticket_id}/notes", response_model=NoteOut, status_code=201, summary="Add an internal note",
             dependencies=[write], responses=error_responses(404, 422))
def tickets_note(ticket_id: Id, body: NoteBody, session: Session = Depends(get_session)) -> NoteOut:
    with writing(session):
        result = tickets.add_note(session, ticket_id, body.body, by=_staff(session, body.author_id))
    return NoteOut.model_validate(result.note)


class MergeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    into: int = Field(ge=1, le=MAX_ID, description="The ticket that stays.")


@router.post("/tickets/{ticket_id}/merge", response_model=TicketOut, summary="Merge this ticket into another",
             dependencies=[write], responses=error_responses(404, 409, 422))
def tickets_merge(ticket_id: Id, body: MergeBody, by: By = None, session: Session = Depends(get_session)) -> TicketOut:
    """Messages, notes and tasks move to `into`; this ticket is closed. Both must be one customer's (409)."""
    with writing(session):
        target = tickets.merge_tickets(session, ticket_id, body.into, by=_staff(session, by))
    return TicketOut.model_validate(target)


class AcceptedOut(BaseModel):
    created: bool = Field(description="False: this external_id was accepted before (nothing new stored).")
    id: int = Field(description="The accepted message (service_inbound).")
    state: str = Field(description="queued (the worker files it shortly), processed, or failed (see error).")
    ticket_id: int | None = None
    message_id: int | None = None
    error: str | None = None


@router.post("/messages", response_model=AcceptedOut, status_code=202, summary="Record a customer's message",
             dependencies=[write], responses=error_responses(422))
async def messages_receive(body: conversations.InboundIn, request: Request) -> Response:
    """Stored as it arrived and committed before the answer (202); the worker threads it (inbox, thread_key)
    into an open ticket or opens one and routes it, a moment later, in arrival order. The same
    `external_id` again stores nothing and answers 200 (with the ticket once it is filed)."""
    # Requests with a Bearer key and a valid JSON body are answered before routing, the same way
    # (clm.service.accepting_http.AcceptMessages); the rest come here. Both store through the group commit.
    token = accepting_http.bearer(request.headers.get("Authorization")) or ""
    accepted = await accepting_http.submit(request.app, token, body)
    status, content = accepted.answer()
    return Response(accepting_http.render(content), status_code=status, media_type="application/json")


# --- inboxes, agents, teams --------------------------------------------------------------------------


class InboxList(BaseModel):
    data: list[InboxOut]


@router.get("/inboxes", response_model=InboxList, summary="Inboxes", dependencies=[read],
            responses=error_responses(422))
def inboxes_list(session: Session = Depends(get_session)) -> InboxList:
    return InboxList(data=[InboxOut.model_validate(i) for i in conversations.list_inboxes(session)])


@router.post("/inboxes", response_model=InboxOut, status_code=201, summary="Add an inbox", dependencies=[manage],
             responses=error_responses(422))
def inboxes_create(body: conversations.InboxIn, session: Session = Depends(get_session)) -> InboxOut:
    with writing(session):
        inbox = conversations.save_inbox(session, body)
    return InboxOut.model_validate(inbox)


class AgentList(BaseModel):
    data: list[AgentOut]


@router.get("/agents", response_model=AgentList, summary="Agents with availability, capacity and load",
            dependencies=[read], responses=error_responses(422))
def agents_list(session: Session = Depends(get_session)) -> AgentList:
    return AgentList(data=[AgentOut.model_validate(a) for a in agent_service.list_agents(session)])


@router.put("/agents/{user_id}", response_model=AgentOut, summary="Make a staff user an agent, or change one",
            dependencies=[write], responses=error_responses(422))
def agents_put(user_id: Id, body: agent_service.AgentIn, session: Session = Depends(get_session)) -> AgentOut:
    """Going online or gaining capacity drains the queue to this agent and others with room."""
    with writing(session):
        agent_service.save_agent(session, user_id, body)
    return next(AgentOut.model_validate(a) for a in agent_service.list_agents(session) if a.user_id == user_id)


class TeamList(BaseModel):
    data: list[TeamOut]


@router.get("/teams", response_model=TeamList, summary="Teams and their members", dependencies=[read],
            responses=error_responses(422))
def teams_list(session: Session = Depends(get_session)) -> TeamList:
    return TeamList(data=[TeamOut(id=t.id, name=t.name, members=m) for t, m in agent_service.list_teams(session)])


@router.post("/teams", response_model=TeamOut, status_code=201, summary="Add a team", dependencies=[manage],
             responses=error_responses(422))
def teams_create(body: agent_service.TeamIn, session: Session = Depends(get_session)) -> TeamOut:
    with writing(session):
        team = agent_service.save_team(session, body)
    return TeamOut(id=team.id, name=team.name, members=agent_service.team_members(session, team.id))


@router.put("/teams/{team_id}", response_model=TeamOut, summary="Rename a team and set its members",
            dependencies=[manage], responses=error_responses(404, 422))
def teams_put(team_id: Id, body: agent_service.TeamIn, session: Session = Depends(get_session)) -> TeamOut:
    with writing(session):
        team = agent_service.save_team(session, body, team_id)
    return TeamOut(id=team.id, name=team.name, members=agent_service.team_members(session, team.id))


# --- routing and fields ----------------------------------------------------------------------------


@router.get("/routing", response_model=routing.RoutingSettings, summary="Routing settings", dependencies=[read],
            responses=error_responses(422))
def routing_get(session: Session = Depends(get_session)) -> routing.RoutingSettings:
    return routing.routing_settings(session)


@router.put("/routing", response_model=routing.RoutingSettings, summary="Change the routing settings",
            dependencies=[manage], responses=error_responses(422))
def routing_put(body: routing.RoutingSettings, session: Session = Depends(get_session)) -> routing.RoutingSettings:
    with writing(session):
        return routing.save_routing_settings(session, body)


class RuleList(BaseModel):
    data: list[RuleOut]


@router.get("/team-rules", response_model=RuleList, summary="Team rules, in the order they are tried",
            dependencies=[read], responses=error_responses(422))
def rules_list(session: Session = Depends(get_session)) -> RuleList:
    return RuleList(data=[RuleOut.model_validate(r) for r in routing.list_rules(session)])


@router.post("/team-rules", response_model=RuleOut, status_code=201, summary="Add a team rule",
             dependencies=[manage], responses=error_responses(422))
def rules_create(body: routing.RuleIn, session: Session = Depends(get_session)) -> RuleOut:
    with writing(session):
        rule = routing.save_rule(session, body)
    return RuleOut.model_validate(rule)


@router.delete("/team-rules/{rule_id}", status_code=204, summary="Remove a team rule", dependencies=[manage],
               responses=error_responses(404, 422))
def rules_delete(rule_id: Id, session: Session = Depends(get_session)) -> Response:
    with writing(session):
        routing.delete_rule(session, rule_id)
    return Response(status_code=204)


class FieldList(BaseModel):
    data: list[FieldOut]


@router.get("/fields", response_model=FieldList, summary="Custom ticket fields", dependencies=[read],
            responses=error_responses(422))
def fields_list(session: Session = Depends(get_session)) -> FieldList:
    return FieldList(data=[FieldOut.model_validate(f) for f in tickets.list_fields(session)])


@router.post("/fields", response_model=FieldOut, status_code=201, summary="Define a custom field (by key)",
             dependencies=[manage], responses=error_responses(422))
def fields_save(body: tickets.FieldIn, session: Session = Depends(get_session)) -> FieldOut:
    with writing(session):
        row = tickets.save_field(session, body)
    return FieldOut.model_validate(row)


# --- SLA -------------------------------------------------------------------------------------------


class PolicyList(BaseModel):
    data: list[PolicyOut]


@router.get("/sla/policies", response_model=PolicyList, summary="SLA policies, in the order they match",
            dependencies=[read], responses=error_responses(422))
def policies_list(session: Session = Depends(get_session)) -> PolicyList:
    return PolicyList(data=[PolicyOut.model_validate(p) for p in sla.list_policies(session)])


@router.post("/sla/policies", response_model=PolicyOut, status_code=201, summary="Add an SLA policy",
             dependencies=[manage], responses=error_responses(422))
def policies_create(body: sla.PolicyIn, session: Session = Depends(get_session)) -> PolicyOut:
    """Targets are business minutes in the policy's calendar (or the default one). They apply to tickets
    opened from now on: a ticket's deadlines are computed once, when its clocks start."""
    with writing(session):
        policy = sla.save_policy(session, body)
    return PolicyOut.model_validate(policy)


@router.put("/sla/policies/{policy_id}", response_model=PolicyOut, summary="Change an SLA policy",
            dependencies=[manage], responses=error_responses(404, 422))
def policies_put(policy_id: Id, body: sla.PolicyIn, session: Session = Depends(get_session)) -> PolicyOut:
    with writing(session):
        policy = sla.save_policy(session, body, policy_id)
    return PolicyOut.model_validate(policy)


class CalendarList(BaseModel):
    data: list[CalendarOut]


@router.get("/sla/calendars", response_model=CalendarList, summary="Business-hours calendars",
            dependencies=[read], responses=error_responses(422))
def calendars_list(session: Session = Depends(get_session)) -> CalendarList:
    return CalendarList(data=[CalendarOut.model_validate(c) for c in sla.list_calendars(session)])


@router.post("/sla/calendars", response_model=CalendarOut, status_code=201, summary="Add a business-hours calendar",
             dependencies=[manage], responses=error_responses(422))
def calendars_create(body: sla.CalendarIn, session: Session = Depends(get_session)) -> CalendarOut:
    """Hours per weekday as [start, end] pairs in the calendar's time zone, public holidays of
    `holiday_country` (VN: Tết included) and `closed_days` the business adds."""
    with writing(session):
        calendar = sla.save_calendar(session, body)
    return CalendarOut.model_validate(calendar)


# --- tasks -----------------------------------------------------------------------------------------


@router.get("/agents/{user_id}/tasks", response_model=MyTasksOut, summary="A staff member's overdue tasks and today's",
            dependencies=[read], responses=error_responses(422))
def tasks_mine(request: Request, user_id: Id, session: Session = Depends(get_session),
               now: Instant | None = None) -> MyTasksOut:
    """Today is the business's day (CLM_TIMEZONE)."""
    mine = tasks.my_tasks(session, user_id, timezone=request.app.state.settings.timezone, now=now)
    return MyTasksOut(overdue=[TaskOut.model_validate(t) for t in mine.overdue],
                      today=[TaskOut.model_validate(t) for t in mine.today])


class TaskBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str = Field(min_length=1, max_length=255)
    due_at: datetime
    remind_at: datetime | None = None
    assignee_id: int | None = Field(None, ge=1, le=MAX_ID)
    priority: str = Field("low", pattern="^(low|high|very_high|urgent)$")
    notes: str | None = Field(None, max_length=10_000)


@router.post("/tickets/{ticket_id}/tasks", response_model=TaskOut, status_code=201, summary="Add a task to a ticket",
             dependencies=[write], responses=error_responses(404, 422))
def tickets_task(ticket_id: Id, body: TaskBody, by: By = None, session: Session = Depends(get_session)) -> TaskOut:
    """A task on the shared task list (clm.sales.tasks), with the ticket's customer; `remind_at` reminds."""
    from clm.sales.tasks import TaskIn

    with writing(session):
        task = tasks.task_for_ticket(session, TaskIn(**body.model_dump()), ticket_id, by=_staff(session, by))
    return TaskOut.model_validate(task)
