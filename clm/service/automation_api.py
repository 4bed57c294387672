"""The desk's automation, satisfaction and calls under /api/v1/service: triggers, canned replies, macros, the
CSAT/NPS report and settings, the caller log, the CTI token. A thin adapter over clm.service.

Scopes as in clm.service.api: `service:read` to read, `service:write` for what agents do (apply a macro,
render a canned reply), `service:manage` for configuration (triggers, canned replies, macros, settings,
the CTI token).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from clm.service import automation, calls, canned, satisfaction
from clm.service.api import By, _staff, writing
from clm.service.schemas import TicketOut
from clm.service.tickets import get_ticket
from clm.web.api_docs import MAX_ID, Id, Instant, Limit, error_responses, text_param
from clm.web.deps import get_session, require_scope

router = APIRouter(prefix="/service", tags=["service"])
read = Depends(require_scope("service:read"))
write = Depends(require_scope("service:write"))
manage = Depends(require_scope("service:manage"))


class _Out(BaseModel):
    """Read from the service's rows (a list model's `data` takes the rows as they are)."""
    model_config = ConfigDict(from_attributes=True)


Out = TypeVar("Out", bound=BaseModel)


def _saved(out: type[Out], session: Session, save: Callable[..., Any], *args: Any) -> Out:
    """`save(session, *args)` in one writer's transaction (a refusal applies nothing), answered as `out`."""
    with writing(session):
        row = save(session, *args)
    return out.model_validate(row)


class TriggerOut(_Out):
    id: int
    name: str
    event: str
    position: int
    minutes: int | None
    since: str | None
    business_hours: bool
    conditions: dict[str, Any]
    actions: list[dict[str, Any]]
    active: bool
    created_at: datetime
    updated_at: datetime


class TriggerList(BaseModel):
    data: list[TriggerOut]


class CannedOut(_Out):
    id: int
    key: str
    title: str
    bodies: dict[str, str]
    active: bool
    updated_at: datetime


class CannedList(BaseModel):
    data: list[CannedOut]


class MacroOut(_Out):
    id: int
    name: str
    actions: list[dict[str, Any]]
    active: bool
    updated_at: datetime


class MacroList(BaseModel):
    data: list[MacroOut]


class RenderBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ticket_id: int = Field(ge=1, le=MAX_ID)
    language: str | None = Field(None, pattern="^(vi|en)$")
    agent_id: int | None = Field(None, ge=1, le=MAX_ID, description="The agent answering ({{ agent.name }}).")


class Rendered(BaseModel):
    body: str
    language: str


class MacroBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    macro_id: int = Field(ge=1, le=MAX_ID)


class MacroApplied(BaseModel):
    outcome: list[str]
    ticket: TicketOut


class ReportRowOut(_Out):
    key: int | str | None
    label: str
    sent: int
    answered: int
    average: float | None
    satisfied: float | None = Field(description="CSAT: % of answers rating 4-5; NPS: promoters % - detractors %.")
    detractors: int
    promoters: int


class ReportOut(BaseModel):
    kind: str
    by: str
    data: list[ReportRowOut]


class CallOut(_Out):
    id: int
    call_id: str
    direction: str
    from_number: str
    to_number: str
    phone: str | None
    customer_id: int | None
    state: str
    users: list[str]
    queue: str | None
    agent_id: int | None
    cause: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_seconds: int | None
    recording_url: str | None
    task_id: int | None


class CallList(BaseModel):
    data: list[CallOut]


class CtiTokenOut(BaseModel):
    url: str = Field(description="The endpoint for the PBX (shown once; the previous token stops working).")


# --- triggers ------------------------------------------------------------------------------------


@router.get("/triggers", response_model=TriggerList, summary="Triggers, in the order they run", dependencies=[read],
            responses=error_responses(422))
def triggers_list(session: Session = Depends(get_session)) -> TriggerList:
    return TriggerList(data=automation.list_triggers(session))


@router.post("/triggers", response_model=TriggerOut, status_code=201, summary="Add a trigger", dependencies=[manage],
             responses=error_responses(422))
def triggers_create(body: automation.TriggerIn, session: Session = Depends(get_session)) -> TriggerOut:
    """`event`: created, updated or elapsed (`minutes` after `since`, in business hours with `business_hours`).
    `conditions.ticket`: field comparisons; `conditions.customer`: a segment rule tree. Actions: assign, tag,
    set_priority, set_status, reply (a canned reply), notify, task, note."""
    return _saved(TriggerOut, session, automation.save_trigger, body)


@router.put("/triggers/{trigger_id}", response_model=TriggerOut, summary="Change a trigger", dependencies=[manage],
            responses=error_responses(404, 422))
def triggers_put(trigger_id: Id, body: automation.TriggerIn, session: Session = Depends(get_session)) -> TriggerOut:
    return _saved(TriggerOut, session, automation.save_trigger, body, trigger_id)


@router.delete("/triggers/{trigger_id}", status_code=204, summary="Remove a trigger", dependencies=[manage],
               responses=error_responses(404, 422))
def triggers_delete(trigger_id: Id, session: Session = Depends(get_session)) -> Response:
    with writing(session):
        automation.delete_trigger(session, trigger_id)
    return Response(status_code=204)


# --- canned replies and macros -------------------------------------------------------------------


@router.get("/canned-replies", response_model=CannedList, summary="Canned replies", dependencies=[read],
            responses=error_responses(422))
def canned_list(session: Session = Depends(get_session),
                q: Annotated[str | None, text_param("Key or title containing this (diacritics ignored).", 120)] = None
                ) -> CannedList:
    return CannedList(data=canned.list_canned(session, q))


@router.post("/canned-replies", response_model=CannedOut, status_code=201, summary="Add a canned reply",
             dependencies=[manage], responses=error_responses(422))
def canned_create(body: canned.CannedIn, session: Session = Depends(get_session)) -> CannedOut:
    """Bodies per language (vi, en) with variables {{ customer.name }}, {{ ticket.number }}, {{ agent.name }};
    an unknown variable is refused here."""
    return _saved(CannedOut, session, canned.save_canned, body)


@router.put("/canned-replies/{reply_id}", response_model=CannedOut, summary="Change a canned reply",
            dependencies=[manage], responses=error_responses(404, 422))
def canned_put(reply_id: Id, body: canned.CannedIn, session: Session = Depends(get_session)) -> CannedOut:
    return _saved(CannedOut, session, canned.save_canned, body, reply_id)


@router.post("/canned-replies/{reply_id}/render", response_model=Rendered, summary="A canned reply for a ticket",
             dependencies=[read], responses=error_responses(404, 422))
def canned_render(reply_id: Id, body: RenderBody, session: Session = Depends(get_session)) -> Rendered:
    """The text with the ticket's variables, in `language` or the ticket's (for the composer; nothing is sent)."""
    row = canned.get_canned(session, reply_id)
    ticket = get_ticket(session, body.ticket_id)
    language = body.language if body.language in row.bodies else canned.language_for(session, ticket, row)
    text = canned.render_canned(session, row, ticket, agent_id=body.agent_id, language=language)
    return Rendered(body=text, language=language)


@router.get("/macros", response_model=MacroList, summary="Macros", dependencies=[read], responses=error_responses(422))
def macros_list(session: Session = Depends(get_session)) -> MacroList:
    return MacroList(data=automation.list_macros(session))


@router.post("/macros", response_model=MacroOut, status_code=201, summary="Add a macro", dependencies=[manage],
             responses=error_responses(422))
def macros_create(body: automation.MacroIn, session: Session = Depends(get_session)) -> MacroOut:
    return _saved(MacroOut, session, automation.save_macro, body)


@router.post("/tickets/{ticket_id}/macro", response_model=MacroApplied, summary="Apply a macro to a ticket",
             dependencies=[write], responses=error_responses(404, 422))
def macros_apply(ticket_id: Id, body: MacroBody, by: By = None, session: Session = Depends(get_session)
                 ) -> MacroApplied:
    """Each action is audited as `by`'s, with the macro's name; one that cannot be done (an agent at capacity)
    is reported in `outcome` and the others still happen."""
    with writing(session):
        outcome = automation.apply_macro(session, body.macro_id, ticket_id, by=_staff(session, by))
    return MacroApplied(outcome=outcome, ticket=TicketOut.model_validate(get_ticket(session, ticket_id)))


# --- satisfaction --------------------------------------------------------------------------------


@router.get("/satisfaction", response_model=ReportOut, summary="CSAT or NPS per agent, team or channel",
            dependencies=[read], responses=error_responses(422))
def satisfaction_report(
    session: Session = Depends(get_session),
    kind: Annotated[str, Query(pattern="^(csat|nps)$", description="csat or nps")] = "csat",
    by: Annotated[str, Query(pattern="^(agent|team|channel)$", description="agent, team or channel")] = "agent",
    since: Instant | None = None,
    until: Instant | None = None,
) -> ReportOut:
    """Surveys sent in [since, until): answers, average, CSAT % (4-5) or NPS, detractors, promoters."""
    rows = satisfaction.report(session, kind=kind, by=by, since=since, until=until)
    return ReportOut(kind=kind, by=by, data=rows)


@router.get("/satisfaction/settings", response_model=satisfaction.SatisfactionSettings,
            summary="Satisfaction settings", dependencies=[read], responses=error_responses(422))
def satisfaction_settings_get(session: Session = Depends(get_session)) -> satisfaction.SatisfactionSettings:
    return satisfaction.satisfaction_settings(session)


@router.put("/satisfaction/settings", response_model=satisfaction.SatisfactionSettings,
            summary="Change the satisfaction settings", dependencies=[manage], responses=error_responses(422))
def satisfaction_settings_put(body: satisfaction.SatisfactionSettings, session: Session = Depends(get_session)
                              ) -> satisfaction.SatisfactionSettings:
    with writing(session):
        return satisfaction.save_satisfaction_settings(session, body)


# --- calls ---------------------------------------------------------------------------------------


@router.get("/calls", response_model=CallList, summary="The caller log", dependencies=[read],
            responses=error_responses(422))
def calls_list(
    session: Session = Depends(get_session),
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    missed: Annotated[bool, Query(description="Only missed calls.")] = False,
    limit: Limit = 50,
) -> CallList:
    """Newest first; with `customer_id`, that customer's calls (duration, recording link, call-back task)."""
    if customer_id is not None:
        rows = [c for c in calls.calls_of(session, customer_id, limit) if not missed or c.state == "missed"]
    else:
        rows = calls.recent_calls(session, missed_only=missed, limit=limit)
    return CallList(data=rows)


@router.post("/cti/token", response_model=CtiTokenOut, status_code=201, summary="A new CTI endpoint token",
             dependencies=[manage], responses=error_responses(422))
def cti_token(request: Request, session: Session = Depends(get_session)) -> CtiTokenOut:
    """The URL to give the PBX (Zammad's Generic CTI format); the previous token stops working."""
    with writing(session):
        token = calls.new_token(session)
    return CtiTokenOut(url=f"{request.app.state.settings.public_url.rstrip('/')}/hooks/cti/{token}")
