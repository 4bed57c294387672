"""The public lead form: /forms/lead (an embeddable page), /forms/lead/token and POST /forms/lead.

No login: spam is kept out by a signed, time-stamped token, a honeypot field and a per-IP rate limit
(429 with Retry-After). A post as a form (the iframe page) is answered with a page; a post with JSON
or from script (Accept: application/json) is answered with JSON and the usual error envelope.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from clm.db.engine import for_writing
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError
from clm.lib.ratelimit import RateLimit
from clm.sales import form as lead_form
from clm.sales.leads import UTM_KEYS, capture_lead
from clm.web import i18n
from clm.web.errors import ApiError, error_body
from clm.web.pages.base import _env

router = APIRouter(prefix="/forms", tags=["lead form"], include_in_schema=False)
_MAX_BODY = 64 * 1024


def _key(request: Request) -> bytes:
    state = request.app.state
    key = getattr(state, "lead_form_key", None)
    if key is None:
        key = state.lead_form_key = lead_form.form_key(state.settings.secret_key.get_secret_value())
    return key


def _limiter(request: Request) -> RateLimit:
    state = request.app.state
    limiter = getattr(state, "lead_form_limit", None)
    if limiter is None:
        limiter = state.lead_form_limit = RateLimit(state.settings.lead_form_per_ip, 600)
    return limiter


def _form_name(value: Any) -> str:
    text = str(value or "default")
    return text[:64] if text.replace("-", "").replace("_", "").isalnum() else "default"


def _page(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    locale = request.query_params.get("lang") or i18n.from_accept_language(request.headers.get("accept-language"))
    locale = locale if locale in i18n.LOCALES else i18n.DEFAULT
    nonce = secrets.token_urlsafe(16)
    context.setdefault("values", {})
    context.setdefault("error", None)
    context.setdefault("saved", None)
    context.setdefault("closed", False)
    html = _env.get_template("sales/lead_form.html").render(t=i18n.translator(locale), locale=locale, nonce=nonce,
                                                             **context)
    # Meant to be framed by the shop's own site: any ancestor may frame it, it posts only here.
    return HTMLResponse(html, status_code=status, headers={
        "Content-Security-Policy": f"default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self'; "
                                   "base-uri 'none'; frame-ancestors *",
        "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _saved(request: Request, key: str) -> dict[str, Any] | None:
    """The saved form called `key` (title, fields, campaign, owner, thank-you text), if the shop made one."""
    from clm.sales.lead_forms import form_by_key

    with request.app.state.session_factory() as session:
        saved = form_by_key(session, key)
        if saved is None:
            return None
        return {"title": saved.title, "fields": list(saved.fields), "campaign": saved.campaign,
                "owner_id": saved.owner_id, "thank_you": saved.thank_you, "active": saved.active}


@router.get("/lead")
def form_page(request: Request) -> HTMLResponse:
    """The form, with the UTM parameters and the visitor's anonymous id of the framing page passed on."""
    query = request.query_params
    form = _form_name(query.get("form"))
    saved = _saved(request, form)
    if saved is not None and not saved["active"]:
        return _page(request, 404, sent=False, closed=True, saved=saved)
    hidden = {f"utm_{k}": query[f"utm_{k}"][:255] for k in UTM_KEYS if query.get(f"utm_{k}")}
    for key in ("anonymous_id", "page_url"):
        if query.get(key):
            hidden[key] = query[key][:2000]
    action = "/forms/lead" + ("?" + urlencode({"lang": query["lang"]}) if query.get("lang") in i18n.LOCALES else "")
    return _page(request, token=lead_form.issue_token(_key(request), form, utcnow()), form=form, hidden=hidden,
                 action=action, sent=False, saved=saved)


@router.get("/lead/token")
def form_token(request: Request) -> JSONResponse:
    """A token for a form the shop builds itself (post it back as `token`, and leave `website` empty)."""
    form = _form_name(request.query_params.get("form"))
    return JSONResponse({"token": lead_form.issue_token(_key(request), form, utcnow()), "form": form,
                         "honeypot": lead_form.HONEYPOT}, headers={"Access-Control-Allow-Origin": "*",
                                                                    "Cache-Control": "no-store"})


async def _read(request: Request) -> tuple[dict[str, Any], bool]:
    """The posted fields and whether the client wants JSON back."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    wants_json = kind == "application/json" or "application/json" in request.headers.get("accept", "")
    if int(request.headers.get("content-length") or 0) > _MAX_BODY:
        raise ApiError(413, "too_large", "the form is larger than 64 KB")
    if kind == "application/json":
        try:
            data = await request.json()
        except ValueError:
            raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_body", "the body must be a JSON object")
        return data, True
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}, wants_json


def _error_key(exc: FieldError) -> str:
    """Which message a person reads for a refused form (the template picks it)."""
    if exc.field in ("phone", "email"):
        return exc.field
    return "expired" if exc.code == "expired" else "spam"


@router.post("/lead")
async def form_post(request: Request) -> Response:
    cors = {"Access-Control-Allow-Origin": "*"}
    settings = request.app.state.settings
    retry = _limiter(request).hit(request.client.host if request.client else "unknown")
    if retry is not None:
        return JSONResponse(error_body("rate_limited", "too many submissions from this address; try again later"),
                            status_code=429, headers={"Retry-After": str(int(retry) + 1), **cors})
    data, wants_json = await _read(request)
    form = _form_name(data.get("form"))
    saved = await run_in_threadpool(_saved, request, form)

    def work() -> None:
        if saved is not None and not saved["active"]:
            raise FieldError("form", "this form is closed")
        lead_form.check_token(_key(request), data.get("token"), form, utcnow(),
                              min_seconds=settings.lead_form_min_seconds,
                              max_seconds=settings.lead_form_max_hours * 3600)
        submission = lead_form.read_submission(data)
        if saved is not None:  # the form's own campaign and owner, unless the visit brought a campaign
            submission.campaign = submission.campaign or submission.utm.get("campaign") or saved["campaign"]
            submission.owner_id = submission.owner_id or saved["owner_id"]
        with request.app.state.session_factory() as session:
            for_writing(session)
            capture_lead(session, submission, region=settings.default_region)
            session.commit()

    try:
        await run_in_threadpool(work)
    except FieldError as exc:
        if wants_json:
            message = f"{exc.field}: {exc.message}" if exc.field else exc.message
            return JSONResponse(error_body(exc.code, message, exc.field), status_code=422, headers=cors)
        hidden = {k: v for k, v in data.items() if (k.startswith("utm_") or k in ("anonymous_id", "page_url"))
                  and isinstance(v, str)}
        return _page(request, 422, token=lead_form.issue_token(_key(request), form, utcnow()), form=form,
                     hidden=hidden, action=str(request.url.path), sent=False, error=_error_key(exc), saved=saved,
                     values={k: data.get(k, "") for k in ("name", "phone", "email", "city", "message")})
    if wants_json:
        return JSONResponse({"ok": True}, status_code=201, headers=cors)
    return _page(request, 201, sent=True, saved=saved)
