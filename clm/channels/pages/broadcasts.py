"""Broadcast pages: the list, the composer (template, segment, when, test send) and the report
(figures, a chart, why messages were not sent), with cancel."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from clm.channels import broadcasts, testsend
from clm.channels.models import Broadcast
from clm.channels.pages.common import allowed, fragment_of_test, local_input, page, parse_local, settings_of
from clm.channels.reasons import in_language
from clm.channels.templates import RenderError, list_templates
from clm.channels.templates import preview as preview_template
from clm.customers.models import Customer
from clm.db.engine import for_writing
from clm.lib.errors import FieldError, NotFound
from clm.segments.models import Segment
from clm.web import i18n
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, form_data, render
from clm.web.pages.errors import not_found_page

router = dashboard_router()
PAGE = 50


def _segments(db: Session) -> list[tuple[int, str, int]]:
    return [tuple(r) for r in db.execute(sa.select(Segment.id, Segment.name, Segment.size).order_by(Segment.name))]


def _composer(request: Request, db: Session, user, *, broadcast: Broadcast | None, form: dict[str, Any],
              error: str | None = None, error_field: str | None = None, status_code: int = 200):
    return page(request, "channels/broadcast_compose.html", "broadcasts", status_code=status_code,
                broadcast=broadcast, form=form, error=error, error_field=error_field, templates=list_templates(db),
                segments=_segments(db), default_to=user.email)


def _form_of(b: Broadcast, timezone: str) -> dict[str, Any]:
    return {"name": b.name, "template_key": b.template_key, "segment_id": str(b.segment_id or ""),
            "when": "later" if b.status == "scheduled" else "now",
            "send_at": local_input(b.send_at, timezone) if b.status == "scheduled" else "",
            "attribution_days": str(b.attribution_days)}


def _read(form: dict[str, Any], timezone: str) -> dict[str, Any]:
    """The composer's fields, typed; FieldError names the bad one."""
    segment = str(form.get("segment_id", ""))
    days = str(form.get("attribution_days", "")).strip()
    if days and not days.isdigit():
        raise FieldError("attribution_days", "must be a whole number of days from 1 to 90")
    send_at = None
    if form.get("when") == "later":
        try:
            send_at = parse_local(str(form.get("send_at", "")), timezone)
        except ValueError:
            raise FieldError("send_at", "is not a date and time") from None
        if send_at is None:
            raise FieldError("send_at", "choose when to send it, or send it now")
    return {"name": str(form.get("name", "")), "template_key": str(form.get("template_key", "")),
            "segment_id": int(segment) if segment.isdigit() else None,
            "attribution_days": int(days) if days else None, "send_at": send_at}


def _save(db: Session, user, form: dict[str, Any], settings, broadcast_id: int | None) -> Broadcast:
    values = _read(form, settings.timezone)
    if values["segment_id"] is None:
        raise FieldError("segment_id", "choose a segment")
    if broadcast_id is None:
        broadcast = broadcasts.create_broadcast(db, name=values["name"], template_key=values["template_key"],
                                                segment_id=values["segment_id"], created_by=user.email,
                                                attribution_days=values["attribution_days"], settings=settings)
    else:
        broadcast = broadcasts.update_broadcast(db, broadcast_id, name=values["name"],
                                                template_key=values["template_key"], segment_id=values["segment_id"],
                                                attribution_days=values["attribution_days"])
    if form.get("action") == "send":
        broadcasts.schedule(db, broadcast.id, values["send_at"])
    elif broadcast.status == "scheduled":
        broadcasts.unschedule(db, broadcast.id)
    return broadcast


def _submit(request: Request, db: Session, user, form: dict[str, Any], broadcast: Broadcast | None):
    for_writing(db)
    try:
        saved = _save(db, user, form, settings_of(request), broadcast.id if broadcast else None)
        db.commit()
    except FieldError as exc:
        db.rollback()
        message = f"{exc.field}: {exc.message}" if exc.field else exc.message
        return _composer(request, db, user, broadcast=broadcast, form=form, error=message, error_field=exc.field,
                         status_code=422)
    return RedirectResponse(f"/channels/broadcasts/{saved.id}", status_code=303)


@router.get("/channels/broadcasts")
def list_page(request: Request, cursor: str | None = None, user=Depends(allowed),
              db: Session = Depends(get_session)):
    """The broadcasts newest first, PAGE at a time (the "Next" link carries the cursor)."""
    rows, next_cursor, error = [], None, False
    try:
        rows, next_cursor = broadcasts.list_broadcasts(db, after=cursor, limit=PAGE)
    except FieldError:
        error = True
    ids = {b.segment_id for b in rows if b.segment_id}
    names = dict(db.execute(sa.select(Segment.id, Segment.name).where(Segment.id.in_(ids))).all()) if ids else {}
    return page(request, "channels/broadcasts.html", "broadcasts", rows=rows, segment_names=names,
                next_cursor=next_cursor, first_page=not cursor, error=error)


@router.get("/channels/broadcasts/new")
def new_page(request: Request, user=Depends(allowed), db: Session = Depends(get_session)):
    days = str(settings_of(request).broadcast_attribution_days)
    return _composer(request, db, user, broadcast=None, form={"when": "now", "attribution_days": days})


@router.post("/channels/broadcasts/new")
def create(request: Request, form: dict = Depends(form_data), user=Depends(allowed),
           db: Session = Depends(get_session)):
    """Save a draft (action=draft) or send it: now, or at the time chosen (action=send)."""
    return _submit(request, db, user, form, None)


@router.post("/channels/broadcasts/test")
def queue_test_send(request: Request, form: dict = Depends(form_data), user=Depends(allowed),
              db: Session = Depends(get_session)):
    """The composer's template rendered for the segment's first member, sent to a staff address."""
    settings = settings_of(request)
    segment = str(form.get("segment_id", ""))
    for_writing(db)
    try:
        content = testsend.render_test(db, template_key=str(form.get("template_key", "")),
                                       segment_id=int(segment) if segment.isdigit() else None, settings=settings)
        job = testsend.queue_test(db, content, str(form.get("to", "")), requested_by=user.email, settings=settings)
        db.commit()
    except FieldError as exc:
        db.rollback()
        return fragment_of_test(request, None, error=f"{exc.field}: {exc.message}" if exc.field else exc.message)
    return fragment_of_test(request, job.id, state=job.state, to=job.args["to"])


@router.post("/channels/broadcasts/preview")
def preview(request: Request, form: dict = Depends(form_data), user=Depends(allowed),
            db: Session = Depends(get_session)):
    """The composer's template as the segment's first member would receive it (or why it does not render)."""
    settings = settings_of(request)
    segment = str(form.get("segment_id", ""))
    key = str(form.get("template_key", ""))
    rendered, error, customer = None, None, None
    try:
        customer = db.get(Customer, testsend.sample_customer(db, None, int(segment) if segment.isdigit() else None))
        rendered = preview_template(db, key, customer.id, timezone=settings.timezone,
                                    default_locale=settings.default_locale)
    except FieldError as exc:
        error = f"{exc.field}: {exc.message}" if exc.field else exc.message
    except NotFound:
        error = f"template_key: there is no template {key!r}"
    except RenderError as exc:
        error = exc.reason
    locale = i18n.pick_locale(request, user)
    name = customer and (customer.full_name or customer.email or customer.phone or f"#{customer.id}")
    return render(request, "channels/_preview.html", rendered=rendered, error=in_language(error, locale),
                  for_name=name)


@router.get("/channels/tests/{job_id}")
def show_test(request: Request, job_id: int, user=Depends(allowed), db: Session = Depends(get_session)):
    """Where a test send is (HTMX polls this until the worker has tried it)."""
    found = testsend.state_of_test(db, job_id)
    if found is None:
        return not_found_page(request)
    state, error = found
    return fragment_of_test(request, job_id, state=state, error=error)


@router.get("/channels/broadcasts/{broadcast_id}")
def report_page(request: Request, broadcast_id: int, user=Depends(allowed), db: Session = Depends(get_session)):
    try:
        broadcast = broadcasts.get_broadcast(db, broadcast_id)
    except NotFound:
        return not_found_page(request)
    settings = settings_of(request)
    report = broadcasts.report(db, broadcast_id, timezone=settings.timezone)
    t = i18n.translator(i18n.pick_locale(request, user))
    steps = ("sent", "delivered", "opened", "clicked", "unsubscribed", "failed")
    chart = {"funnel": {"labels": [t(f"broadcasts.figure.{s}") for s in steps],
                        "values": [getattr(report, s) for s in steps]},
             "daily": {"labels": [d for d, *_ in report.daily],
                       "series": [{"label": t(f"broadcasts.figure.{s}"), "values": [row[i + 1] for row in report.daily]}
                                  for i, s in enumerate(("sent", "opened", "clicked"))]}}
    segment = db.get(Segment, broadcast.segment_id) if broadcast.segment_id else None
    return page(request, "channels/broadcast_report.html", "broadcasts", broadcast=broadcast, report=report,
                segment=segment, reasons=broadcasts.reasons(db, broadcast_id), chart_data=chart,
                currency=settings.default_currency)


@router.get("/channels/broadcasts/{broadcast_id}/edit")
def edit_page(request: Request, broadcast_id: int, user=Depends(allowed), db: Session = Depends(get_session)):
    try:
        broadcast = broadcasts.get_broadcast(db, broadcast_id)
    except NotFound:
        return not_found_page(request)
    if broadcast.status not in broadcasts.EDITABLE:
        return RedirectResponse(f"/channels/broadcasts/{broadcast_id}", status_code=303)
    return _composer(request, db, user, broadcast=broadcast, form=_form_of(broadcast, settings_of(request).timezone))


@router.post("/channels/broadcasts/{broadcast_id}/edit")
def update(request: Request, broadcast_id: int, form: dict = Depends(form_data), user=Depends(allowed),
           db: Session = Depends(get_session)):
    try:
        broadcast = broadcasts.get_broadcast(db, broadcast_id)
    except NotFound:
        return not_found_page(request)
    return _submit(request, db, user, form, broadcast)


@router.post("/channels/broadcasts/{broadcast_id}/cancel")
def cancel(request: Request, broadcast_id: int, form: dict = Depends(form_data), user=Depends(allowed),
           db: Session = Depends(get_session)):
    for_writing(db)
    try:
        broadcasts.cancel(db, broadcast_id)
        db.commit()
    except NotFound:
        db.rollback()
        return not_found_page(request)
    except FieldError:
        db.rollback()  # sent or cancelled already: the report says so
    return RedirectResponse(f"/channels/broadcasts/{broadcast_id}", status_code=303)
