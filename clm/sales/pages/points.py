"""Rule points from the dashboard (permission `sales:manage`): the business's hand-set lead scoring
(clm.sales.points) listed with how it compares with the learned score, and added, changed or removed.

A rule's condition is edited with the segment builder's rule-tree editor (`segments/_rules.html`,
clm.segments.builder): the whole form is posted on every structural change and drawn again with the
customers it matches now and the rule in one line. Saving goes through the same service as the API, so a
refusal names the field (`points`, `half_life_days`, `rule.…`)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from clm.db.engine import for_writing
from clm.lib.errors import FieldError, NotFound
from clm.sales import points
from clm.sales.pages.common import shared
from clm.segments import builder
from clm.web import i18n
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, form_data, render
from clm.web.pages.errors import not_found_page

router = dashboard_router()
allowed = require("sales:manage")


def _texts(db: Session, rules: list, locale: str) -> dict[int, str]:
    """Each rule's condition in one line of the reader's language."""
    import sqlalchemy as sa

    from clm.segments.models import Segment
    from clm.segments.render import render as render_rules
    from clm.segments.rules import parse_rules

    names = dict(db.execute(sa.select(Segment.id, Segment.name)).all())
    out = {}
    for rule in rules:
        try:
            out[rule.id] = render_rules(parse_rules(rule.rule), locale, names)
        except (FieldError, ValueError):
            out[rule.id] = "—"
    return out


@router.get("/sales/points")
def points_page(request: Request, user=Depends(allowed), db: Session = Depends(get_session)):
    rules = points.list_point_rules(db)
    return render(request, "sales/points.html", rules=rules, texts=_texts(db, rules, i18n.pick_locale(request, user)),
                  comparison=points.compare(db), **shared(request, db, user))


def _values(data: dict | None = None, rule=None) -> dict[str, Any]:
    """What the form shows: as posted, else the saved rule's, else a new rule's."""
    if data is not None:
        return {"name": str(data.get("name", "")), "points": str(data.get("points", "")).strip(),
                "half_life_days": str(data.get("half_life_days", "")).strip(), "active": bool(data.get("active"))}
    if rule is not None:
        return {"name": rule.name, "points": str(rule.points), "active": rule.active,
                "half_life_days": str(rule.half_life_days) if rule.half_life_days else ""}
    return {"name": "", "points": "10", "half_life_days": "", "active": True}


def _editor(request: Request, db: Session, user, tree: dict, values: dict, rule=None, partial: bool = False,
            error: str | None = None, error_path: str | None = None, status_code: int = 200):
    from clm.segments.pages import _preview, _segment_choices, _vocabulary

    locale = i18n.pick_locale(request, user)
    segments = _segment_choices(db, None)
    for node in builder.walk(tree):
        if node["type"] == "segment" and not node["segment_id"] and segments:
            node["segment_id"] = str(segments[0][0])
    builder.annotate(tree)
    preview = _preview(request, db, tree, locale)
    if error:
        preview.update(error=error, error_path=error_path)
    return render(request, "sales/_points_editor.html" if partial else "sales/point_edit.html",
                  status_code=status_code, tree=tree, v=_vocabulary(locale), segments=segments, preview=preview,
                  values=values, rule=rule, rules_post="/sales/points/builder", rules_count=None,
                  **shared(request, db, user))


def _rule_of(db: Session, rule_id: int):
    try:
        return points.get_point_rule(db, rule_id)
    except NotFound:
        return None


def _new_tree() -> dict[str, Any]:
    return {"kind": "group", "mode": "all", "children": [builder.blank("event")]}


@router.get("/sales/points/new")
def point_new(request: Request, user=Depends(allowed), db: Session = Depends(get_session)):
    return _editor(request, db, user, _new_tree(), _values())


@router.get("/sales/points/{rule_id}")
def point_edit(request: Request, rule_id: int, user=Depends(allowed), db: Session = Depends(get_session)):
    rule = _rule_of(db, rule_id)
    if rule is None:
        return not_found_page(request)
    return _editor(request, db, user, builder.from_rules(rule.rule), _values(rule=rule), rule=rule)


@router.post("/sales/points/builder")
def point_builder(request: Request, data: dict = Depends(form_data), user=Depends(allowed),
                  db: Session = Depends(get_session)):
    """The editor drawn again after a change (a condition added or removed, a type or field picked)."""
    tree = builder.act(builder.from_form(data), str(data.get("action", "")))
    rule_id = str(data.get("rule_id") or "")
    rule = _rule_of(db, int(rule_id)) if rule_id.isdigit() and len(rule_id) < 19 else None
    return _editor(request, db, user, tree, _values(data), rule=rule, partial=True)


def _number(text: str, field: str) -> int | None:
    if not text:
        return None
    try:
        return int(text.replace("+", ""))
    except ValueError:
        raise FieldError(field, "a whole number") from None


def _save(request: Request, db: Session, user, data: dict, rule=None):
    tree = builder.from_form(data)
    values = _values(data)
    for_writing(db)
    try:
        number = _number(values["points"], "points")
        if number is None:
            raise FieldError("points", "give the points a lead gets when the condition holds")
        saved = points.save_point_rule(db, points.PointRuleIn(
            name=values["name"].strip(), rule=builder.to_rules(tree), points=number,
            half_life_days=_number(values["half_life_days"], "half_life_days"), active=values["active"]),
            rule.id if rule else None)
        db.commit()
    except (FieldError, ValidationError) as exc:
        db.rollback()
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            message = f"{field}: {first['msg']}"
        else:
            field = exc.field
            message = f"{exc.field}: {exc.message}" if exc.field else exc.message
        path = "rules" + field[len("rule"):] if field and (field == "rule" or field.startswith("rule.")) else field
        return _editor(request, db, user, tree, values, rule=rule, error=message, error_path=path, status_code=422)
    return RedirectResponse(f"/sales/points?saved={saved.id}", status_code=303)


@router.post("/sales/points/new")
def point_create(request: Request, data: dict = Depends(form_data), user=Depends(allowed),
                 db: Session = Depends(get_session)):
    return _save(request, db, user, data)


@router.post("/sales/points/{rule_id}")
def point_update(request: Request, rule_id: int, data: dict = Depends(form_data), user=Depends(allowed),
                 db: Session = Depends(get_session)):
    rule = _rule_of(db, rule_id)
    if rule is None:
        return not_found_page(request)
    return _save(request, db, user, data, rule)


@router.post("/sales/points/{rule_id}/delete")
def point_delete(request: Request, rule_id: int, user=Depends(allowed), db: Session = Depends(get_session)):
    for_writing(db)
    try:
        points.delete_point_rule(db, rule_id)
        db.commit()
    except NotFound:
        db.rollback()
        return not_found_page(request)
    return RedirectResponse("/sales/points", status_code=303)
