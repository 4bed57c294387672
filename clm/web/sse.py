"""Server-sent events: a response that polls a function (in the thread pool, with its own database session)
and sends what it returns as events, until the client goes away or the stream's time is up.

A stream ends after `duration` seconds; the browser's EventSource reconnects by itself (after `retry`
milliseconds) sending the last event id it got, so no connection is held for ever, a restarted server is
reconnected to, and the page misses nothing. Every server process reads the database, so it does not matter
which process a page is connected to. A comment line every `heartbeat` seconds keeps proxies from closing an
idle connection.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool


@dataclass(frozen=True)
class Event:
    id: int | None
    name: str
    data: Any


@dataclass(frozen=True)
class Timing:
    interval: float = 1.0  # between polls
    duration: float = 55.0  # of one connection
    heartbeat: float = 15.0
    retry_ms: int = 1500


def format_event(event: Event) -> str:
    lines = []
    if event.id is not None:
        lines.append(f"id: {event.id}")
    lines.append(f"event: {event.name}")
    # JSON has no raw newlines, so one data line carries it whole
    lines.append("data: " + json.dumps(event.data, ensure_ascii=False, default=str, separators=(",", ":")))
    return "\n".join(lines) + "\n\n"


def last_event_id(request: Request) -> int | None:
    """The id the browser got last (EventSource sends it when reconnecting), else the `after` parameter."""
    text = request.headers.get("last-event-id") or request.query_params.get("after") or ""
    text = text.strip()
    return int(text) if text.isdigit() and len(text) < 19 else None


def stream(request: Request, poll: Callable[[], list[Event]], timing: Timing | None = None,
           headers: dict[str, str] | None = None) -> StreamingResponse:
    timing = timing or getattr(request.app.state, "sse_timing", None) or Timing()

    async def events() -> AsyncIterator[str]:
        yield f"retry: {timing.retry_ms}\n\n"
        started = last_beat = time.monotonic()
        while True:
            for event in await run_in_threadpool(poll):
                yield format_event(event)
            now = time.monotonic()
            if now - started >= timing.duration or await request.is_disconnected():
                return
            if now - last_beat >= timing.heartbeat:
                last_beat = now
                yield ": ping\n\n"
            await asyncio.sleep(timing.interval)

    return StreamingResponse(events(), media_type="text/event-stream", headers={
        "Cache-Control": "no-store", "X-Accel-Buffering": "no", **(headers or {})})
