"""Leads: the list (filters, search ignoring diacritics, best score first or newest; the ticked leads' owner,
status or priority changed in one go) and a lead's page
(contact, score and its reasons, who got it and why, the first-contact SLA, activities, tasks; change its
status, owner, priority or classification, log a call, convert it to a deal)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from clm.customers.models import Customer
from clm.db.engine import for_writing
from clm.lib.errors import FieldError, NotFound
from clm.sales import leads as service
from clm.sales.activities import ActivityIn, list_activities, log_activity
from clm.sales.bulk import bulk_update
from clm.sales.errors import SalesConflict
from clm.sales.models import ACTIVITY_KINDS, CLASSIFICATIONS, LEAD_STATUSES, PRIORITIES, SOURCES, Opportunity
from clm.sales.opportunities import DealIn, convert_lead
from clm.sales.pages.common import blank, shared, staff
from clm.sales.pages.deal import task_from
from clm.sales.pages.history import customer_history
from clm.sales.tasks import list_tasks
from clm.web import i18n
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, form_data, render
from clm.web.pages.errors import not_found_page

router = dashboard_router()
allowed = require("sales")
PAGE = 50
FILTERS = ("q", "status", "source", "priority", "classification", "owner", "order", "cursor")


def _choice(value: str | None, choices: tuple[str, ...]) -> str | None:
    return value if value in choices else None


@router.get("/sales/leads")
def leads_page(request: Request, q: str | None = None, status: str | None = None, source: str | None = None,
               priority: str | None = None, classification: str | None = None, owner: str | None = None,
               order: str | None = None, cursor: str | None = None, updated: str | None = None,
               user=Depends(allowed), db: Session = Depends(get_session)):
    given = {"q": q, "status": status, "source": source, "priority": priority, "classification": classification,
             "owner": owner, "order": order, "cursor": cursor}
    done = int(updated) if updated and updated.isdigit() and len(updated) < 6 else None
    return _list_page(request, db, user, given, updated=done)


def _list_page(request: Request, db: Session, user, given: dict[str, Any], *, updated: int | None = None,
               bulk_error: str | None = None, status_code: int = 200):
    t = i18n.translator(i18n.pick_locale(request, user))
    q, owner = given.get("q"), given.get("owner")
    owner_id = int(owner) if owner and str(owner).isdigit() and len(str(owner)) < 19 else None
    f = {"q": (q or "").strip()[:200] or None, "status": _choice(given.get("status"), LEAD_STATUSES + ("open",)),
         "source": _choice(given.get("source"), SOURCES), "priority": _choice(given.get("priority"), PRIORITIES),
         "classification": _choice(given.get("classification"), CLASSIFICATIONS), "owner": owner_id,
         "order": "score" if given.get("order") == "score" else "newest", "cursor": given.get("cursor") or None}
    rows, next_cursor, error = [], None, None
    try:
        rows, next_cursor = service.list_leads(
            db, q=f["q"], status=None if f["status"] == "open" else f["status"], open_only=f["status"] == "open",
            source=f["source"], priority=f["priority"], classification=f["classification"], owner_id=owner_id,
            order=f["order"], after=f["cursor"], limit=PAGE)
    except FieldError:
        error = t("sales.leads.bad_cursor")
    customers = {c.id: c for c in db.scalars(sa.select(Customer).where(
        Customer.id.in_({lead.customer_id for lead in rows})))} if rows else {}
    converted = [lead.id for lead in rows if lead.status == "converted"]
    deals = {lead_id: (i, code) for i, code, lead_id in db.execute(sa.select(
        Opportunity.id, Opportunity.code, Opportunity.lead_id).where(Opportunity.lead_id.in_(converted)))} \
        if converted else {}

    def page_url(position: str | None) -> str:
        params = {k: v for k, v in f.items() if v and k != "cursor"}
        if position:
            params["cursor"] = position
        return "/sales/leads" + ("?" + urlencode(params) if params else "")

    return render(request, "sales/leads.html", status_code=status_code, f=f, rows=rows, customers=customers,
                  next_cursor=next_cursor, page_url=page_url, error=error, staff=staff(db), people=dict(staff(db)), deals=deals,
                  statuses=LEAD_STATUSES, sources=SOURCES, priorities=PRIORITIES, classifications=CLASSIFICATIONS,
                  filtered=any(f[k] for k in ("q", "status", "source", "priority", "classification", "owner")),
                  updated=updated, bulk_error=bulk_error, here=page_url(f["cursor"]), **shared(request, db, user))


@router.post("/sales/leads/bulk")
def leads_bulk(request: Request, data: dict = Depends(form_data), user=Depends(allowed),
               db: Session = Depends(get_session)):
    """Change the owner, status or priority of the ticked leads in one transaction: all of them or none, a
    refusal shown on the list naming the lead and the field."""
    back = str(data.get("next") or "")
    back = back if back.startswith("/sales/leads") and "//" not in back and "\\" not in back else "/sales/leads"
    ids = data.get("lead_ids") or []
    ids = ids if isinstance(ids, list) else [ids]
    action = str(data.get("action") or "")
    for_writing(db)
    try:
        if any(not str(i).isdigit() or len(str(i)) > 18 for i in ids):
            raise FieldError("lead_ids", "not a lead id")
        if action == "owner":
            owner = str(data.get("owner_id") or "")
            changes = service.LeadUpdate(owner_id=int(owner) if owner.isdigit() else None)
        elif action == "status":
            changes = service.LeadUpdate(status=blank(data.get("status")),
                                         unqualified_reason=blank(data.get("unqualified_reason")))
        elif action == "priority":
            changes = service.LeadUpdate(priority=blank(data.get("priority")))
        else:
            raise FieldError("action", "choose what to change: owner, status or priority")
        changed = bulk_update(db, [int(i) for i in ids], changes)
        db.commit()
    except (FieldError, SalesConflict) as exc:
        db.rollback()
        return _bulk_refused(request, db, user, back, f"{exc.field}: {exc.message}" if exc.field else exc.message,
                             409 if isinstance(exc, SalesConflict) else 422)
    except ValidationError as exc:
        db.rollback()
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        return _bulk_refused(request, db, user, back, f"{field}: {first['msg']}", 422)
    joiner = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{joiner}updated={len(changed)}", status_code=303)


def _bulk_refused(request: Request, db: Session, user, back: str, message: str, status_code: int):
    from urllib.parse import parse_qsl, urlsplit

    given = {k: v for k, v in parse_qsl(urlsplit(back).query) if k in FILTERS}
    return _list_page(request, db, user, given, bulk_error=message, status_code=status_code)


def _lead_page(request: Request, db: Session, user, lead_id: int, error: str | None = None,
               status_code: int = 200):
    try:
        lead = service.get_lead(db, lead_id)
    except NotFound:
        return not_found_page(request)
    customer = db.get(Customer, lead.customer_id)
    opportunity = db.scalar(sa.select(Opportunity).where(Opportunity.lead_id == lead.id))
    people = staff(db)
    locale = i18n.pick_locale(request, user)
    return render(request, "sales/lead.html", status_code=status_code, lead=lead, customer=customer,
                  opportunity=opportunity, activities=list_activities(db, lead_id=lead.id, limit=50),
                  history=customer_history(db, lead.customer_id, locale, request.app.state.settings.timezone),
                  tasks=list_tasks(db, lead_id=lead.id, open_only=False, limit=50), staff=people, people=dict(people),
                  statuses=[s for s in LEAD_STATUSES if s != "converted"], priorities=PRIORITIES,
                  classifications=CLASSIFICATIONS, activity_kinds=ACTIVITY_KINDS, error=error,
                  currency=request.app.state.settings.default_currency, **shared(request, db, user))


@router.get("/sales/leads/{lead_id}")
def lead_page(request: Request, lead_id: int, user=Depends(allowed), db: Session = Depends(get_session)):
    return _lead_page(request, db, user, lead_id)


def _act(request: Request, db: Session, user, lead_id: int, work) -> Any:
    """Run a change on the lead; all or nothing, the refusal shown on the lead's page naming the field."""
    for_writing(db)
    try:
        work()
        db.commit()
    except NotFound:
        db.rollback()
        return not_found_page(request)
    except (FieldError, SalesConflict) as exc:
        db.rollback()
        field = getattr(exc, "field", None)
        return _lead_page(request, db, user, lead_id, error=f"{field}: {exc.message}" if field else exc.message,
                          status_code=409 if isinstance(exc, SalesConflict) else 422)
    except ValidationError as exc:
        db.rollback()
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        return _lead_page(request, db, user, lead_id, error=f"{field}: {first['msg']}", status_code=422)
    return RedirectResponse(f"/sales/leads/{lead_id}", status_code=303)


@router.post("/sales/leads/{lead_id}")
def lead_update(request: Request, lead_id: int, data: dict = Depends(form_data), user=Depends(allowed),
                db: Session = Depends(get_session)):
    def work() -> None:
        changes: dict[str, Any] = {}
        if blank(data.get("status")):
            changes["status"] = data["status"]
            changes["unqualified_reason"] = blank(data.get("unqualified_reason"))
        if "owner_id" in data:
            changes["owner_id"] = int(data["owner_id"]) if str(data["owner_id"]).isdigit() else None
        if blank(data.get("priority")):
            changes["priority"] = data["priority"]
        if "classification" in data:
            changes["classification"] = blank(data.get("classification"))
        service.update_lead(db, lead_id, service.LeadUpdate(**changes))

    return _act(request, db, user, lead_id, work)


@router.post("/sales/leads/{lead_id}/activities")
def lead_activity(request: Request, lead_id: int, data: dict = Depends(form_data), user=Depends(allowed),
                  db: Session = Depends(get_session)):
    def work() -> None:
        log_activity(db, ActivityIn(kind=str(data.get("kind", "")), subject=str(data.get("subject", "")).strip(),
                                    body=blank(data.get("body")), lead_id=lead_id), user_id=user.id)

    return _act(request, db, user, lead_id, work)


@router.post("/sales/leads/{lead_id}/tasks")
def lead_task(request: Request, lead_id: int, data: dict = Depends(form_data), user=Depends(allowed),
              db: Session = Depends(get_session)):
    from clm.sales.tasks import create_task

    def work() -> None:
        create_task(db, task_from(request, data, lead_id=lead_id), created_by=user.id)

    return _act(request, db, user, lead_id, work)


@router.post("/sales/leads/{lead_id}/convert")
def lead_convert(request: Request, lead_id: int, data: dict = Depends(form_data), user=Depends(allowed),
                 db: Session = Depends(get_session)):
    def work() -> None:
        value = str(data.get("value") or "").replace(".", "").replace(",", "").replace(" ", "")
        if value and not value.isdigit():
            raise FieldError("value", "give the deal's value in dong, digits only")
        convert_lead(db, lead_id, DealIn(title=blank(data.get("title")), value=int(value) if value else None,
                                         expected_close_date=blank(data.get("expected_close_date"))),
                     user_id=user.id)

    return _act(request, db, user, lead_id, work)
