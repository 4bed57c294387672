"""What a lead's and a deal's page show of the customer they belong to: the lead's history is the customer's,
so nothing is copied. The newest events and orders (the customer 360's timeline rows, with its "load more"),
the newest messages sent to the customer, and the calls, meetings and notes logged on the lead and on its deal
together."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from clm.customers import service as customers
from clm.sales.activities import list_activities
from clm.web import i18n

EVENTS = 20
MESSAGES = 10
ACTIVITIES = 50


def customer_history(db: Session, customer_id: int, locale: str, timezone: str) -> dict[str, Any]:
    """{"entries", "next_cursor", "messages"} of the customer, newest first, for `sales/_history.html`."""
    from clm.channels.service import messages_of_customer
    from clm.web.pages.customers import _entries  # the 360's own timeline rows: one wording of each event

    raw, next_cursor = customers.timeline(db, customer_id, limit=EVENTS)
    fmt, t = i18n.Formatter(locale, timezone), i18n.translator(locale)
    return {"entries": _entries(db, raw, fmt, t), "next_cursor": next_cursor,
            "messages": messages_of_customer(db, customer_id, limit=MESSAGES)}


def activities_of(db: Session, *, lead_id: int | None, opportunity_id: int | None) -> list:
    """The activities logged on the lead and on its deal, newest first (one list: the deal inherits the lead's)."""
    found = {}
    if lead_id is not None:
        found.update((a.id, a) for a in list_activities(db, lead_id=lead_id, limit=ACTIVITIES))
    if opportunity_id is not None:
        found.update((a.id, a) for a in list_activities(db, opportunity_id=opportunity_id, limit=ACTIVITIES))
    return sorted(found.values(), key=lambda a: (a.occurred_at, a.id), reverse=True)[:ACTIVITIES]
