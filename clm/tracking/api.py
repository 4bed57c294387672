"""The Segment-compatible HTTP tracking API: /v1/identify, track, page, screen, group, alias, batch.

Authentication is Segment's: the write key as the HTTP basic-auth user (or `writeKey` in the body).
A response is sent only after the transaction holding the accepted messages has committed.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import threading
import time
import zlib
from datetime import datetime

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from clm.access.keys import digest, find_write_key
from clm.lib.clock import utcnow
from clm.tracking.ingest import IngestResult, prepare
from clm.web.errors import ApiError

router = APIRouter(prefix="/v1", tags=["tracking (Segment-compatible)"])

_KEY_TTL = 60.0  # seconds a known write key is trusted without a lookup; revocation takes effect within it
_key_lock = threading.Lock()


def _write_key(request: Request, body: dict) -> str:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            user = base64.b64decode(header[6:].strip()).decode().split(":", 1)[0]
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(401, "unauthorized", "the Authorization header is not valid basic auth") from None
        if user:
            return user
    key = body.get("writeKey") if isinstance(body, dict) else None
    if isinstance(key, str) and key:
        return key
    raise ApiError(401, "unauthorized", "send the write key as the basic-auth user name",
                   headers={"WWW-Authenticate": 'Basic realm="clm"'})


def _check_write_key(request: Request, key: str) -> None:
    hashed = digest(key)
    now = time.monotonic()
    cache: dict[str, float] = request.app.state.write_key_cache
    with _key_lock:
        if cache.get(hashed, 0) > now:
            return
    with request.app.state.session_factory() as session:
        ok = find_write_key(session, key) is not None
    if not ok:
        raise ApiError(401, "unauthorized", "the write key is unknown or revoked",
                       headers={"WWW-Authenticate": 'Basic realm="clm"'})
    with _key_lock:
        cache[hashed] = now + _KEY_TTL


async def _read_json(request: Request, limit: int) -> dict:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "too_large", f"the body is larger than {limit // 1024} KB")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise ApiError(413, "too_large", f"the body is larger than {limit // 1024} KB")
    if request.headers.get("content-encoding", "").lower() == "gzip":
        try:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            raw = inflater.decompress(bytes(raw), limit + 1)
        except (zlib.error, gzip.BadGzipFile):
            raise ApiError(400, "invalid_body", "the body is not valid gzip") from None
        if len(raw) > limit:
            raise ApiError(413, "too_large", f"the body is larger than {limit // 1024} KB once decompressed")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object")
    return body


def _store(request: Request, messages: list, **kwargs) -> IngestResult:
    """Validate here (in the request's thread), then hand the items to the group-commit writer."""
    settings = request.app.state.settings
    items, rejected = prepare(messages, received_at=utcnow(), region=settings.default_region,
                              currency=settings.default_currency, max_event_bytes=settings.max_event_bytes, **kwargs)
    fresh = request.app.state.ingest_writer.submit(items)
    return IngestResult(accepted=len(fresh), duplicates=len(items) - len(fresh), rejected=rejected)


_datetime = TypeAdapter(datetime)


def _parse_sent_at(body: dict) -> datetime | None:
    if body.get("sentAt") is None:
        return None
    try:
        return _datetime.validate_python(body["sentAt"])
    except ValidationError:
        raise ApiError(400, "invalid", "sentAt: is not a valid ISO 8601 date-time", "sentAt") from None


def _response(result: IngestResult, single: bool) -> JSONResponse:
    if single and result.rejected:
        r = result.rejected[0]
        raise ApiError(400, "invalid", f"{r.field}: {r.message}" if r.field else r.message, r.field)
    body = {"success": True, "accepted": result.accepted, "duplicates": result.duplicates,
            "rejected": [r.as_dict() for r in result.rejected]}
    return JSONResponse(body)


@router.post("/batch", summary="Send many calls at once (Segment batch)")
async def batch(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    body = await _read_json(request, settings.max_batch_bytes)
    _check_write_key(request, _write_key(request, body))
    messages = body.get("batch")
    if not isinstance(messages, list):
        raise ApiError(400, "invalid", "batch: must be a list of messages", "batch")
    context = body.get("context") if isinstance(body.get("context"), dict) else None
    result = await run_in_threadpool(_store, request, messages, batch_sent_at=_parse_sent_at(body),
                                     batch_context=context)
    for r in result.rejected:
        r.field = f"batch[{r.index}]" + (f".{r.field}" if r.field else "")
    return _response(result, single=False)


def _single(kind: str):
    async def endpoint(request: Request) -> JSONResponse:
        settings = request.app.state.settings
        body = await _read_json(request, settings.max_event_bytes)
        _check_write_key(request, _write_key(request, body))
        body.pop("writeKey", None)
        result = await run_in_threadpool(_store, request, [body], forced_type=kind)
        return _response(result, single=True)

    endpoint.__name__ = kind
    endpoint.__doc__ = f"Segment `{kind}` call."
    return endpoint


for _kind in ("identify", "track", "page", "screen", "group", "alias"):
    router.add_api_route(f"/{_kind}", _single(_kind), methods=["POST"], summary=f"Segment {_kind}")
