"""The broadcasts API: /api/v1/broadcasts. A thin adapter over clm.channels.broadcasts.

Scopes: `broadcasts:read` lists, reads and reports; `broadcasts:write` creates, changes, schedules,
cancels and test-sends. A broadcast in a state that does not allow the change answers 422 with
code `conflict` and `field: status`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from clm.channels import broadcasts, testsend
from clm.channels.models import Broadcast
from clm.db.engine import for_writing
from clm.web.api_docs import Cursor, Id, Limit, error_responses
from clm.web.deps import get_session, require_scope

router = APIRouter(prefix="/broadcasts", tags=["broadcasts"])
read = Depends(require_scope("broadcasts:read"))
write = Depends(require_scope("broadcasts:write"))
Status = Literal["draft", "scheduled", "sending", "sent", "cancelled"]


class BroadcastIn(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    template_key: str = Field(min_length=1, max_length=100, description="The template to send (its channel is used).")
    segment_id: int = Field(ge=1, description="Whose current members receive it when it is sent.")
    purpose: Literal["marketing", "transactional"] = "marketing"
    context: dict[str, Any] = Field(default_factory=dict, description="Extra data the template sees as `context`.")
    attribution_days: int | None = Field(None, ge=1, le=90,
                                         description="Orders within this many days count (default: the setting).")


class BroadcastChange(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=120)
    template_key: str | None = Field(None, min_length=1, max_length=100)
    segment_id: int | None = Field(None, ge=1)
    purpose: Literal["marketing", "transactional"] | None = None
    context: dict[str, Any] | None = None
    attribution_days: int | None = Field(None, ge=1, le=90)


class ScheduleIn(BaseModel):
    send_at: datetime | None = Field(None, description="ISO 8601 with an offset; null or absent: now.")


class TestIn(BaseModel):
    to: str = Field(min_length=1, max_length=2000, description="The staff address: email, phone, PSID or URL.")
    customer_id: int | None = Field(None, ge=1, description="Render for this customer (default: the segment's first).")


class TestOut(BaseModel):
    job_id: int = Field(description="The channels.test job that sends it (its outcome: the dashboard's Jobs page).")
    subject: str | None
    text: str


class BroadcastOut(BaseModel):
    id: int
    name: str
    status: Status
    status_reason: str | None
    channel: str
    template_key: str
    segment_id: int | None
    purpose: str
    context: dict[str, Any]
    send_at: datetime | None
    attribution_days: int
    recipients: int = Field(description="Messages queued for it (every status).")
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    queued_at: datetime | None
    finished_at: datetime | None


class BroadcastList(BaseModel):
    data: list[BroadcastOut]
    next: str | None = Field(None, description="Pass as `cursor` to get the next page; null on the last page.")


class ReportOut(BaseModel):
    recipients: int
    sent: int = Field(description="Handed to the provider and accepted.")
    delivered: int = Field(description="Reported delivered, or opened/clicked/replied (email has no delivery report).")
    opened: int
    clicked: int
    replied: int
    unsubscribed: int
    failed: int = Field(description="Failed or bounced.")
    suppressed: int = Field(description="Not sent: no consent, suppressed address, no address, or cancelled.")
    waiting: int = Field(description="Still in the outbox (queued, deferred or being sent).")
    by_status: dict[str, int]
    orders: int = Field(description="Orders by recipients within the attribution window after their message.")
    buyers: int
    revenue: dict[str, int] = Field(description="Currency -> amount in minor units (VND: dong), net of refunds.")
    attribution_days: int
    window_ends: datetime | None


def _out(b: Broadcast) -> BroadcastOut:
    return BroadcastOut(id=b.id, name=b.name, status=b.status, status_reason=b.status_reason, channel=b.channel,
                        template_key=b.template_key, segment_id=b.segment_id, purpose=b.purpose,
                        context=b.context or {}, send_at=b.send_at, attribution_days=b.attribution_days,
                        recipients=b.recipients, created_by=b.created_by, created_at=b.created_at,
                        started_at=b.started_at, queued_at=b.queued_at, finished_at=b.finished_at)


def _settings(request: Request):
    return request.app.state.settings


@router.get("", response_model=BroadcastList, summary="Broadcasts, newest first", dependencies=[read],
            responses=error_responses(422))
def list_all(status: Status | None = Query(None), cursor: Cursor = None, limit: Limit = 50,
             session: Session = Depends(get_session)) -> BroadcastList:
    rows, next_cursor = broadcasts.list_broadcasts(session, status, after=cursor, limit=limit)
    return BroadcastList(data=[_out(b) for b in rows], next=next_cursor)


@router.post("", response_model=BroadcastOut, status_code=201, summary="Create a broadcast (a draft)",
             dependencies=[write], responses=error_responses(422))
def create(body: BroadcastIn, request: Request, session: Session = Depends(get_session)) -> BroadcastOut:
    for_writing(session)
    broadcast = broadcasts.create_broadcast(session, **body.model_dump(), created_by="api",
                                            settings=_settings(request))
    session.commit()
    return _out(broadcast)


@router.get("/{broadcast_id}", response_model=BroadcastOut, summary="One broadcast", dependencies=[read],
            responses=error_responses(404, 422))
def get(broadcast_id: Id, session: Session = Depends(get_session)) -> BroadcastOut:
    return _out(broadcasts.get_broadcast(session, broadcast_id))


@router.patch("/{broadcast_id}", response_model=BroadcastOut, summary="Change a draft or scheduled broadcast",
              dependencies=[write], responses=error_responses(404, 422))
def update(broadcast_id: Id, body: BroadcastChange, session: Session = Depends(get_session)) -> BroadcastOut:
    for_writing(session)
    broadcast = broadcasts.update_broadcast(session, broadcast_id, **body.model_dump(exclude_unset=True))
    session.commit()
    return _out(broadcast)


@router.delete("/{broadcast_id}", status_code=204, summary="Delete a draft (or a cancelled one that queued nothing)",
               dependencies=[write], responses=error_responses(404, 422))
def delete(broadcast_id: Id, session: Session = Depends(get_session)) -> Response:
    for_writing(session)
    broadcasts.delete_broadcast(session, broadcast_id)
    session.commit()
    return Response(status_code=204)


@router.post("/{broadcast_id}/schedule", response_model=BroadcastOut,
             summary="Send at `send_at`, or now (the worker queues every member's message)", dependencies=[write],
             responses=error_responses(404, 422))
def schedule(broadcast_id: Id, body: ScheduleIn | None = None, session: Session = Depends(get_session)) -> BroadcastOut:
    for_writing(session)
    broadcast = broadcasts.schedule(session, broadcast_id, body.send_at if body else None)
    session.commit()
    return _out(broadcast)


@router.post("/{broadcast_id}/unschedule", response_model=BroadcastOut, summary="Back to a draft",
             dependencies=[write], responses=error_responses(404, 422))
def unschedule(broadcast_id: Id, session: Session = Depends(get_session)) -> BroadcastOut:
    for_writing(session)
    broadcast = broadcasts.unschedule(session, broadcast_id)
    session.commit()
    return _out(broadcast)


@router.post("/{broadcast_id}/cancel", response_model=BroadcastOut,
             summary="Cancel: its messages still waiting are not sent", dependencies=[write],
             responses=error_responses(404, 422))
def cancel(broadcast_id: Id, session: Session = Depends(get_session)) -> BroadcastOut:
    for_writing(session)
    broadcast = broadcasts.cancel(session, broadcast_id)
    session.commit()
    return _out(broadcast)


@router.post("/{broadcast_id}/test", response_model=TestOut, status_code=202,
             summary="Send the template to a staff address (rendered for a customer, marked as a test)",
             dependencies=[write], responses=error_responses(404, 422))
def test(broadcast_id: Id, body: TestIn, request: Request, session: Session = Depends(get_session)) -> TestOut:
    for_writing(session)
    broadcast = broadcasts.get_broadcast(session, broadcast_id)
    settings = _settings(request)
    content = testsend.render_test(session, template_key=broadcast.template_key, customer_id=body.customer_id,
                                   segment_id=broadcast.segment_id, context=broadcast.context, settings=settings)
    job = testsend.queue_test(session, content, body.to, requested_by="api", settings=settings)
    session.commit()
    return TestOut(job_id=job.id, subject=content["subject"], text=content["text"])


@router.get("/{broadcast_id}/report", response_model=ReportOut,
            summary="Sent, delivered, opened, clicked, unsubscribed, failed; orders and revenue in the window",
            dependencies=[read], responses=error_responses(404, 422))
def report(broadcast_id: Id, request: Request, session: Session = Depends(get_session)) -> ReportOut:
    r = broadcasts.report(session, broadcast_id, timezone=_settings(request).timezone)
    return ReportOut(recipients=r.recipients, sent=r.sent, delivered=r.delivered, opened=r.opened, clicked=r.clicked,
                     replied=r.replied, unsubscribed=r.unsubscribed, failed=r.failed, suppressed=r.suppressed,
                     waiting=r.waiting, by_status=r.by_status, orders=r.orders, buyers=r.buyers, revenue=r.revenue,
                     attribution_days=r.attribution_days, window_ends=r.window_ends)
