"""Dashboard pages of the segments: the list, the builder (HTMX, live count) and a segment's page.

Roles: `segments:read` (admin, manager, marketer, sales) sees the list and the segment pages;
`segments:write` (admin, manager, marketer) builds and saves. The builder posts the whole form on every
change; the server turns it into a rule tree (clm.segments.builder), counts it and renders it in one line.
Saving goes through the same service as the API, so the same validation (errors name the path in the tree).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from clm.analytics.models import CustomerScore
from clm.customers.models import Customer
from clm.lib.errors import FieldError, NotFound
from clm.lifecycle.models import CustomerStats
from clm.segments import builder, service, sizes
from clm.segments.models import SegmentMember
from clm.segments.render import FIELD_NAMES, WORDS
from clm.segments.render import render as render_rules
from clm.web import i18n
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, form_data, render
from clm.web.pages.errors import not_found_page
from clm.web.pages.metrics import STAGES

router = dashboard_router()
read = require("segments:read")
write = require("segments:write")
MEMBERS = 50
CHANNELS = ("zalo", "facebook", "email", "sms", "phone")
PURPOSES = ("marketing", "transactional")


def _locale(request: Request, user) -> str:
    return i18n.pick_locale(request, user)


def _text(segment, locale: str, db: Session) -> str:
    if segment.kind != "dynamic" or not segment.rules:
        return ""
    from clm.segments.rules import parse_rules

    names = dict(db.execute(sa.select(service.Segment.id, service.Segment.name)).all())
    return render_rules(parse_rules(segment.rules), locale, names)


def _vocabulary(locale: str) -> dict[str, Any]:
    words, fields = WORDS[locale], FIELD_NAMES[locale]

    def op(key: str) -> str:
        return words.get(key, key).replace("{n}", "N").strip()

    def field(kind: str, key: str) -> str:
        if kind == "loyalty":
            return words.get(f"loyalty_{key}", key).replace("{d}", "N")
        return words.get(f"order_{key}", key) if kind == "orders" else fields.get(key, key)

    def choices(options: tuple[str, ...], *current: str) -> list[str]:
        """The usual options, plus a value a saved tree holds that is not among them (kept, not lost)."""
        return list(dict.fromkeys([*options, *(c for c in current if c)]))

    return {"types": builder.TYPES, "modes": builder.MODES, "fields_of": builder.fields_of, "ops_of": builder.ops_of,
            "op_name": op, "field_name": field, "stages": STAGES, "channels": CHANNELS, "purposes": PURPOSES,
            "no_value": builder.NO_VALUE, "json_types": builder.JSON_TYPES, "windows": builder.WINDOWS,
            "targets": builder.TARGETS, "traits": builder.TRAITS, "choices": choices}


def _segment_choices(db: Session, editing: int | None) -> list[tuple[int, str]]:
    """The segments a condition may refer to (not the one being edited: that would be a cycle)."""
    rows = db.execute(sa.select(service.Segment.id, service.Segment.name).order_by(service.Segment.name)).all()
    return [(i, name) for i, name in rows if i != editing]


def _preview(request: Request, db: Session, tree: dict, locale: str, editing: int | None = None) -> dict[str, Any]:
    """The count and the one-line text of the tree now, or the validation error (with its path)."""
    settings = request.app.state.settings
    try:
        rules = builder.to_rules(tree)
        count = service.count_preview(db, rules, now=request.app.state.dashboard_clock(), timezone=settings.timezone)
        node = service.check_tree(db, rules, editing)
        names = dict(db.execute(sa.select(service.Segment.id, service.Segment.name)).all())
        return {"count": count, "text": render_rules(node, locale, names), "error": None, "error_path": None}
    except FieldError as exc:
        return {"count": None, "text": None, "error": f"{exc.field}: {exc.message}" if exc.field else exc.message,
                "error_path": exc.field}


def _builder(request: Request, db: Session, user, tree: dict, segment=None, name: str = "", description: str = "",
             partial: bool = False, status_code: int = 200, save_error: str | None = None):
    locale = _locale(request, user)
    editing = segment.id if segment else None
    segments = _segment_choices(db, editing)
    for node in builder.walk(tree):
        if node["type"] == "segment" and not node["segment_id"] and segments:
            node["segment_id"] = str(segments[0][0])  # what the select shows first is what is counted
    builder.annotate(tree)
    preview = _preview(request, db, tree, locale, editing)
    if save_error:
        preview["error"] = save_error
    return render(request, "segments/_builder.html" if partial else "segments/builder.html", status_code=status_code,
                  tree=tree, segment=segment, seg_name=name, description=description, preview=preview,
                  v=_vocabulary(locale), segments=segments)


@router.get("/segments")
def list_page(request: Request, user=Depends(read), db: Session = Depends(get_session)):
    locale = _locale(request, user)
    rows = [(s, _text(s, locale, db)) for s in service.list_segments(db)]
    return render(request, "segments/list.html", rows=rows)


@router.get("/segments/new")
def new_page(request: Request, user=Depends(write), db: Session = Depends(get_session)):
    return _builder(request, db, user, builder.empty())


def _dynamic(request: Request, db: Session, segment_id: int):
    """The dynamic segment to edit; else the answer: 404 for none, its page for a static one (no rules)."""
    try:
        segment = service.get_segment(db, segment_id)
    except NotFound:
        return not_found_page(request)
    if segment.kind != "dynamic":
        return RedirectResponse(f"/segments/{segment_id}", status_code=303)
    return segment


@router.get("/segments/{segment_id}/edit")
def edit_page(request: Request, segment_id: int, user=Depends(write), db: Session = Depends(get_session)):
    segment = _dynamic(request, db, segment_id)
    if isinstance(segment, Response):
        return segment
    return _builder(request, db, user, builder.from_rules(segment.rules), segment=segment, name=segment.name,
                    description=segment.description)


@router.post("/segments/builder")
def builder_fragment(request: Request, form: dict = Depends(form_data), user=Depends(write),
                     db: Session = Depends(get_session)):
    """The builder re-rendered after a change (a field picked, a condition added or removed)."""
    tree = builder.act(builder.from_form(form), str(form.get("action", "")))
    return _builder(request, db, user, tree, segment=_editing(db, form), name=str(form.get("name", "")),
                    description=str(form.get("description", "")), partial=True)


def _editing(db: Session, form: dict):
    """The saved segment the builder edits (its id travels in the form), or None for a new one."""
    value = str(form.get("segment_id", ""))
    if not value.isdigit():
        return None
    segment = db.get(service.Segment, int(value))
    return segment if segment is not None and segment.kind == "dynamic" else None


@router.post("/segments/builder/count")
def count_fragment(request: Request, form: dict = Depends(form_data), user=Depends(write),
                   db: Session = Depends(get_session)):
    """Only the live count and the one-line text (while a value is being typed: the inputs keep focus)."""
    tree = builder.annotate(builder.from_form(form))
    segment = _editing(db, form)
    return render(request, "segments/_preview.html",
                  preview=_preview(request, db, tree, _locale(request, user), segment.id if segment else None))


def _save(request: Request, form: dict, user, db: Session, segment=None):
    tree = builder.from_form(form)
    name, description = str(form.get("name", "")), str(form.get("description", ""))
    try:
        saved = service.save_segment(db, name=name, rules=builder.to_rules(tree), description=description,
                                     segment_id=segment.id if segment else None,
                                     now=request.app.state.dashboard_clock(),
                                     timezone=request.app.state.settings.timezone)
        db.commit()
    except FieldError as exc:
        db.rollback()
        return _builder(request, db, user, tree, segment=segment, name=name, description=description,
                        status_code=422, save_error=f"{exc.field}: {exc.message}" if exc.field else exc.message)
    return RedirectResponse(f"/segments/{saved.id}", status_code=303)


@router.post("/segments/new")
def create(request: Request, form: dict = Depends(form_data), user=Depends(write), db: Session = Depends(get_session)):
    return _save(request, form, user, db)


@router.post("/segments/{segment_id}/edit")
def update(request: Request, segment_id: int, form: dict = Depends(form_data), user=Depends(write),
           db: Session = Depends(get_session)):
    segment = _dynamic(request, db, segment_id)
    if isinstance(segment, Response):
        return segment
    return _save(request, form, user, db, segment)


@router.get("/segments/{segment_id}/members")
def members_fragment(request: Request, segment_id: int, after: int | None = None, user=Depends(read),
                     db: Session = Depends(get_session)):
    """The next page of members as table rows for HTMX to put in place of the "next" row."""
    try:
        rows, after_next = _members(db, segment_id, after)
    except NotFound:
        return not_found_page(request)
    return render(request, "segments/_members.html", segment_id=segment_id, members=rows, after_next=after_next,
                  page_size=MEMBERS)


def _members(db: Session, segment_id: int, after: int | None) -> tuple[list, int | None]:
    return service.next_after(service.members_page(db, segment_id, after if after and after > 0 else None,
                                                   MEMBERS + 1), MEMBERS)


@router.get("/segments/{segment_id}")
def segment_page(request: Request, segment_id: int, after: int | None = None, user=Depends(read),
                 db: Session = Depends(get_session)):
    try:
        segment = service.get_segment(db, segment_id)
    except NotFound:
        return not_found_page(request)
    locale = _locale(request, user)
    fmt = i18n.Formatter(locale, request.app.state.settings.timezone)
    now = request.app.state.dashboard_clock()
    today = sizes.local_day(now, request.app.state.settings.timezone)
    days = [today - timedelta(days=k) for k in range(sizes.HISTORY_DAYS - 1, -1, -1)]
    size_by_day = sizes.size_over_time(db, segment, days)
    members, after_next = _members(db, segment_id, after)
    return render(request, "segments/segment.html", segment=segment, text=_text(segment, locale, db),
                  figures=figures(db, segment_id), members=members, after_next=after_next, after=after,
                  segment_id=segment_id, page_size=MEMBERS,
                  currency=request.app.state.settings.default_currency,
                  chart_data={"size": {"labels": [fmt.date(d) for d in days], "values": size_by_day}})


def figures(db: Session, segment_id: int) -> dict[str, Any]:
    """Members' revenue, average predicted CLV (when scored) and stage mix, in three aggregate queries."""
    m, c = SegmentMember.__table__, Customer.__table__
    current = sa.and_(m.c.segment_id == segment_id, m.c.exited_at.is_(None))
    s, sc = CustomerStats.__table__, CustomerScore.__table__
    revenue = db.scalar(sa.select(sa.func.coalesce(sa.func.sum(s.c.revenue), 0))
                        .select_from(m.join(s, s.c.customer_id == m.c.customer_id)).where(current))
    clv, scored = db.execute(sa.select(sa.func.avg(sc.c.predicted_clv_12m), sa.func.count(sc.c.predicted_clv_12m))
                             .select_from(m.join(sc, sc.c.customer_id == m.c.customer_id)).where(current)).one()
    stages = db.execute(sa.select(c.c.lifecycle_stage, sa.func.count()).select_from(m.join(c, c.c.id == m.c.customer_id))
                        .where(current).group_by(c.c.lifecycle_stage).order_by(sa.func.count().desc())).all()
    total = sum(n for _, n in stages) or 1
    return {"revenue": int(revenue or 0), "clv": int(round(clv)) if scored else None, "scored": scored,
            "stages": [(stage, n, n / total) for stage, n in stages]}
