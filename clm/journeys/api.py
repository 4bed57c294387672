"""The journeys API: /api/v1/journeys. A thin adapter over clm.journeys.service.

An invalid graph is answered 422 with `field` naming its path in the body (`definition.nodes[2].next`)
and the message naming the node; POST /validate lists every problem without saving.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, RootModel
from sqlalchemy.orm import Session

from clm.db.engine import for_writing
from clm.journeys import service
from clm.journeys.definition import DEFINITION_SCHEMA
from clm.journeys.models import Journey
from clm.journeys.validate import check
from clm.web.api_docs import Id, error_responses
from clm.web.deps import get_session, require_scope

router = APIRouter(prefix="/journeys", tags=["journeys"])
read = Depends(require_scope("journeys:read"))
write = Depends(require_scope("journeys:write"))
EXAMPLE = {"trigger": {"type": "event", "event": "Signed Up"}, "start": "hello", "nodes": [
    {"id": "hello", "type": "send_message", "channel": "email", "template": "welcome", "next": "wait"},
    {"id": "wait", "type": "wait", "duration": {"days": 3}, "next": "end"},
    {"id": "end", "type": "exit"}]}


class JourneyIn(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    description: str = Field("", max_length=2000)
    definition: dict[str, Any] = Field(description="The graph (see GET /api/v1/journeys/schema).",
                                       json_schema_extra={"example": EXAMPLE})


class JourneyOut(BaseModel):
    id: int
    name: str
    description: str
    state: str = Field(description="draft, active, paused or archived.")
    version: int = Field(description="The current version's number.")
    trigger_type: str
    definition: dict[str, Any]
    counts: dict[str, int] = Field(description="Runs entered, open, waiting, held, parked, completed, exited, converted.")
    activated_at: datetime | None
    created_at: datetime
    updated_at: datetime


class JourneyList(BaseModel):
    data: list[JourneyOut]


class DefinitionSchema(RootModel[dict[str, Any]]):
    """The JSON Schema (draft 2020-12) every journey definition follows."""


class ProblemOut(BaseModel):
    field: str
    node: str | None
    message: str


class ValidationOut(BaseModel):
    valid: bool
    problems: list[ProblemOut]


class DocumentIn(BaseModel):
    """What GET /{id}/export returns."""

    format: str = service.EXPORT_FORMAT
    name: str = Field(min_length=1, max_length=120)
    description: str = Field("", max_length=2000)
    definition: dict[str, Any]


class TriggerIn(BaseModel):
    customer_id: int = Field(ge=1)
    key: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[^\x00]*$",
                            description="Your idempotency key: a second call with it enters nobody.")
    context: dict[str, Any] = Field(default_factory=dict, description="Data for the journey's templates.")


class TriggerOut(BaseModel):
    entered: bool = Field(description="False when the entry settings refuse (inside already, no re-entry).")
    run_id: int | None


class PositionOut(BaseModel):
    version: int
    node: str
    status: str
    runs: int


class PassedOut(BaseModel):
    node: str
    outcome: str
    steps: int


class ReportOut(BaseModel):
    counts: dict[str, int]
    positions: list[PositionOut] = Field(description="Runs by version, node and status.")
    passed: list[PassedOut] = Field(description="Steps by node and outcome (branch taken, message status).")


def _out(session: Session, j: Journey) -> JourneyOut:
    return JourneyOut(id=j.id, name=j.name, description=j.description, state=j.state, version=j.version,
                      trigger_type=j.trigger_type, definition=service.current_version(session, j).definition,
                      counts=service.summary(session, j.id), activated_at=j.activated_at, created_at=j.created_at,
                      updated_at=j.updated_at)


def _tz(request: Request) -> str:
    return request.app.state.settings.timezone


@router.get("", response_model=JourneyList, summary="Every journey", dependencies=[read],
            responses=error_responses(422))
def list_all(session: Session = Depends(get_session)) -> JourneyList:
    return JourneyList(data=[_out(session, j) for j in service.list_journeys(session)])


@router.get("/schema", response_model=DefinitionSchema, summary="The JSON Schema of journey definitions",
            dependencies=[read], responses=error_responses(422))
def schema() -> DefinitionSchema:
    return DefinitionSchema(DEFINITION_SCHEMA)


@router.post("", response_model=JourneyOut, status_code=201, summary="Create a journey (a draft)",
             dependencies=[write], responses=error_responses(422))
def create(body: JourneyIn, session: Session = Depends(get_session)) -> JourneyOut:
    for_writing(session)
    journey = service.save_journey(session, name=body.name, definition=body.definition, description=body.description)
    session.commit()
    return _out(session, journey)


@router.post("/validate", response_model=ValidationOut, summary="Check a definition without saving it",
             dependencies=[read], responses=error_responses(422))
def validate(body: JourneyIn, session: Session = Depends(get_session)) -> ValidationOut:
    _, problems = check(session, body.definition)
    return ValidationOut(valid=not problems, problems=[ProblemOut(field=p.field, node=p.node, message=p.message)
                                                       for p in problems])


@router.post("/import", response_model=JourneyOut, status_code=201,
             summary="Import an exported journey (a new version if the name exists)", dependencies=[write],
             responses=error_responses(422))
def import_(body: DocumentIn, session: Session = Depends(get_session)) -> JourneyOut:
    for_writing(session)
    journey = service.import_journey(session, body.model_dump())
    session.commit()
    return _out(session, journey)


from clm.journeys.playbook_api import router as playbook_router  # noqa: E402 (before /{journey_id})

router.include_router(playbook_router)


@router.get("/{journey_id}", response_model=JourneyOut, summary="One journey", dependencies=[read],
            responses=error_responses(404, 422))
def get(journey_id: Id, session: Session = Depends(get_session)) -> JourneyOut:
    return _out(session, service.get_journey(session, journey_id))


@router.put("/{journey_id}", response_model=JourneyOut, summary="Change a journey (a new version once it went live)",
            dependencies=[write], responses=error_responses(404, 422))
def update(journey_id: Id, body: JourneyIn, session: Session = Depends(get_session)) -> JourneyOut:
    for_writing(session)
    journey = service.save_journey(session, journey_id=journey_id, name=body.name, definition=body.definition,
                                   description=body.description)
    session.commit()
    return _out(session, journey)


@router.delete("/{journey_id}", status_code=204, summary="Delete a journey nobody entered", dependencies=[write],
               responses=error_responses(404, 422))
def delete(journey_id: Id, session: Session = Depends(get_session)) -> Response:
    for_writing(session)
    service.delete_journey(session, journey_id)
    session.commit()
    return Response(status_code=204)


def _transition(name: str, summary: str):
    @router.post(f"/{{journey_id}}/{name}", response_model=JourneyOut, summary=summary, dependencies=[write],
                 responses=error_responses(404, 422), name=f"journey_{name}")
    def change(journey_id: Id, request: Request, session: Session = Depends(get_session)) -> JourneyOut:
        for_writing(session)
        if name == "activate":
            journey = service.activate(session, journey_id, timezone=_tz(request))
        else:
            journey = {"pause": service.pause, "resume": service.resume, "archive": service.archive}[name](
                session, journey_id)
        session.commit()
        return _out(session, journey)

    return change


_transition("activate", "Activate: customers start entering (a one-off segment journey enters its members now)")
_transition("pause", "Pause: every customer whose step comes due is held in place")
_transition("resume", "Resume: held customers go on")
_transition("archive", "Archive: no more entries; open runs end")


@router.get("/{journey_id}/export", response_model=DocumentIn, summary="The journey as a document to import",
            dependencies=[read], responses=error_responses(404, 422))
def export(journey_id: Id, session: Session = Depends(get_session)) -> DocumentIn:
    return DocumentIn(**service.export(session, journey_id))


@router.post("/{journey_id}/trigger", response_model=TriggerOut, summary="Enter one customer (API trigger)",
             dependencies=[write], responses=error_responses(404, 422))
def trigger(journey_id: Id, body: TriggerIn, request: Request, session: Session = Depends(get_session)) -> TriggerOut:
    for_writing(session)
    run_id = service.trigger(session, journey_id, body.customer_id, body.key, body.context, timezone=_tz(request))
    session.commit()
    return TriggerOut(entered=run_id is not None, run_id=run_id)


@router.get("/{journey_id}/report", response_model=ReportOut, summary="Counts: runs by node and status, steps by node",
            dependencies=[read], responses=error_responses(404, 422))
def report(journey_id: Id, session: Session = Depends(get_session)) -> ReportOut:
    service.get_journey(session, journey_id)
    return ReportOut(counts=service.summary(session, journey_id),
                     positions=[PositionOut(version=v, node=n, status=s, runs=k)
                                for v, n, s, k in service.positions(session, journey_id)],
                     passed=[PassedOut(node=n, outcome=o, steps=k) for n, o, k in service.passed(session, journey_id)])
