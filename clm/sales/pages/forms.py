"""Lead forms (create, edit, copy the embed snippet) and assignment rules; permission `sales:manage`."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from clm.db.engine import for_writing
from clm.lib.errors import FieldError, NotFound
from clm.sales import assignment, lead_forms
from clm.sales.models import ASSIGNMENT_METHODS, SOURCES
from clm.sales.pages.common import shared, staff
from clm.web import i18n
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, form_data, render
from clm.web.pages.errors import not_found_page

router = dashboard_router()
allowed = require("sales:manage")


def _list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg'].removeprefix('Value error, ')}"
    field = getattr(exc, "field", None)
    return f"{field}: {exc.message}" if field else str(exc)  # type: ignore[attr-defined]


@router.get("/sales/forms")
def forms_page(request: Request, user=Depends(allowed), db: Session = Depends(get_session)):
    return render(request, "sales/forms.html", forms=lead_forms.list_forms(db), people=dict(staff(db)),
                  **shared(request, db, user))


def _editor(request: Request, db: Session, user, form=None, values: dict | None = None, error: str | None = None,
            status_code: int = 200):
    locale = i18n.pick_locale(request, user)
    if values is None:
        values = ({"key": form.key, "title": form.title, "fields": form.fields, "campaign": form.campaign or "",
                   "owner_id": form.owner_id, "thank_you": form.thank_you or "", "active": form.active}
                  if form else {"key": "", "title": "", "fields": lead_forms.DEFAULT_FIELDS, "campaign": "",
                                "owner_id": None, "thank_you": "", "active": True})
    snippet = lead_forms.embed_snippet(request.app.state.settings.public_url, form, locale) if form else None
    return render(request, "sales/form_edit.html", status_code=status_code, form=form, v=values, error=error,
                  snippet=snippet, all_fields=lead_forms.FIELDS, staff=staff(db), **shared(request, db, user))


def _read(data: dict) -> dict[str, Any]:
    owner = str(data.get("owner_id") or "")
    values = {"key": str(data.get("key", "")), "title": str(data.get("title", "")), "fields": _list(data.get("fields")),
              "campaign": str(data.get("campaign", "")), "owner_id": int(owner) if owner.isdigit() and len(owner) < 19
              else None, "thank_you": str(data.get("thank_you", "")), "active": data.get("active") == "on"}
    return values


def _save(request: Request, db: Session, user, data: dict, form=None):
    values = _read(data)
    for_writing(db)
    try:
        saved = lead_forms.save_form(db, lead_forms.FormIn(**values), form.id if form else None)
        db.commit()
    except (FieldError, ValidationError) as exc:
        db.rollback()
        return _editor(request, db, user, form, values, _problem(exc), status_code=422)
    return RedirectResponse(f"/sales/forms/{saved.id}", status_code=303)


@router.get("/sales/forms/new")
def form_new(request: Request, user=Depends(allowed), db: Session = Depends(get_session)):
    return _editor(request, db, user)


@router.post("/sales/forms/new")
def form_create(request: Request, data: dict = Depends(form_data), user=Depends(allowed),
                db: Session = Depends(get_session)):
    return _save(request, db, user, data)


@router.get("/sales/forms/{form_id}")
def form_edit(request: Request, form_id: int, user=Depends(allowed), db: Session = Depends(get_session)):
    try:
        return _editor(request, db, user, lead_forms.get_form(db, form_id))
    except NotFound:
        return not_found_page(request)


@router.post("/sales/forms/{form_id}")
def form_update(request: Request, form_id: int, data: dict = Depends(form_data), user=Depends(allowed),
                db: Session = Depends(get_session)):
    try:
        form = lead_forms.get_form(db, form_id)
    except NotFound:
        return not_found_page(request)
    return _save(request, db, user, data, form)


def _rules(request: Request, db: Session, user, values: dict | None = None, error: str | None = None,
           status_code: int = 200):
    return render(request, "sales/rules.html", status_code=status_code, rules=assignment.list_rules(db),
                  staff=staff(db), people=dict(staff(db)), sources=SOURCES, methods=ASSIGNMENT_METHODS,
                  v=values or {"name": "", "method": "round_robin", "sources": [], "provinces": "", "product_lines": "",
                               "user_ids": [], "position": "0"}, error=error, **shared(request, db, user))


@router.get("/sales/assignment")
def rules_page(request: Request, user=Depends(allowed), db: Session = Depends(get_session)):
    return _rules(request, db, user)


@router.post("/sales/assignment/new")
def rule_create(request: Request, data: dict = Depends(form_data), user=Depends(allowed),
                db: Session = Depends(get_session)):
    values = {"name": str(data.get("name", "")), "method": str(data.get("method", "round_robin")),
              "sources": _list(data.get("sources")), "provinces": str(data.get("provinces", "")),
              "product_lines": str(data.get("product_lines", "")),
              "user_ids": [int(u) for u in _list(data.get("user_ids")) if u.isdigit() and len(u) < 19],
              "position": str(data.get("position") or "0")}
    for_writing(db)
    try:
        assignment.save_rule(db, assignment.RuleIn(
            name=values["name"], method=values["method"], sources=values["sources"],
            provinces=[p for p in values["provinces"].split(",") if p.strip()],
            product_lines=[p for p in values["product_lines"].split(",") if p.strip()],
            user_ids=values["user_ids"], position=values["position"] if values["position"].isdigit() else -1))
        db.commit()
    except (FieldError, ValidationError) as exc:
        db.rollback()
        return _rules(request, db, user, values, _problem(exc), status_code=422)
    return RedirectResponse("/sales/assignment", status_code=303)


@router.post("/sales/assignment/{rule_id}/delete")
def rule_delete(request: Request, rule_id: int, user=Depends(allowed), db: Session = Depends(get_session)):
    for_writing(db)
    try:
        assignment.delete_rule(db, rule_id)
        db.commit()
    except NotFound:
        db.rollback()
        return not_found_page(request)
    return RedirectResponse("/sales/assignment", status_code=303)
