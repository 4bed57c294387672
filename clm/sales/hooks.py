"""Lead webhooks: /hooks/leads/facebook (Lead Ads' leadgen) and /hooks/leads/zalo (user_submit_info).

Signatures are checked over the raw bytes as for the messaging webhooks. Facebook's delivery only
names the lead: each leadgen id becomes a job (unique per id) that reads the lead from the Graph
API with retries, so the webhook answers at once and a repeated delivery queues nothing twice. Zalo's
event carries the details, so the lead is captured in the request (again keyed by the event).
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool

from clm.channels.inbound import signatures
from clm.db.engine import for_writing
from clm.jobs.queue import enqueue
from clm.lib.errors import FieldError
from clm.sales.jobs import FACEBOOK_LEAD
from clm.sales.leads import capture_lead
from clm.sales.providers.facebook import leadgen_changes
from clm.sales.providers.zalo import submitted_lead
from clm.web.errors import ApiError

router = APIRouter(prefix="/hooks/leads", tags=["lead webhooks"], include_in_schema=False)
MAX_BODY = 1024 * 1024


async def _raw(request: Request) -> bytes:
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ApiError(413, "too_large", "the body is larger than 1 MB")
    return bytes(raw)


def _json(raw: bytes):
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None


def _secret(request: Request, *names: str) -> str:
    for name in names:
        value: SecretStr | None = getattr(request.app.state.settings, name)
        if value is not None and value.get_secret_value():
            return value.get_secret_value()
    raise ApiError(404, "not_configured", f"this webhook is off: set CLM_{names[0].upper()}")


@router.get("/facebook")
async def facebook_verify(request: Request):
    expected = _secret(request, "facebook_leads_verify_token", "messenger_verify_token")
    query = request.query_params
    if query.get("hub.mode") != "subscribe" or not signatures.token_ok(query.get("hub.verify_token"), expected):
        raise ApiError(403, "forbidden", "hub.verify_token does not match CLM_FACEBOOK_LEADS_VERIFY_TOKEN",
                       field="hub.verify_token")
    return PlainTextResponse(query.get("hub.challenge", ""))


@router.post("/facebook")
async def facebook_leadgen(request: Request):
    secret = _secret(request, "facebook_leads_app_secret", "messenger_app_secret")
    raw = await _raw(request)
    if not signatures.messenger_ok(raw, request.headers.get("x-hub-signature-256"), secret):
        raise ApiError(401, "bad_signature", "X-Hub-Signature-256 does not match: check "
                       "CLM_FACEBOOK_LEADS_APP_SECRET", field="X-Hub-Signature-256")
    changes = leadgen_changes(_json(raw))

    def work() -> int:
        with request.app.state.session_factory() as session:
            for_writing(session)
            for change in changes:
                enqueue(session, FACEBOOK_LEAD, {"leadgen_id": change.leadgen_id, "form_id": change.form_id,
                                                 "ad_id": change.ad_id, "page_id": change.page_id},
                        unique_key=f"{FACEBOOK_LEAD}:{change.leadgen_id}", max_attempts=12)
            session.commit()
        return len(changes)

    queued = await run_in_threadpool(work) if changes else 0
    return JSONResponse({"ok": True, "leads": queued})


@router.post("/zalo")
async def zalo_submit_info(request: Request):
    secret = _secret(request, "zalo_oa_secret_key")
    raw = await _raw(request)
    if not signatures.zalo_ok(raw, request.headers.get("x-zevent-signature"), secret):
        raise ApiError(401, "bad_signature", "X-ZEvent-Signature does not match: check CLM_ZALO_OA_SECRET_KEY "
                       "(the OA secret key, not the app secret)", field="X-ZEvent-Signature")
    body = _json(raw)
    app_id = request.app.state.settings.zalo_app_id
    if app_id and isinstance(body, dict) and str(body.get("app_id")) != app_id:
        raise ApiError(403, "wrong_app", "the event is for another Zalo app", field="app_id")
    try:
        lead = submitted_lead(body)
    except ValueError as exc:
        raise ApiError(422, "invalid", str(exc).splitlines()[0]) from None
    if lead is None:
        return JSONResponse({"ok": True, "leads": 0, "ignored": 1})
    region = request.app.state.settings.default_region

    def work() -> bool:
        with request.app.state.session_factory() as session:
            for_writing(session)
            captured = capture_lead(session, lead, region=region)
            session.commit()
            return captured.created

    try:
        created = await run_in_threadpool(work)
    except FieldError as exc:
        # Zalo retries failed deliveries; a malformed phone will not improve, so say so and answer 422.
        raise ApiError(422, exc.code, f"{exc.field}: {exc.message}" if exc.field else exc.message, exc.field) from None
    return JSONResponse({"ok": True, "leads": int(created)})
