"""A ticket in the workspace: the conversation (messages both ways, notes, the audit), the customer beside
it, the composer fitting the channel, and the controls (assignee, status, priority, tags).

Each form posts to its own route; with HTMX the route answers the part of the page that changed (the thread,
or the side panel), without it a redirect back to the ticket. A refused change is shown next to the form
with the field named (422 bad input, 409 a state that forbids it) and nothing is applied.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from clm.db.engine import for_writing
from clm.lib.errors import FieldError, NotFound
from clm.service import sla, workspace
from clm.service.agents import list_agents
from clm.service.conversations import ReplyIn, reply
from clm.service.errors import ServiceConflict
from clm.service.models import PRIORITIES, STATUSES, Conversation, Ticket
from clm.service.pages.common import CHANNEL_LIMITS, check_reply, ints, now_of, refusal, translator
from clm.service.tickets import TicketUpdate, add_note, get_ticket, update_ticket
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, form_data, render
from clm.web.pages.errors import not_found_page

router = dashboard_router()
allowed = require("service")
MESSENGER_WINDOW = timedelta(hours=24)  # Messenger lets a page answer freely within a day of the customer's message


def _ticket(db: Session, ticket_id: int) -> Ticket | None:
    try:
        return get_ticket(db, ticket_id)
    except NotFound:
        return None


FIELDS = ("status", "priority", "assignee_id", "team_id", "tags", "subject", "type", "language", "fields",
          "order_id", "merged_into", "merged_from", "reoffer", "sla.first_response", "sla.next_response",
          "sla.resolution")


def _describer(t, names: dict[int, str], teams: dict[int, str]):
    """change -> (what, from, to) as people read them: names for people and teams, labels for statuses."""

    def value(field: str, v) -> str:
        if v is None or v == "" or v == []:
            return "—"
        if field in ("assignee_id", "reoffer"):
            return names.get(v, f"#{v}")
        if field == "team_id":
            return teams.get(v, f"#{v}")
        if field == "status":
            return t(f"service.status.{v}")
        if field == "priority":
            return t(f"service.priority.{v}")
        if isinstance(v, list):
            return ", ".join(str(x) for x in v)
        if isinstance(v, dict):
            return ", ".join(f"{k}: {x}" for k, x in v.items())
        return str(v)

    def describe(change) -> tuple[str, str | None, str]:
        label = t("service.field." + change.field.replace("sla.", "sla_")) if change.field in FIELDS else change.field
        old = value(change.field, change.old) if change.old is not None else None
        return label, old, value(change.field, change.new)

    return describe


def _context(request: Request, db: Session, ticket: Ticket, **extra) -> dict:
    from clm.service.agents import list_teams

    now = now_of(request)
    names = workspace.staff_names(db)
    describe = _describer(translator(request, request.state.user), names, {tm.id: tm.name for tm, _ in list_teams(db)})
    window_closed = (ticket.channel == "messenger" and ticket.last_customer_message_at is not None
                     and now - ticket.last_customer_message_at > MESSENGER_WINDOW)
    return {"ticket": ticket, "entries": workspace.thread(db, ticket.id), "panel": workspace.customer_panel(db, ticket.customer_id, ticket.id),
            "timers": sla.timers(db, ticket.id), "agents": list_agents(db), "names": names, "describe": describe,
            "statuses": STATUSES, "priorities": PRIORITIES, "limit": CHANNEL_LIMITS.get(ticket.channel),
            "window_closed": window_closed, "now": now, "error": None, "error_form": None,
            "draft": "", **extra}


def _answer(request: Request, db: Session, ticket: Ticket, part: str | None, status_code: int = 200, **extra):
    """The part of the page an HTMX form asked for, or the whole page."""
    context = _context(request, db, ticket, **extra)
    if part in ("thread", "side") and request.headers.get("HX-Request") == "true":
        return render(request, f"service/_{part}.html", status_code=status_code, **context)
    return render(request, "service/ticket.html", status_code=status_code, **context)


@router.get("/service/tickets/{ticket_id}")
def ticket_page(request: Request, ticket_id: int, user=Depends(allowed), db: Session = Depends(get_session)):
    ticket = _ticket(db, ticket_id)
    if ticket is None:
        return not_found_page(request)
    if ticket.merged_into_id is not None:
        return RedirectResponse(f"/service/tickets/{ticket.merged_into_id}", status_code=303)
    return _answer(request, db, ticket, None)


@router.get("/service/tickets/{ticket_id}/thread")
def thread_part(request: Request, ticket_id: int, user=Depends(allowed), db: Session = Depends(get_session)):
    """The conversation alone (what the live update swaps in)."""
    ticket = _ticket(db, ticket_id)
    if ticket is None:
        return not_found_page(request)
    return render(request, "service/_thread.html", **_context(request, db, ticket))


@router.get("/service/tickets/{ticket_id}/side")
def side_part(request: Request, ticket_id: int, user=Depends(allowed), db: Session = Depends(get_session)):
    """The controls, SLA clocks and customer panel alone (what the live update swaps in)."""
    ticket = _ticket(db, ticket_id)
    if ticket is None:
        return not_found_page(request)
    return render(request, "service/_side.html", **_context(request, db, ticket))


def _write(request: Request, db: Session, user, ticket_id: int, part: str, form: str, change, draft: str = ""):
    """Run `change` in a writer's transaction; answer the part (or redirect), or the refusal by name."""
    for_writing(db)
    try:
        change()
        db.commit()
    except NotFound:
        db.rollback()
        return not_found_page(request)
    except (FieldError, ServiceConflict) as exc:
        db.rollback()
        ticket = _ticket(db, ticket_id)
        if ticket is None:
            return not_found_page(request)
        message, status_code = refusal(request, user, exc)
        return _answer(request, db, ticket, part, status_code, error=message, error_form=form, draft=draft)
    if request.headers.get("HX-Request") != "true":
        return RedirectResponse(f"/service/tickets/{ticket_id}", status_code=303)
    db.expire_all()
    return _answer(request, db, get_ticket(db, ticket_id), part)


@router.post("/service/tickets/{ticket_id}/reply")
def reply_post(request: Request, ticket_id: int, data: dict = Depends(form_data), user=Depends(allowed),
               db: Session = Depends(get_session)) -> Response:
    body = str(data.get("body") or "")

    def change() -> None:
        ticket = get_ticket(db, ticket_id)
        text = check_reply(_channel(db, ticket, ints(data.get("conversation_id"))), body)
        key = str(data.get("key") or "").strip()[:64]
        reply(db, ticket_id, ReplyIn(body=text, conversation_id=ints(data.get("conversation_id")),
                                     external_id=f"web:{user.id}:{key}" if key else None),
              by=user.id, now=_now(request))

    return _write(request, db, user, ticket_id, "thread", "reply", change, draft=body)


def _channel(db: Session, ticket: Ticket, conversation_id: int | None) -> str:
    if conversation_id is not None:
        conversation = db.get(Conversation, conversation_id)
        if conversation is not None and conversation.ticket_id == ticket.id:
            return conversation.channel
    return ticket.channel


def _now(request: Request) -> datetime:
    return now_of(request)


@router.post("/service/tickets/{ticket_id}/note")
def note_post(request: Request, ticket_id: int, data: dict = Depends(form_data), user=Depends(allowed),
              db: Session = Depends(get_session)) -> Response:
    body = str(data.get("body") or "")
    return _write(request, db, user, ticket_id, "thread", "note",
                  lambda: add_note(db, ticket_id, body, by=user.id, now=_now(request)), draft=body)


@router.post("/service/tickets/{ticket_id}")
def update_post(request: Request, ticket_id: int, data: dict = Depends(form_data), user=Depends(allowed),
                db: Session = Depends(get_session)) -> Response:
    """The controls: only what differs from the ticket is sent on (so nothing unchanged is audited)."""

    def change() -> None:
        ticket = get_ticket(db, ticket_id)
        sent: dict = {}
        if "take" in data:
            sent["assignee_id"] = user.id
        elif "assignee" in data:
            text = str(data.get("assignee") or "").strip()
            assignee = ints(text)
            if text and assignee is None:
                raise FieldError("assignee_id", f"{text!r} is not a staff user id")
            if assignee != ticket.assignee_id:
                sent["assignee_id"] = assignee
        for name in ("status", "priority"):
            value = str(data.get(name) or "").strip()
            if value and value != getattr(ticket, name):
                sent[name] = value
        if "tags" in data:
            tags = [t.strip() for t in str(data.get("tags") or "").split(",") if t.strip()]
            if tags != (ticket.tags or []):
                sent["tags"] = tags
        if sent:
            try:
                changes = TicketUpdate(**sent)
            except ValueError as exc:  # pydantic's, naming the field
                err = exc.errors()[0]  # type: ignore[attr-defined]
                raise FieldError(str(err["loc"][0]), err["msg"]) from None
            update_ticket(db, ticket_id, changes, by=user.id, now=_now(request))

    return _write(request, db, user, ticket_id, "side", "controls", change)
