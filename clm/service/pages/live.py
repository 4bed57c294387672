"""Live updates for open workspace pages: server-sent events from the service desk's outbox events.

`/service/live` sends every service event (a list page refreshes its list); `?ticket=ID` only that ticket's
(its page refreshes the thread and the side panel). The stream starts at the outbox's head, or after the
last id the browser got (Last-Event-ID on a reconnect), so nothing in between is missed.
"""

from __future__ import annotations

from fastapi import Depends, Request

from clm.service.live import Feed, head
from clm.web.auth import require
from clm.web.pages.base import dashboard_router
from clm.web.sse import Event, last_event_id, stream

router = dashboard_router()
allowed = require("service")


@router.get("/service/live")
def live(request: Request, ticket: int | None = None, user=Depends(allowed)):
    factory = request.app.state.session_factory
    start = last_event_id(request)
    if start is None:
        with factory() as session:
            start = head(session)
    feed = Feed(start)

    def poll() -> list[Event]:
        with factory() as session:
            updates = feed.read(session)
        return [Event(u.id, "ticket", {"topic": u.topic, "ticket_id": u.ticket_id}) for u in updates
                if ticket is None or u.ticket_id == ticket]

    return stream(request, poll)
