"""The Generic CTI endpoint a PBX posts call events to: POST /hooks/cti/<token>, also answered at Zammad's own
path /api/v1/cti/<token>, so a PBX script written for Zammad only needs the new host and token.

Form-encoded, multipart or JSON bodies, as Zammad accepts them; the answer is `{}` (Zammad's). A wrong
token is a 401 and an endpoint with no token set a 404 naming the command that sets one; an unknown
callId is a 404 and a malformed event a 422 naming the field: in each case nothing is stored. The event
is committed before the PBX gets its answer.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from clm.db.engine import for_writing
from clm.lib.errors import FieldError, NotFound
from clm.service import calls
from clm.web.errors import ApiError

router = APIRouter(include_in_schema=False)
MAX_BODY = 64 * 1024


async def _fields(request: Request) -> dict:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiError(413, "too_large", f"a call event is at most {MAX_BODY // 1024} KB")
    if kind == "application/json":
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ApiError(422, "invalid", "the body must be a JSON object", None)
        return data
    form = await request.form()
    data: dict = {}
    for key in form:
        values = form.getlist(key)
        data[key] = values if key in ("user[]", "user") else values[0]
    return data


async def _event(token: str, request: Request) -> JSONResponse:
    data = await _fields(request)
    try:
        event = calls.parse_event(data)
    except FieldError as exc:
        raise ApiError(422, exc.code, exc.message, exc.field) from None
    now = request.app.state.dashboard_clock()  # tests fix the clock there

    def work() -> None:
        with request.app.state.session_factory() as session:
            for_writing(session)
            if not calls.configured(session):
                raise ApiError(404, "not_configured", "the CTI endpoint is off: make a token with "
                                                      "`clm service cti-token`")
            if not calls.token_ok(session, token):
                raise ApiError(401, "bad_token", "the token in the URL is not this desk's CTI token")
            try:
                calls.handle(session, event, now)
            except NotFound:
                session.rollback()
                raise ApiError(404, "unknown_call", f"no newCall was received for callId {event.callId!r}",
                               "callId") from None
            except FieldError as exc:
                session.rollback()
                raise ApiError(422, exc.code, exc.message, exc.field) from None
            session.commit()

    await run_in_threadpool(work)
    return JSONResponse({})


@router.post("/hooks/cti/{token}")
async def cti_event(token: str, request: Request) -> JSONResponse:
    return await _event(token, request)


@router.post("/api/v1/cti/{token}")
async def cti_event_zammad_path(token: str, request: Request) -> JSONResponse:
    return await _event(token, request)
