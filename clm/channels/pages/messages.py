"""The messages page: every message newest first, searched by customer (name, email, phone) or a
customer id, filtered by status and channel, paged with a cursor (HTMX swaps the table); and one
message with its history."""

from __future__ import annotations

from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from clm.channels.models import CHANNELS, STATUSES, Message
from clm.channels.pages.common import allowed, page
from clm.channels.status import history
from clm.customers import service as customers
from clm.customers.models import Customer
from clm.lib import cursor
from clm.lib.errors import FieldError
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router
from clm.web.pages.errors import not_found_page

router = dashboard_router()
PAGE = 50
MATCHES = 200  # customers a search may name


def _query(db: Session, q: str | None, customer_id: int | None, status: str | None, channel: str | None,
           broadcast_id: int | None, region: str) -> sa.Select | None:
    query = sa.select(Message)
    if customer_id is not None:
        query = query.where(Message.customer_id == customer_id)
    elif q:
        found, _ = customers.list_customers(db, q=q, limit=MATCHES, region=region)
        if not found:
            return None
        query = query.where(Message.customer_id.in_([c.id for c in found]))
    if status:
        query = query.where(Message.status == status)
    if channel:
        query = query.where(Message.channel == channel)
    if broadcast_id is not None:
        query = query.where(Message.broadcast_id == broadcast_id)
    return query


@router.get("/channels/messages")
def messages_page(request: Request, q: str | None = None, status: str | None = None, channel: str | None = None,
                  customer_id: str | None = None, broadcast_id: str | None = None, user=Depends(allowed),
                  db: Session = Depends(get_session)):
    after = request.query_params.get("cursor")
    f = {"q": (q or "").strip()[:200] or None, "status": status if status in STATUSES else None,
         "channel": channel if channel in CHANNELS else None,
         "customer_id": int(customer_id) if (customer_id or "").isdigit() else None,
         "broadcast_id": int(broadcast_id) if (broadcast_id or "").isdigit() else None}
    rows, next_cursor, error = [], None, None
    query = _query(db, f["q"], f["customer_id"], f["status"], f["channel"], f["broadcast_id"],
                   request.app.state.settings.default_region)
    if query is not None:
        try:
            rows, next_cursor = cursor.page_newest_first(db, query, Message.created_at, Message.id, after, PAGE)
        except FieldError:
            error = "cursor"
    names = dict(db.execute(sa.select(Customer.id, sa.func.coalesce(Customer.full_name, Customer.email, Customer.phone))
                            .where(Customer.id.in_({m.customer_id for m in rows}))).all()) if rows else {}

    def page_url(position: str | None) -> str:
        params = {k: v for k, v in f.items() if v is not None}
        if position:
            params["cursor"] = position
        return "/channels/messages" + ("?" + urlencode(params) if params else "")

    context = dict(f=f, rows=rows, names=names, next_cursor=next_cursor, page_url=page_url, error=error,
                   statuses=STATUSES, channels=CHANNELS, first_page=not after)
    return page(request, "channels/messages.html", "messages", **context)


@router.get("/channels/messages/{message_id}")
def message_page(request: Request, message_id: int, user=Depends(allowed), db: Session = Depends(get_session)):
    message = db.get(Message, message_id)
    if message is None:
        return not_found_page(request)
    customer = db.get(Customer, message.customer_id)
    return page(request, "channels/message.html", "messages", message=message, customer=customer,
                events=history(db, message_id))
