"""An opportunity's own page, inside the customer's record: value and products, the stage among the pipeline's
stages (move it, win it, lose it with a reason: the same rules as the board), expected close, priority, owner,
its calls, meetings, notes and tasks (add them, tick them done), the stage changes, and what it inherited from
its lead: the source and campaign, both scores with their reasons, and the customer's events and messages.

Every change is one transaction; a refusal is shown on the page naming the field, and nothing changes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from clm.customers.models import Customer
from clm.db.engine import for_writing
from clm.lib.errors import FieldError, NotFound
from clm.sales import opportunities as deals
from clm.sales.activities import ActivityIn, log_activity
from clm.sales.errors import SalesConflict
from clm.sales.models import ACTIVITY_KINDS, PRIORITIES, Lead, OpportunityStageChange, Task
from clm.sales.pages.common import blank, shared, staff, stage_label
from clm.sales.pages.history import activities_of, customer_history
from clm.sales.pipelines import get_pipeline, stages_of
from clm.sales.tasks import TaskIn, TaskUpdate, list_tasks, update_task
from clm.web import i18n
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, form_data, render
from clm.web.pages.errors import not_found_page

router = dashboard_router()
allowed = require("sales")


def deal_page(request: Request, db: Session, user, opportunity_id: int, error: str | None = None,
              status_code: int = 200):
    try:
        deal = deals.get_opportunity(db, opportunity_id)
    except NotFound:
        return not_found_page(request)
    locale = i18n.pick_locale(request, user)
    settings = request.app.state.settings
    stages = stages_of(db, deal.pipeline_id)
    by_id = {s.id: s for s in stages}
    changes = db.scalars(sa.select(OpportunityStageChange).where(OpportunityStageChange.opportunity_id == deal.id)
                         .order_by(OpportunityStageChange.changed_at.desc(), OpportunityStageChange.id.desc())
                         .limit(50)).all()
    lead = db.get(Lead, deal.lead_id) if deal.lead_id else None
    people = staff(db)
    return render(request, "sales/deal.html", status_code=status_code, deal=deal, lead=lead,
                  customer=db.get(Customer, deal.customer_id), pipeline=get_pipeline(db, deal.pipeline_id),
                  stages=stages, stage=by_id.get(deal.stage_id), stage_of=by_id, changes=changes,
                  label=lambda stage: stage_label(stage, locale) if stage else "—",
                  activities=activities_of(db, lead_id=deal.lead_id, opportunity_id=deal.id),
                  tasks=list_tasks(db, opportunity_id=deal.id, open_only=False, limit=50),
                  history=customer_history(db, deal.customer_id, locale, settings.timezone),
                  staff=people, people=dict(people), priorities=PRIORITIES, activity_kinds=ACTIVITY_KINDS,
                  error=error, **shared(request, db, user))


@router.get("/sales/opportunities/{opportunity_id}")
def opportunity_page(request: Request, opportunity_id: int, user=Depends(allowed), db: Session = Depends(get_session)):
    return deal_page(request, db, user, opportunity_id)


def refusal(exc: Exception) -> tuple[str, int]:
    """A refused change as the page shows it, naming the field, and its status code."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}", 422
    field = getattr(exc, "field", None)
    return (f"{field}: {exc.message}" if field else exc.message), 409 if isinstance(exc, SalesConflict) else 422


def _act(request: Request, db: Session, user, opportunity_id: int, work) -> Any:
    """Run a change on the deal: all or nothing, a refusal shown on the deal's page naming the field."""
    for_writing(db)
    try:
        work()
        db.commit()
    except NotFound:
        db.rollback()
        return not_found_page(request)
    except (FieldError, SalesConflict, ValidationError) as exc:
        db.rollback()
        message, status_code = refusal(exc)
        return deal_page(request, db, user, opportunity_id, error=message, status_code=status_code)
    return RedirectResponse(f"/sales/opportunities/{opportunity_id}", status_code=303)


def money(value: Any, field: str) -> int | None:
    """An amount typed in dong ("12.000.000", "12,000,000" or "12000000"); None when empty."""
    text = str(value or "").replace(".", "").replace(",", "").replace(" ", "")
    if text and not (text.isdigit() and len(text) < 19):
        raise FieldError(field, "give an amount in dong, digits only")
    return int(text) if text else None


@router.post("/sales/opportunities/{opportunity_id}")
def opportunity_update(request: Request, opportunity_id: int, data: dict = Depends(form_data), user=Depends(allowed),
                       db: Session = Depends(get_session)):
    """Title, value, expected close, priority and owner; a field left out of the form stays as it is."""
    def work() -> None:
        changes: dict[str, Any] = {}
        if "title" in data:
            changes["title"] = blank(data["title"])
        if "value" in data:
            changes["value"] = money(data["value"], "value")
        if "expected_close_date" in data:
            changes["expected_close_date"] = blank(data["expected_close_date"])
        if "priority" in data:
            changes["priority"] = blank(data["priority"])
        if "owner_id" in data:
            owner = str(data["owner_id"])
            if owner and not (owner.isdigit() and len(owner) < 19):
                raise FieldError("owner_id", "choose one of the staff")
            changes["owner_id"] = int(owner) if owner else None
        deals.update_opportunity(db, opportunity_id, deals.OpportunityUpdate(**changes))

    return _act(request, db, user, opportunity_id, work)


@router.post("/sales/opportunities/{opportunity_id}/products")
def opportunity_products(request: Request, opportunity_id: int, data: dict = Depends(form_data),
                         user=Depends(allowed), db: Session = Depends(get_session)):
    """Add a product line (`sku`, `name`, `quantity`, `price`) or remove one (`remove` = its position); the
    deal's value becomes the lines' total."""
    def work() -> None:
        deal = deals.get_opportunity(db, opportunity_id)
        lines = [dict(p) for p in deal.products or []]
        remove = str(data.get("remove") or "")
        if remove:
            if not remove.isdigit() or int(remove) >= len(lines):
                raise FieldError("remove", "no such product line")
            del lines[int(remove)]
        else:
            quantity = str(data.get("quantity") or "1").strip()
            if not quantity.isdigit() or len(quantity) > 7:
                raise FieldError("quantity", "a whole number of items, at least 1")
            lines.append({"sku": str(data.get("sku") or "").strip(), "name": blank(data.get("name")),
                          "quantity": int(quantity), "price": money(data.get("price"), "price") or 0})
        deals.update_opportunity(db, opportunity_id, deals.OpportunityUpdate(products=lines))

    return _act(request, db, user, opportunity_id, work)


@router.post("/sales/opportunities/{opportunity_id}/activities")
def opportunity_activity(request: Request, opportunity_id: int, data: dict = Depends(form_data),
                         user=Depends(allowed), db: Session = Depends(get_session)):
    def work() -> None:
        log_activity(db, ActivityIn(kind=str(data.get("kind", "")), subject=str(data.get("subject", "")).strip(),
                                    body=blank(data.get("body")), opportunity_id=opportunity_id), user_id=user.id)

    return _act(request, db, user, opportunity_id, work)


def task_from(request: Request, data: dict, **about: int) -> TaskIn:
    """A task from the add-a-task form: times typed in the business time zone."""
    from clm.channels.pages.common import parse_local

    timezone = request.app.state.settings.timezone
    times = {}
    for field in ("due_at", "remind_at"):
        try:
            times[field] = parse_local(str(data.get(field) or ""), timezone)
        except ValueError:
            raise FieldError(field, "give a date and time") from None
    if times["due_at"] is None:
        raise FieldError("due_at", "a task needs a due time")
    assignee = str(data.get("assignee_id") or "")
    return TaskIn(subject=str(data.get("subject") or "").strip(), notes=blank(data.get("notes")),
                  due_at=times["due_at"], remind_at=times["remind_at"],
                  assignee_id=int(assignee) if assignee.isdigit() and len(assignee) < 19 else None,
                  priority=blank(data.get("priority")) or "low", **about)


@router.post("/sales/opportunities/{opportunity_id}/tasks")
def opportunity_task(request: Request, opportunity_id: int, data: dict = Depends(form_data), user=Depends(allowed),
                     db: Session = Depends(get_session)):
    from clm.sales.tasks import create_task

    def work() -> None:
        create_task(db, task_from(request, data, opportunity_id=opportunity_id), created_by=user.id)

    return _act(request, db, user, opportunity_id, work)


@router.post("/sales/tasks/{task_id}/done")
def task_done(request: Request, task_id: int, data: dict = Depends(form_data), user=Depends(allowed),
              db: Session = Depends(get_session)):
    """Tick a task done (`done=0` reopens it), then back to the lead's or deal's page it belongs to."""
    for_writing(db)
    task = db.get(Task, task_id)
    if task is None:
        return not_found_page(request)
    update_task(db, task_id, TaskUpdate(done=str(data.get("done", "1")) != "0"))
    db.commit()
    back = (f"/sales/opportunities/{task.opportunity_id}" if task.opportunity_id else
            f"/sales/leads/{task.lead_id}" if task.lead_id else
            f"/customers/{task.customer_id}" if task.customer_id else "/sales/board")
    return RedirectResponse(back, status_code=303)
