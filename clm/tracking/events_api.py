"""The events API: /api/v1/events, the stored tracking calls, newest first."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from clm.tracking.events_schemas import EventPage
from clm.tracking.events_service import list_events as list_events_service
from clm.web.api_docs import MAX_ID, Cursor, Instant, Limit, error_responses, text_param
from clm.web.deps import get_session, require_scope

router = APIRouter(prefix="/events", tags=["events"])

EventType = Literal["track", "page", "screen", "identify", "group", "alias"]


@router.get("", response_model=EventPage, summary="List events", responses=error_responses(422),
            dependencies=[Depends(require_scope("events:read"))])
def list_events(
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this customer's events.")] = None,
    name: Annotated[str | None, text_param("Event name, exactly (e.g. Product Viewed).")] = None,
    type: Annotated[EventType | None, Query(description="Only calls of this type.")] = None,
    since: Annotated[Instant | None, Query(description="Happened at or after (ISO 8601).")] = None,
    until: Annotated[Instant | None, Query(description="Happened before.")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
    session: Session = Depends(get_session),
) -> EventPage:
    """Events matching every filter, newest first, in pages of `limit`."""
    rows, next_cursor = list_events_service(session, customer_id=customer_id, name=name, type=type,
                                            since=since, until=until, after=cursor, limit=limit)
    return EventPage(data=rows, next=next_cursor)
