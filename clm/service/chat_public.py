"""The web chat widget's endpoints under /chat/{public key}: no login, called from the shop's own pages.

- `GET  /chat/{key}/config`: the site's greeting (the widget shows it before the first message);
- `GET  /chat/{key}/messages?visitor=&after=`: the visitor's messages (both ways) after an id;
- `POST /chat/{key}/messages` `{"visitor", "id", "body"}`: a message from the visitor (201, or 200 when
  that `id` was stored already: a retry stores once);
- `GET  /chat/{key}/stream?visitor=&after=`: the same messages as server-sent events, live.

The key only names the site. Calls from an origin the site does not list are refused (403), and CORS lets
the listed origins read the answers (no cookies are used or accepted). Each address and each visitor may
send a limited number of messages a minute (429 with Retry-After). Texts go back as JSON strings, which the
widget puts into the page as text, never as HTML.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError

from clm.db.engine import for_writing
from clm.lib.errors import FieldError
from clm.lib.ratelimit import RateLimit
from clm.service import chat
from clm.service.models import ChatSite
from clm.web.errors import error_body
from clm.web.sse import Event, last_event_id, stream

router = APIRouter(prefix="/chat", tags=["web chat"], include_in_schema=False)
PER_ADDRESS = 30  # messages a minute from one IP address (a shop's office may share one)
PER_VISITOR = 12  # messages a minute from one visitor
MAX_REQUEST = 16 * 1024


def _limits(request: Request) -> tuple[RateLimit, RateLimit]:
    state = request.app.state
    limits = getattr(state, "chat_limits", None)
    if limits is None:
        limits = state.chat_limits = (RateLimit(PER_ADDRESS, 60), RateLimit(PER_VISITOR, 60))
    return limits


def _cors(request: Request, site: ChatSite | None) -> dict[str, str]:
    origin = request.headers.get("origin")
    if site is None or origin is None:
        return {}
    if not chat.allows(site, origin):
        return {}
    return {"Access-Control-Allow-Origin": origin if site.origins else "*", "Vary": "Origin",
            "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Max-Age": "600"}


def _refuse(request: Request, site: ChatSite | None, status: int, code: str, message: str,
            field: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, field), status_code=status,
                        headers={"Cache-Control": "no-store", **_cors(request, site), **(headers or {})})


def _site(request: Request, key: str) -> tuple[ChatSite | None, JSONResponse | None]:
    """The site named by the key, checked against the calling page's origin."""
    with request.app.state.session_factory() as session:
        site = chat.site_by_key(session, key)
        if site is not None:
            session.expunge(site)
    if site is None:
        return None, _refuse(request, None, 404, "not_found", "there is no chat site with this key")
    origin = request.headers.get("origin")
    if origin is not None and not chat.allows(site, origin):
        return None, _refuse(request, None, 403, "forbidden", f"the origin {origin} may not use this chat site")
    return site, None


def _line(line: chat.ChatLine) -> dict[str, Any]:
    return {"id": line.id, "from": "visitor" if line.direction == "in" else "agent", "body": line.body,
            "at": line.at.isoformat(), "author": line.author}


@router.options("/{key}/{rest:path}")
def preflight(request: Request, key: str, rest: str) -> Response:
    site, refused = _site(request, key)
    if refused is not None:
        return refused
    return Response(status_code=204, headers=_cors(request, site))


@router.get("/{key}/config")
def config(request: Request, key: str) -> Response:
    site, refused = _site(request, key)
    if refused is not None:
        return refused
    return JSONResponse({"name": site.name, "greeting": site.greeting}, headers={
        "Cache-Control": "no-store", **_cors(request, site)})


@router.get("/{key}/messages")
def messages(request: Request, key: str, visitor: str = "", after: str = "0") -> Response:
    site, refused = _site(request, key)
    if refused is not None:
        return refused
    if not after.isdigit() or len(after) > 18:
        return _refuse(request, site, 422, "invalid", "must be a message id", "after")
    try:
        with request.app.state.session_factory() as session:
            found = chat.lines(session, site, visitor, int(after))
    except FieldError as exc:
        return _refuse(request, site, 422, "invalid", exc.message, exc.field)
    return JSONResponse({"messages": [_line(x) for x in found]}, headers={"Cache-Control": "no-store",
                                                                         **_cors(request, site)})


@router.post("/{key}/messages")
async def post_message(request: Request, key: str) -> Response:
    site, refused = _site(request, key)
    if refused is not None:
        return refused
    raw = await request.body()
    if len(raw) > MAX_REQUEST:
        return _refuse(request, site, 413, "too_large", f"a chat message request is at most {MAX_REQUEST} bytes")
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return _refuse(request, site, 422, "invalid", "the body is not JSON")
    if not isinstance(data, dict):
        return _refuse(request, site, 422, "invalid", "the body must be a JSON object")
    by_address, by_visitor = _limits(request)
    address = request.client.host if request.client else "unknown"
    for limit, who in ((by_address, f"{site.id}:{address}"), (by_visitor, f"{site.id}:{data.get('visitor')}")):
        wait = limit.hit(who)
        if wait is not None:
            return _refuse(request, site, 429, "rate_limited", "too many messages; wait a little",
                           headers={"Retry-After": str(int(wait) + 1)})
    values = {k: data.get(k) if isinstance(data.get(k), str) else "" for k in ("visitor", "id", "body")}
    from starlette.concurrency import run_in_threadpool

    def store() -> tuple[bool, dict[str, Any]]:
        for attempt in range(2):
            with request.app.state.session_factory() as session:
                for_writing(session)
                try:
                    received = chat.post(session, session.merge(site), values["visitor"], values["body"],
                                         values["id"])
                    session.commit()
                    message = received.message
                    return received.created, {"id": message.id, "from": "visitor", "body": message.body,
                                              "at": message.created_at.isoformat(), "author": None}
                except IntegrityError:  # the same visitor's first messages at once: the other made the profile
                    session.rollback()
                    if attempt:
                        raise
        raise AssertionError("unreachable")

    try:
        created, line = await run_in_threadpool(store)
    except FieldError as exc:
        return _refuse(request, site, 422, "invalid", exc.message, exc.field)
    return JSONResponse({"created": created, "message": line}, status_code=201 if created else 200,
                        headers={"Cache-Control": "no-store", **_cors(request, site)})


@router.get("/{key}/stream")
def live(request: Request, key: str, visitor: str = "") -> Response:
    site, refused = _site(request, key)
    if refused is not None:
        return refused
    try:
        visitor = chat.check_visitor(visitor)
    except FieldError as exc:
        return _refuse(request, site, 422, "invalid", exc.message, exc.field)
    factory = request.app.state.session_factory
    sent: set[int] = set()
    floor = last_event_id(request) or 0

    def poll() -> list[Event]:
        # the visitor's few messages after the floor, less those sent: a reply whose id was taken before
        # another's but committed after it is still sent (PostgreSQL takes ids before commit)
        with factory() as session:
            found = [x for x in chat.lines(session, site, visitor, floor) if x.id not in sent]
        sent.update(x.id for x in found)
        return [Event(x.id, "message", _line(x)) for x in found]

    return stream(request, poll, headers=_cors(request, site))
