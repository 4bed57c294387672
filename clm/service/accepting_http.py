"""The HTTP side of accepting customers' messages (clm.service.accepting): `AcceptMessages`, an ASGI
middleware, answers `POST /api/v1/service/messages` with a Bearer key and a JSON body that validates before
the app's routing, dependencies, thread pool and response model (which cost most of the request's CPU);
its answers are byte for byte the route's. Anything else (no key, a body that does not validate, another
content type) goes on to the route in clm.service.api, which answers 401/400/422 as every endpoint does,
also stores through the group commit, and is what the OpenAPI document describes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import ValidationError

from clm.db.group_commit import GroupCommit
from clm.service.accepting import MAX_GROUP, Accepted, Incoming, Refused, Writer
from clm.service.conversations import InboundIn
from clm.web.errors import ApiError

PATH = "/api/v1/service/messages"


def group_of(app) -> GroupCommit[Incoming]:
    """The app's group commit (one per server process), made at its first message."""
    group = getattr(app.state, "service_accepting", None)
    if group is None:
        group = app.state.service_accepting = GroupCommit(Writer(app.state.session_factory), MAX_GROUP)
    return group


async def submit(app, token: str, body: InboundIn) -> Accepted:
    """Accept one message through the app's group commit; a refused key raises the API's error."""
    try:
        return await group_of(app).submit(incoming(token, body))
    except Refused as exc:
        raise ApiError(exc.status, exc.code, exc.message, headers=exc.headers) from None


def incoming(token: str, body: InboundIn) -> Incoming:
    return Incoming(hashlib.sha256(token.encode()).hexdigest(), body.external_id, body.model_dump(mode="json"))


def render(content: Any) -> bytes:
    """Exactly the bytes of the app's JSONResponse (starlette.responses.JSONResponse.render)."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


def bearer(authorization: str | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` header, as fastapi.security.HTTPBearer reads it."""
    scheme, _, key = (authorization or "").partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def _json_content(content_type: bytes | None) -> bool:
    """Whether FastAPI reads this body as JSON (application/json or application/*+json); none: it does not."""
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    if media.count(b"/") != 1:
        return False
    main, sub = media.split(b"/")
    return main == b"application" and (sub == b"json" or sub.endswith(b"+json"))


class AcceptMessages:
    """ASGI middleware: `POST /api/v1/service/messages` with a Bearer key and a JSON body that validates
    (`InboundIn`) is accepted here, through the group commit, without the app's routing, dependencies,
    thread pool or response model; the answer is byte for byte the route's. Anything else goes on to the
    app (the body read here is handed on)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or _route_path(scope) != PATH:
            return await self.app(scope, receive, send)
        authorization = content_type = None
        for name, value in scope["headers"]:
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"content-type" and content_type is None:
                content_type = value
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        token = bearer(authorization)
        body = _validated(raw) if token and _json_content(content_type) else None
        if body is None:
            return await self.app(scope, _replay(raw, receive), send)
        try:
            accepted = await submit(scope["app"], token, body)
        except Exception as exc:  # a refusal (ApiError) or the group's failure: the app's handler answers
            return await _handled(scope, receive, send, exc)
        status, content = accepted.answer()
        payload = render(content)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", str(len(payload)).encode()),
                                (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": payload})


def _route_path(scope) -> str:
    """The path the app's router matches (starlette.routing's get_route_path: without root_path)."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root) and path != root and path[len(root)] == "/":
        return path[len(root):]
    return path


def _validated(raw: bytes) -> InboundIn | None:
    """The body as FastAPI would validate it (json.loads, then the model); None when it would refuse it."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON (400 from the route), or nested too deep for json
        return None
    if not isinstance(data, dict):
        return None
    try:
        return InboundIn.model_validate(data)
    except ValidationError:
        return None


def _replay(raw: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return await receive()

    return replay


async def _handled(scope, receive, send, exc: Exception) -> None:
    """Answer `exc` with the app's own exception handler (the error envelope; 503 when the database is down)."""
    from starlette.requests import Request

    handlers = scope["app"].exception_handlers
    handler = next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)
    if handler is None:
        raise exc
    response = await handler(Request(scope, receive), exc)
    await response(scope, receive, send)
