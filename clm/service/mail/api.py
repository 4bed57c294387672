"""Inbound mail over the API: a raw mail posted by a mail server's pipe, and the quarantine.

`POST /api/v1/service/mail` takes one RFC 5322 message as the request body (any content type; `curl
--data-binary @-` from an /etc/aliases pipe) and answers what became of it: 201 stored, 200 a duplicate,
202 quarantined with the reason. The mail is committed before the answer.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from clm.db.engine import for_writing
from clm.service.mail import inbound
from clm.service.mail.models import Quarantined
from clm.web.api_docs import ErrorOut, Id, Limit, error_responses
from clm.web.deps import get_session, require_scope
from clm.web.errors import ApiError

router = APIRouter(prefix="/service", tags=["service"])
read = Depends(require_scope("service:read"))
write = Depends(require_scope("service:write"))
manage = Depends(require_scope("service:manage"))
_STATUS = {"stored": 201, "duplicate": 200, "automatic": 202, "malformed": 202}


class MailOutcomeOut(BaseModel):
    status: str
    reason: str | None
    ticket_id: int | None
    ticket_number: str | None
    message_id: int | None
    quarantine_id: int | None
    threaded_by: str | None


class QuarantinedOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    reason: str
    source: str
    envelope_from: str | None
    envelope_to: str | None
    sender: str | None
    subject: str | None
    message_id_header: str | None
    size: int
    received_at: datetime
    released_at: datetime | None
    ticket_id: int | None


async def _body(request: Request, limit: int) -> bytes:
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise ApiError(413, "too_large", f"the mail is over CLM_MAIL_MAX_BYTES ({limit} bytes)")
    return bytes(raw)


def _out(outcome: inbound.Outcome) -> MailOutcomeOut:
    return MailOutcomeOut(**outcome.__dict__)


@router.post("/mail", response_model=MailOutcomeOut, status_code=201, summary="Take one inbound email (raw)",
             dependencies=[write], responses={**error_responses(422), 413: {"model": ErrorOut, "description": "Over CLM_MAIL_MAX_BYTES."},
                                              200: {"description": "a duplicate"},
                                              202: {"description": "quarantined, with the reason"}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "message/rfc822": {"schema": {"type": "string", "format": "binary"}}}}})
async def post_mail(request: Request, response: Response, session: Session = Depends(get_session)) -> MailOutcomeOut:
    """The mail as the request body, exactly as received (the threading, loop and quarantine rules of `clm mail`)."""
    settings = request.app.state.settings
    raw = await _body(request, settings.mail_max_bytes)
    session.commit()  # the key check's reader transaction
    for_writing(session)
    try:
        outcome = inbound.accept(session, raw, source="api", settings=settings)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    response.status_code = _STATUS.get(outcome.status, 200)
    return _out(outcome)


@router.get("/mail/quarantine", response_model=list[QuarantinedOut], summary="Mail held back, with why",
            dependencies=[read], responses=error_responses(422))
def list_quarantine(limit: Limit = 50, session: Session = Depends(get_session)) -> list[QuarantinedOut]:
    """Malformed and machine mail, newest first (the raw mail stays in the database)."""
    rows = session.scalars(sa.select(Quarantined).order_by(Quarantined.id.desc()).limit(limit))
    return [QuarantinedOut.model_validate(r) for r in rows]


@router.post("/mail/quarantine/{quarantine_id}/release", response_model=MailOutcomeOut,
             summary="Let a held mail in as a customer's message", dependencies=[manage],
             responses=error_responses(404, 422))
def release_mail(quarantine_id: Id, request: Request, session: Session = Depends(get_session)) -> MailOutcomeOut:
    """A person decided the mail is a customer's after all; a 422 when it was released already or is unreadable."""
    session.commit()
    for_writing(session)
    try:
        outcome = inbound.release(session, quarantine_id, settings=request.app.state.settings)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return _out(outcome)


@router.get("/attachments/{attachment_id}", summary="Download a file a customer sent", dependencies=[read],
            response_class=Response, responses={200: {"content": {"application/octet-stream": {}}},
                                                **error_responses(404, 422)})
def download_attachment(attachment_id: Id, session: Session = Depends(get_session)) -> Response:
    """The file as a download (`Content-Disposition: attachment`); its declared type only when a browser cannot
    run it (pictures, PDF, text, office documents), else `application/octet-stream`. Ids are in a message's
    `attachments`."""
    from clm.service.attachments import download

    file = download(session, attachment_id)
    return Response(file.data, media_type=file.media_type, headers=file.headers)
