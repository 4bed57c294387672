"""The segments API: /api/v1/segments. A thin adapter over clm.segments.service.

A rule tree that does not hold (an unknown field, an operator that does not fit, a bad date, a cycle)
is answered 422 with `field` naming its path inside the body, e.g. `rules.all[1].op`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, RootModel
from sqlalchemy.orm import Session

from clm.db.engine import for_writing
from clm.lib.clock import utcnow
from clm.segments import service
from clm.segments.models import Segment
from clm.segments.render import render
from clm.segments.rules import RULES_SCHEMA, parse_rules
from clm.web.api_docs import Id, error_responses
from clm.web.deps import get_session, require_scope

router = APIRouter(prefix="/segments", tags=["segments"])
read = Depends(require_scope("segments:read"))
write = Depends(require_scope("segments:write"))
RulesField = Field(None, description="The rule tree (see GET /api/v1/segments/schema); null for a static segment.",
                   json_schema_extra={"example": {"all": [
                       {"type": "stage", "stages": ["retention"]},
                       {"type": "event", "name": "Article Read", "count": 2, "window": {"last_days": 30}}]}})


class SegmentIn(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    kind: Literal["dynamic", "static"] = "dynamic"
    description: str = Field("", max_length=2000)
    rules: dict[str, Any] | None = RulesField


class SegmentOut(BaseModel):
    id: int
    name: str
    kind: str
    description: str
    rules: dict[str, Any] | None
    text: dict[str, str] = Field(description="The rule tree in one line, in Vietnamese and English.")
    size: int = Field(description="Current members.")
    depends_on: list[str] = Field(description="The kinds of fact that re-check this segment.")
    refreshed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SegmentList(BaseModel):
    data: list[SegmentOut]


class RuleSchema(RootModel[dict[str, Any]]):
    """The JSON Schema (draft 2020-12) that every rule tree follows."""


class PreviewIn(BaseModel):
    rules: dict[str, Any] = RulesField


class PreviewOut(BaseModel):
    count: int = Field(description="Customers the tree matches now.")
    text: dict[str, str]


class MemberOut(BaseModel):
    customer_id: int
    full_name: str | None
    email: str | None
    phone: str | None
    city: str | None
    lifecycle_stage: str | None
    entered_at: datetime


class MemberPage(BaseModel):
    data: list[MemberOut]
    next: int | None = Field(description="Pass as `after` for the next page; null on the last page.")


class ListChange(BaseModel):
    add: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list, max_length=10_000)
    remove: list[Annotated[int, Field(ge=1)]] = Field(default_factory=list, max_length=10_000)


class ListChanged(BaseModel):
    entered: int
    exited: int
    size: int


def _texts(session: Session, rules: dict | None) -> dict[str, str]:
    if rules is None:
        return {"vi": "danh sách", "en": "a list"}
    node = parse_rules(rules)
    names = {s.id: s.name for s in service.list_segments(session)}
    return {locale: render(node, locale, names) for locale in ("vi", "en")}


def _out(session: Session, s: Segment) -> SegmentOut:
    return SegmentOut(id=s.id, name=s.name, kind=s.kind, description=s.description, rules=s.rules,
                      text=_texts(session, s.rules), size=s.size, depends_on=s.depends_on or [],
                      refreshed_at=s.refreshed_at, created_at=s.created_at, updated_at=s.updated_at)


def _tz(request: Request) -> str:
    return request.app.state.settings.timezone


@router.get("", response_model=SegmentList, summary="Every segment", dependencies=[read],
            responses=error_responses(422))
def list_all(session: Session = Depends(get_session)) -> SegmentList:
    return SegmentList(data=[_out(session, s) for s in service.list_segments(session)])


@router.get("/schema", response_model=RuleSchema, summary="The JSON Schema of rule trees", dependencies=[read],
            responses=error_responses(422))
def schema() -> RuleSchema:
    return RuleSchema(RULES_SCHEMA)


@router.post("", response_model=SegmentOut, status_code=201, summary="Create a segment", dependencies=[write],
             responses=error_responses(422))
def create(body: SegmentIn, request: Request, session: Session = Depends(get_session)) -> SegmentOut:
    """A dynamic segment is evaluated for every customer before the answer (its `size` is current)."""
    for_writing(session)
    segment = service.save_segment(session, name=body.name, kind=body.kind, rules=body.rules,
                                   description=body.description, timezone=_tz(request))
    session.commit()
    return _out(session, segment)


@router.post("/preview", response_model=PreviewOut, summary="Count the customers an unsaved rule tree matches",
             dependencies=[read], responses=error_responses(422))
def preview(body: PreviewIn, request: Request, session: Session = Depends(get_session)) -> PreviewOut:
    count = service.count_preview(session, body.rules, timezone=_tz(request))
    return PreviewOut(count=count, text=_texts(session, body.rules))


@router.get("/{segment_id}", response_model=SegmentOut, summary="One segment", dependencies=[read],
            responses=error_responses(404, 422))
def get(segment_id: Id, session: Session = Depends(get_session)) -> SegmentOut:
    return _out(session, service.get_segment(session, segment_id))


@router.put("/{segment_id}", response_model=SegmentOut, summary="Change a segment", dependencies=[write],
            responses=error_responses(404, 422))
def update(segment_id: Id, body: SegmentIn, request: Request, session: Session = Depends(get_session)) -> SegmentOut:
    for_writing(session)
    segment = service.save_segment(session, segment_id=segment_id, name=body.name, kind=body.kind, rules=body.rules,
                                   description=body.description, timezone=_tz(request))
    session.commit()
    return _out(session, segment)


@router.delete("/{segment_id}", status_code=204, summary="Delete a segment", dependencies=[write],
               responses=error_responses(404, 422))
def delete(segment_id: Id, session: Session = Depends(get_session)) -> Response:
    for_writing(session)
    service.delete_segment(session, segment_id)
    session.commit()
    return Response(status_code=204)


@router.get("/{segment_id}/members", response_model=MemberPage, summary="Current members, by customer id",
            dependencies=[read], responses=error_responses(404, 422))
def members(segment_id: Id, after: Annotated[int | None, Query(ge=0)] = None,
            limit: Annotated[int, Query(ge=1, le=500)] = 100, session: Session = Depends(get_session)) -> MemberPage:
    rows, after_next = service.next_after(service.members_page(session, segment_id, after, limit + 1), limit)
    return MemberPage(data=[MemberOut(customer_id=r.id, full_name=r.full_name, email=r.email, phone=r.phone,
                                      city=r.city, lifecycle_stage=r.lifecycle_stage, entered_at=r.entered_at)
                            for r in rows], next=after_next)


@router.post("/{segment_id}/members", response_model=ListChanged, summary="Add to / remove from a static segment",
             dependencies=[write], responses=error_responses(404, 422))
def change_members(segment_id: Id, body: ListChange, request: Request,
                   session: Session = Depends(get_session)) -> ListChanged:
    for_writing(session)
    change = service.change_list(session, segment_id, add=body.add, remove=body.remove, now=utcnow(),
                                 timezone=_tz(request))
    session.commit()
    size = service.get_segment(session, segment_id).size
    return ListChanged(entered=change.entered, exited=change.exited, size=size)


@router.get("/{segment_id}/export.csv", summary="Members as CSV, with the chosen fields", dependencies=[read],
            response_class=StreamingResponse,
            responses={**error_responses(404, 422), 200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                                                          "description": "A header line, then one line per member."}})
def export(segment_id: Id, request: Request,
           fields: Annotated[str, Query(max_length=500, description="Comma-separated: " + ", ".join(
               service.EXPORT_FIELDS))] = "id,full_name,email,phone") -> StreamingResponse:
    chosen = [f.strip() for f in fields.split(",") if f.strip()]
    session = request.app.state.session_factory()
    try:
        lines = service.export_csv(session, segment_id, chosen)
        first = next(lines)  # errors (bad fields, unknown segment) before the response starts
    except Exception:
        session.close()
        raise

    def stream():
        try:
            yield first
            yield from lines
        finally:
            session.close()

    return StreamingResponse(stream(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="segment-{segment_id}.csv"'})
