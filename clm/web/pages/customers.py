"""Customers: the searchable list and the customer 360 (profile, identities, consents, stages, timeline)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from clm.commerce.models import Order, OrderItem
from clm.customers import consent, service
from clm.customers.models import Customer
from clm.lib.errors import FieldError, NotFound
from clm.web import i18n
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages import metrics
from clm.web.pages.base import dashboard_router, render
from clm.web.pages.errors import not_found_page

router = dashboard_router()
PAGE = 50
TIMELINE_PAGE = 30


def _cities(request: Request, db: Session) -> list[str]:
    """The 100 commonest cities for the filter (cached: it groups the whole table)."""
    def compute(session: Session) -> list[str]:
        rows = session.execute(sa.select(Customer.city).where(Customer.city.is_not(None), Customer.merged_into_id.is_(None))
                          .group_by(Customer.city).order_by(sa.func.count().desc()).limit(100))
        return sorted(r[0] for r in rows)
    return request.app.state.dashboard_cache.get_or_compute(("cities",), compute, db)


@router.get("/customers")
def customers(request: Request, q: str | None = None, stage: str | None = None, city: str | None = None,
              cursor: str | None = None, user=Depends(require("customers")), db: Session = Depends(get_session)):
    f = {"q": (q or "").strip()[:200] or None, "stage": stage or None, "city": city or None, "cursor": cursor or None}
    rows, next_cursor, error = [], None, None
    try:
        rows, next_cursor = service.list_customers(db, q=f["q"], stage=f["stage"], city=f["city"], after=f["cursor"],
                                                   limit=PAGE, region=request.app.state.settings.default_region)
    except FieldError as exc:
        error = i18n.translator(i18n.pick_locale(request, user))("customers.bad_cursor") if exc.field in (
            "cursor", "after") else str(exc)

    def page_url(position: str | None) -> str:
        params = {k: v for k, v in f.items() if v and k != "cursor"}
        if position:
            params["cursor"] = position
        return "/customers" + ("?" + urlencode(params) if params else "")

    return render(request, "customers.html", f=f, rows=rows, next_cursor=next_cursor, page_url=page_url, error=error,
                  filtered=any(f[k] for k in ("q", "stage", "city")), stages=metrics.STAGES,
                  cities=_cities(request, db))


def _order_items(db: Session, orders: list[Order]) -> dict[int, list[OrderItem]]:
    items: dict[int, list[OrderItem]] = {}
    if orders:
        for item in db.scalars(sa.select(OrderItem).where(OrderItem.order_id.in_([o.id for o in orders]))
                               .order_by(OrderItem.id)):
            items.setdefault(item.order_id, []).append(item)
    return items


def _entries(db: Session, raw: list[tuple[str, Any, Any]], fmt: i18n.Formatter, t) -> list[dict[str, Any]]:
    """Timeline rows as the template shows them: a title, details, and for orders the amount and status."""
    items = _order_items(db, [row for kind, _, row in raw if kind == "order"])
    out = []
    for kind, at, row in raw:
        if kind == "order":
            names = [f"{i.quantity} × {i.name or i.sku}" for i in items.get(row.id, [])]
            out.append({"kind": "order", "at": at, "title": t("timeline.order", id=row.external_id),
                        "amount": fmt.money(row.total, row.currency), "status": row.status,
                        "details": names[:6] + ([t("timeline.more_items", n=len(names) - 6)] if len(names) > 6 else [])})
            continue
        props = row.properties or {}
        if row.type == "track":
            title = row.name or t("timeline.event")
        elif row.type in ("page", "screen"):
            title = t(f"timeline.{row.type}", name=row.name or props.get("path") or props.get("url") or "")
        else:
            title = t(f"timeline.{row.type}") if row.type in ("identify", "alias", "group") else row.type
        if row.type == "identify" and isinstance(props.get("traits"), dict):
            props = props["traits"]
        details = [f"{k}: {_short(v)}" for k, v in list(props.items())[:4] if v not in (None, "", [], {})]
        out.append({"kind": "event", "at": at, "title": title, "amount": None, "status": None, "details": details})
    return out


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _stats(db: Session, customer_id: int, fmt: i18n.Formatter, currency: str) -> dict[str, Any]:
    rows = db.execute(sa.select(Order.currency, sa.func.count(), sa.func.sum(Order.total - Order.refunded),
                                sa.func.max(Order.placed_at))
                      .where(Order.customer_id == customer_id).group_by(Order.currency)).all()
    orders = sum(r[1] for r in rows)
    last = max((r[3] for r in rows), default=None)
    main = next((r for r in rows if r[0] == currency), max(rows, key=lambda r: r[1], default=None))
    revenue = " + ".join(fmt.money(int(r[2] or 0), r[0]) for r in rows) or "—"
    aov = fmt.money(int(main[2] or 0) // main[1], main[0]) if main and main[1] else "—"
    return {"orders": orders, "revenue_text": revenue, "aov_text": aov, "last_order_at": last}


def _stage_history(db: Session, customer_id: int) -> list:
    try:
        from clm.lifecycle.service import stage_history
    except ImportError:
        return []
    return list(stage_history(db, customer_id))


@router.get("/customers/{customer_id}")
def customer_360(request: Request, customer_id: int, user=Depends(require("customers")),
                 db: Session = Depends(get_session)):
    try:
        c = service.get_customer(db, customer_id)
    except service.Merged as exc:
        return RedirectResponse(f"/customers/{exc.winner_id}", status_code=303)
    except NotFound:
        return not_found_page(request)
    settings = request.app.state.settings
    locale = i18n.pick_locale(request, user)
    fmt, t = i18n.Formatter(locale, settings.timezone), i18n.translator(locale)
    raw, next_cursor = service.timeline(db, customer_id, limit=TIMELINE_PAGE)
    return render(
        request, "customer.html", c=c, display_name=c.full_name or c.email or fmt.phone(c.phone) or f"#{c.id}",
        identities=service.identities_of(db, customer_id), consents=consent.current_consents(db, customer_id),
        history=list(reversed(_stage_history(db, customer_id))),
        stats=_stats(db, customer_id, fmt, settings.default_currency),
        entries=_entries(db, raw, fmt, t), next_cursor=next_cursor, messages=_messages(db, customer_id),
        journey_runs=_journey_runs(db, customer_id), tickets=_open_tickets(db, customer_id),
        sales=_sales_of(db, customer_id), reason_text=_reason_text(locale),
    )


def _open_tickets(db: Session, customer_id: int) -> list:
    from clm.service.tickets import open_tickets_of

    return open_tickets_of(db, customer_id)


def _sales_of(db: Session, customer_id: int) -> dict:
    from clm.sales.profile import sales_of

    return sales_of(db, customer_id)


def _journey_runs(db: Session, customer_id: int) -> list:
    from clm.journeys.report import customer_runs

    return customer_runs(db, customer_id)


def _reason_text(locale: str):
    """Why a message was not sent, in the reader's language (reasons are stored in English)."""
    from clm.channels.reasons import in_language

    return lambda text: in_language(text, locale)


def _messages(db: Session, customer_id: int) -> list:
    from clm.channels.service import messages_of_customer

    return messages_of_customer(db, customer_id, limit=20)


@router.get("/customers/{customer_id}/timeline")
def timeline_page(request: Request, customer_id: int, cursor: str | None = None, user=Depends(require("customers")),
                  db: Session = Depends(get_session)):
    """The next slice of the timeline: list items for HTMX to append (a plain page without HTMX)."""
    try:
        raw, next_cursor = service.timeline(db, customer_id, after=cursor, limit=TIMELINE_PAGE)
        c = service.get_customer(db, customer_id)
    except (NotFound, service.Merged, FieldError):
        return not_found_page(request)
    locale = i18n.pick_locale(request, user)
    fmt, t = i18n.Formatter(locale, request.app.state.settings.timezone), i18n.translator(locale)
    return render(request, "partials/timeline_items.html", c=c, entries=_entries(db, raw, fmt, t),
                  next_cursor=next_cursor)
