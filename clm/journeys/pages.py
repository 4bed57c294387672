"""Dashboard pages of the journeys: the list, a journey's page (its graph with the counts on every node,
revenue in the goal window, the A/B splits against control), the builder, and the state buttons.

Permission `journeys` (admin, manager, marketer). The builder posts the whole form on every structural
change (clm.journeys.builder turns it into a draft, applies the edit and lays the graph out); "Validate"
runs the engine's checks (clm.journeys.validate) and marks each problem on its node; saving goes
through the same service as the API (a new version once the journey went live).
"""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from clm.db.engine import for_writing
from clm.journeys import models as m
from clm.journeys import report, service
from clm.journeys.builder import convert, edits, layout, posted
from clm.journeys.builder import draft as drafts
from clm.journeys.validate import Problem, check
from clm.lib.errors import FieldError, NotFound
from clm.web import i18n
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, form_data, render
from clm.web.pages.errors import not_found_page

router = dashboard_router()
allowed = require("journeys")
TRANSITIONS = ("activate", "pause", "resume", "archive")
WEEKDAYS = tuple(range(7))
NODE_PATH = re.compile(r"^definition\.nodes\[(\d+)\]")


def _vocabulary(db: Session, locale: str) -> dict[str, Any]:
    """What the builder's selects offer: templates per channel, segments, stages, staff, loyalty rewards."""
    from clm.access.models import User
    from clm.channels.templates import list_templates
    from clm.lifecycle.rules import current_rules
    from clm.loyalty.models import Reward
    from clm.segments.models import Segment

    templates: dict[str, list[tuple[str, str]]] = {}
    for tpl in list_templates(db):
        templates.setdefault(tpl.channel, []).append((tpl.key, tpl.name or tpl.key))
    segments = db.execute(sa.select(Segment.id, Segment.name, Segment.kind).order_by(Segment.name)).all()
    users = db.execute(sa.select(User.id, User.name, User.email).where(User.active.is_(True)).order_by(User.name)).all()
    rewards = db.execute(sa.select(Reward.id, Reward.name, Reward.active).order_by(Reward.name)).all()
    return {"trigger_types": drafts.TRIGGER_TYPES, "addable": drafts.ADDABLE, "reentry": drafts.REENTRY,
            "value_types": drafts.VALUE_TYPES, "date_fields": drafts.DATE_FIELDS, "channels": drafts.SEND_CHANNELS,
            "purposes": ("marketing", "transactional"), "templates": templates, "weekdays": WEEKDAYS,
            "segments": [(str(i), name) for i, name, _ in segments],
            "static_segments": [(str(i), name) for i, name, kind in segments if kind == "static"],
            "stages": [s.key for s in current_rules().stages],
            "users": [(str(i), name or email) for i, name, email in users],
            "rewards": [(str(i), name if active else f"{name} ({i18n.translator(locale)('journeys.gift_only')})")
                        for i, name, active in rewards]}


def _rules_context(db: Session, locale: str) -> dict[str, Any]:
    """The segment rule editor's own context (its macros read `v` and `segments`)."""
    from clm.segments import pages as segment_pages
    from clm.segments.models import Segment

    return {"v": segment_pages._vocabulary(locale),
            "segments": [tuple(r) for r in db.execute(sa.select(Segment.id, Segment.name).order_by(Segment.name))]}


def _problems(db: Session, draft: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    data, problems = convert.to_definition(draft)
    if not problems:
        _, problems = check(db, data)
    return data, problems


def _builder(request: Request, db: Session, user, draft: dict[str, Any], journey=None, name: str = "",
             description: str = "", problems: list[Problem] | None = None, validated: bool = False,
             partial: bool = False, status_code: int = 200):
    locale = i18n.pick_locale(request, user)
    layout.annotate_rules(draft)
    problems = problems or []
    by_node: dict[str, list[str]] = {}
    for i, p in enumerate(problems):
        if p.node is None and (at := NODE_PATH.match(p.field)) and int(at[1]) < len(draft["nodes"]):
            # a value of the wrong type is named by its path only: put it on its node
            problems[i] = p = Problem(p.field, draft["nodes"][int(at[1])]["id"], f"{p.field}: {p.message}")
        by_node.setdefault(p.node or "", []).append(p.message)
    published = None
    if journey is not None:
        version = service.current_version(db, journey)
        published = version.number if version.published_at is not None else None
    jv = _vocabulary(db, locale)
    stage_name = i18n.stage_namer(locale)
    return render(request, "journeys/_builder.html" if partial else "journeys/builder.html", status_code=status_code,
                  draft=draft, graph=layout.layout(draft), journey=journey, j_name=name, description=description,
                  problems=problems, by_node=by_node, validated=validated, published=published, jv=jv,
                  node_choices=[(n["id"], f"{n['id']} · {n['label']}" if n["label"] else n["id"]) for n in draft["nodes"]],
                  stage_pairs=[(s, stage_name(s)) for s in jv["stages"]], keys_of=drafts.successor_keys,
                  can_up=lambda i: edits.can_move_up(draft, i), can_down=lambda i: edits.can_move_down(draft, i),
                  rules_post="/journeys/builder", rules_count=None,
                  preview={"error_path": problems[0].field if problems else None},
                  **_rules_context(db, locale))


def _editing(db: Session, data: dict[str, Any]):
    value = str(data.get("journey_id", ""))
    return db.get(m.Journey, int(value)) if value.isdigit() else None


def _list(request: Request, db: Session, installed: list | None = None, status_code: int = 200):
    from clm.journeys import playbook

    counts = report.list_counts(db)
    rows = [(j, counts.get(j.id, {"entered": 0, "open": 0, "converted": 0})) for j in service.list_journeys(db)]
    present = playbook.installed_journeys(db)
    plays = [(play, present.get(play.key)) for play in playbook.plays()]
    return render(request, "journeys/list.html", status_code=status_code, rows=rows, plays=plays,
                  installed=installed or [])


@router.get("/journeys")
def list_page(request: Request, user=Depends(allowed), db: Session = Depends(get_session)):
    return _list(request, db)


@router.post("/journeys/playbook/install")
def install_playbook(request: Request, data: dict = Depends(form_data), user=Depends(allowed),
                     db: Session = Depends(get_session)):
    """Install one play of the lifecycle playbook (`key`) or all of them, as drafts with their templates:
    the marketer reads them, adjusts and activates each."""
    from clm.journeys import playbook

    key = str(data.get("key", ""))
    for_writing(db)
    try:
        results = playbook.install(db, None if key in ("", "all") else [key], now=request.app.state.dashboard_clock(),
                                   timezone=request.app.state.settings.timezone)
        db.commit()
    except FieldError as exc:
        db.rollback()
        return _list(request, db, [playbook.Installed(key, "failed", error=exc.message)], status_code=422)
    if any(r.status == "failed" for r in results):
        return _list(request, db, results, status_code=422)
    if any(r.shared_codes for r in results):  # say that the shared codes are given, not vouchers
        return _list(request, db, results)
    return RedirectResponse("/journeys#playbook", status_code=303)


@router.get("/journeys/new")
def new_page(request: Request, user=Depends(allowed), db: Session = Depends(get_session)):
    return _builder(request, db, user, drafts.blank())


@router.get("/journeys/{journey_id}/edit")
def edit_page(request: Request, journey_id: int, user=Depends(allowed), db: Session = Depends(get_session)):
    try:
        journey = service.get_journey(db, journey_id)
    except NotFound:
        return not_found_page(request)
    if journey.state == m.ARCHIVED:
        return RedirectResponse(f"/journeys/{journey_id}", status_code=303)
    draft = convert.from_definition(service.current_version(db, journey).definition)
    return _builder(request, db, user, draft, journey=journey, name=journey.name, description=journey.description)


@router.post("/journeys/builder")
def builder_fragment(request: Request, data: dict = Depends(form_data), user=Depends(allowed),
                     db: Session = Depends(get_session)):
    """The builder again after a change (a node added, removed, moved, a type picked), or validated."""
    draft = edits.act(posted.from_form(data), data)
    validate = str(data.get("action", "")) == "validate"
    problems = _problems(db, draft)[1] if validate else []
    return _builder(request, db, user, draft, journey=_editing(db, data), name=str(data.get("name", "")),
                    description=str(data.get("description", "")), problems=problems, validated=validate, partial=True)


def _save(request: Request, data: dict, user, db: Session, journey=None):
    draft = posted.from_form(data)
    name, description = str(data.get("name", "")), str(data.get("description", ""))
    definition, problems = _problems(db, draft)
    if not problems:
        for_writing(db)
        try:
            saved = service.save_journey(db, name=name, definition=definition, description=description,
                                         journey_id=journey.id if journey else None)
            db.commit()
            return RedirectResponse(f"/journeys/{saved.id}", status_code=303)
        except FieldError as exc:
            db.rollback()
            problems = [Problem(exc.field or "", None, f"{exc.field}: {exc.message}" if exc.field else exc.message)]
    return _builder(request, db, user, draft, journey=journey, name=name, description=description, problems=problems,
                    validated=True, status_code=422)


@router.post("/journeys/new")
def create(request: Request, data: dict = Depends(form_data), user=Depends(allowed), db: Session = Depends(get_session)):
    return _save(request, data, user, db)


@router.post("/journeys/{journey_id}/edit")
def update(request: Request, journey_id: int, data: dict = Depends(form_data), user=Depends(allowed),
           db: Session = Depends(get_session)):
    try:
        journey = service.get_journey(db, journey_id)
    except NotFound:
        return not_found_page(request)
    return _save(request, data, user, db, journey)


def _page(request: Request, db: Session, user, journey, error: str | None = None, status_code: int = 200):
    from clm.journeys.engine import graph_of

    settings = request.app.state.settings
    locale = i18n.pick_locale(request, user)
    fmt = i18n.Formatter(locale, settings.timezone)
    version = service.current_version(db, journey)
    graph = graph_of(db, version.id)
    counts = report.node_counts(db, journey.id)
    summary = service.summary(db, journey.id)
    splits = report.splits(db, journey.id, graph)
    days = report.daily(db, journey.id, request.app.state.dashboard_clock(), settings.timezone)
    draft = convert.from_definition(version.definition)
    revenue = report.revenue(db, journey.id)
    chart = {"daily": {"labels": [fmt.date(d) for d in days["days"]], "entered": days["entered"],
                       "converted": days["converted"]},
             "splits": [{"id": s.node_id, "labels": [v.name for v in s.variants],
                         "rates": [round(100 * v.rate, 2) if v.rate is not None else 0 for v in s.variants]}
                        for s in splits]}
    return render(request, "journeys/journey.html", status_code=status_code, journey=journey, version=version,
                  definition=version.definition, graph=layout.layout(draft), graph_trigger=draft["trigger"], counts=counts, summary=summary,
                  splits=splits, revenue=revenue, chart_data=chart, error=error, versions=service.versions(db, journey.id),
                  goal=version.definition.get("goal"), currency=settings.default_currency)


@router.get("/journeys/{journey_id}")
def journey_page(request: Request, journey_id: int, user=Depends(allowed), db: Session = Depends(get_session)):
    try:
        journey = service.get_journey(db, journey_id)
    except NotFound:
        return not_found_page(request)
    return _page(request, db, user, journey)


def _transition(request: Request, db: Session, user, journey_id: int, action: str):
    """Activate, pause, resume or archive; a refusal (an archived journey, a segment that went) is shown
    on the journey's page."""
    for_writing(db)
    try:
        if action == "activate":
            service.activate(db, journey_id, now=request.app.state.dashboard_clock(),
                             timezone=request.app.state.settings.timezone)
        else:
            getattr(service, action)(db, journey_id, now=request.app.state.dashboard_clock())
        db.commit()
    except NotFound:
        db.rollback()
        return not_found_page(request)
    except FieldError as exc:
        db.rollback()
        return _page(request, db, user, service.get_journey(db, journey_id), error=exc.message, status_code=422)
    return RedirectResponse(f"/journeys/{journey_id}", status_code=303)


def _transition_route(action: str) -> None:
    @router.post(f"/journeys/{{journey_id}}/{action}", name=f"journey_page_{action}")
    def change(request: Request, journey_id: int, data: dict = Depends(form_data), user=Depends(allowed),
               db: Session = Depends(get_session)):
        return _transition(request, db, user, journey_id, action)


for _action in TRANSITIONS:
    _transition_route(_action)


@router.get("/journeys/{journey_id}/export")
def export(request: Request, journey_id: int, user=Depends(allowed), db: Session = Depends(get_session)):
    """The journey as the document `clm journeys import` and POST /api/v1/journeys/import take."""
    try:
        document = service.export(db, journey_id)
    except NotFound:
        return not_found_page(request)
    return Response(json.dumps(document, ensure_ascii=False, indent=2), media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="journey-{journey_id}.json"'})
