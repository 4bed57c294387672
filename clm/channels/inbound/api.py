"""The webhook endpoints providers call: /hooks/esms, /hooks/speedsms, /hooks/zalo, /hooks/messenger, and
/hooks/email/feedback (abuse reports from mailbox providers' feedback loops, piped by the mail server),
/hooks/email/bounces (delivery status notifications, piped the same way) and /hooks/esms-mo (two-way SMS).

Thin: check the provider's signature (or the secret URL token) over the raw bytes, parse, record (with
the deliveries arriving at the same moment, in one transaction: `service.Recorder`), answer 200 after the
commit. A bad signature is a 401 JSON error and nothing is stored; a provider
that is not configured answers 404 naming the setting, so a misrouted webhook is visible.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool

from clm.channels.inbound import bounces, complaints, payloads, signatures
from clm.channels.inbound.service import Outcome, Parsed, Recorder
from clm.db.group_commit import GroupCommit
from clm.web.errors import ApiError

router = APIRouter(prefix="/hooks", tags=["provider webhooks"], include_in_schema=False)
MAX_BODY = 5 * 1024 * 1024  # Messenger batches up to 1000 updates
GROUP = 200  # deliveries recorded in one transaction at most


def _secret(request: Request, name: str) -> str:
    value: SecretStr | None = getattr(request.app.state.settings, name)
    if value is None or not value.get_secret_value():
        raise ApiError(404, "not_configured", f"this webhook is off: set CLM_{name.upper()}")
    return value.get_secret_value()


async def _raw(request: Request) -> bytes:
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ApiError(413, "too_large", f"the body is larger than {MAX_BODY // 1024 // 1024} MB")
    return bytes(raw)


def _json(raw: bytes):
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None


async def _record(request: Request, parsed: Parsed) -> JSONResponse:
    """Recorded with the deliveries arriving at the same moment in one transaction (group commit), answered
    after its COMMIT."""
    app = request.app
    group = getattr(app.state, "channels_recording", None)
    if group is None:
        group = app.state.channels_recording = GroupCommit(Recorder(app.state.session_factory), GROUP)
    outcome = await group.submit(parsed)
    return JSONResponse(outcome.as_dict())


def _check_token(request: Request, token: str) -> None:
    if not signatures.token_ok(token, _secret(request, "hooks_token")):
        raise ApiError(401, "bad_signature", "the token in the URL is wrong", field="token")


@router.api_route("/esms/{token}", methods=["GET", "POST"])
async def esms_report(request: Request, token: str):
    """eSMS calls CallbackUrl with a GET whose query carries the report."""
    _check_token(request, token)
    return await _record(request, payloads.esms(dict(request.query_params)))


@router.get("/esms-mo")
async def esms_inbound_sms(request: Request):
    """A customer's SMS to the short code, forwarded by eSMS as a GET signed with the CP's private key.
    eSMS expects a ClientResponse; its Message is left empty, so no automatic answer is sent."""
    settings = request.app.state.settings
    key = _secret(request, "esms_mo_private_key")
    query = dict(request.query_params)
    if not settings.esms_mo_cpid or not signatures.esms_mo_ok(query, settings.esms_mo_cpid, key):
        raise ApiError(401, "bad_signature", "sign or cpid does not match: check CLM_ESMS_MO_CPID and "
                       "CLM_ESMS_MO_PRIVATE_KEY", field="sign")
    outcome = await _record(request, payloads.esms_mo(query, settings.timezone))
    return Response(client_response(query.get("smsid") or "", query.get("sender") or ""),
                    media_type="application/xml", headers={"X-Clm-Outcome": outcome.body.decode()})


def client_response(smsid: str, receiver: str, message: str = "") -> str:
    """The answer eSMS's MO forwarding expects (escaped: the values come from the request)."""
    return (f"<ClientResponse><Message>{escape(message)}</Message><Smsid>{escape(smsid)}</Smsid>"
            f"<Receiver>{escape(receiver)}</Receiver></ClientResponse>")


@router.post("/speedsms/{token}")
async def speedsms_event(request: Request, token: str):
    _check_token(request, token)
    raw = await _raw(request)
    return await _record(request, payloads.speedsms(_json(raw)))


@router.post("/email/feedback/{token}")
async def email_feedback(request: Request, token: str):
    """A feedback-loop abuse report (ARF, RFC 5965) as raw mail, piped by the shop's mail server."""
    _check_token(request, token)
    raw = await _raw(request)
    try:
        found, ignored = complaints.parse_arf(raw)
    except complaints.NotAReport as exc:
        raise ApiError(400, "not_a_report", str(exc), field="body") from None

    def work():
        with request.app.state.session_factory() as session:
            outcome = Outcome(ignored=ignored)
            for complaint in found:
                changed = complaints.record_complaint(session, complaint)
                if changed is None:
                    outcome.unmatched += 1
                elif changed:
                    outcome.updated += 1
            session.commit()
            return outcome

    return JSONResponse((await run_in_threadpool(work)).as_dict())


@router.post("/email/bounces/{token}")
async def email_bounce(request: Request, token: str):
    """A delivery status notification (DSN, RFC 3464) as raw mail, piped by the shop's mail server."""
    _check_token(request, token)
    raw = await _raw(request)
    try:
        found, ignored = bounces.parse_dsn(raw)
    except bounces.NotADsn as exc:
        raise ApiError(400, "not_a_report", str(exc), field="body") from None

    def work():
        with request.app.state.session_factory() as session:
            outcome = Outcome(ignored=ignored)
            for bounce in found:
                changed = bounces.record_bounce(session, bounce)
                if changed is None:
                    outcome.unmatched += 1
                elif changed:
                    outcome.updated += 1
            session.commit()
            return outcome

    return JSONResponse((await run_in_threadpool(work)).as_dict())


@router.post("/zalo")
async def zalo_event(request: Request):
    secret = _secret(request, "zalo_oa_secret_key")
    raw = await _raw(request)
    if not signatures.zalo_ok(raw, request.headers.get("x-zevent-signature"), secret):
        raise ApiError(401, "bad_signature", "X-ZEvent-Signature does not match: check CLM_ZALO_OA_SECRET_KEY "
                       "(the OA secret key, not the app secret)", field="X-ZEvent-Signature")
    body = _json(raw)
    app_id = request.app.state.settings.zalo_app_id
    if app_id and str(body.get("app_id")) != app_id:
        raise ApiError(403, "wrong_app", "the event is for another Zalo app", field="app_id")
    if body.get("event_name") == ZALO_SUBMIT_INFO:
        return await _forward_submit_info(request, body)
    return await _record(request, payloads.zalo(body))


ZALO_SUBMIT_INFO = "user_submit_info"
ZALO_LEAD_JOB = "sales.zalo_lead"  # run by clm.sales.jobs; named here, not imported (one-way dependencies)


async def _forward_submit_info(request: Request, body: dict) -> JSONResponse:
    """Zalo allows one webhook URL per app: a follower's shared contact details (the OA's request-information
    form) arrive here with the messages and are queued for the sales team as a lead (docs/sales.md). Stored
    before the answer; a repeated delivery queues nothing twice (unique per follower and timestamp)."""
    from clm.db.engine import for_writing
    from clm.jobs.queue import enqueue

    sender = body.get("sender") if isinstance(body.get("sender"), dict) else {}
    key = f"{ZALO_LEAD_JOB}:{str(sender.get('id') or body.get('user_id_by_app') or '')[:64]}:{str(body.get('timestamp'))[:20]}"

    def work() -> None:
        with request.app.state.session_factory() as session:
            for_writing(session)
            enqueue(session, ZALO_LEAD_JOB, {"event": body}, unique_key=key, max_attempts=5)
            session.commit()

    await run_in_threadpool(work)
    return JSONResponse({"ok": True, "forwarded": "lead"})


@router.get("/messenger")
async def messenger_verify(request: Request):
    """Meta's subscription handshake: echo hub.challenge when hub.verify_token is ours."""
    expected = _secret(request, "messenger_verify_token")
    query = request.query_params
    if query.get("hub.mode") != "subscribe" or not signatures.token_ok(query.get("hub.verify_token"), expected):
        raise ApiError(403, "forbidden", "hub.verify_token does not match CLM_MESSENGER_VERIFY_TOKEN",
                       field="hub.verify_token")
    return PlainTextResponse(query.get("hub.challenge", ""))


@router.post("/messenger")
async def messenger_event(request: Request):
    secret = _secret(request, "messenger_app_secret")
    raw = await _raw(request)
    if not signatures.messenger_ok(raw, request.headers.get("x-hub-signature-256"), secret):
        raise ApiError(401, "bad_signature", "X-Hub-Signature-256 does not match: check CLM_MESSENGER_APP_SECRET",
                       field="X-Hub-Signature-256")
    body = _json(raw)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object")
    return await _record(request, payloads.messenger(body))
