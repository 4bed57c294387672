"""The workspace's views: mine, unassigned, team, SLA at risk, all; filters and paging; the agent's
availability. An HTMX request gets the list alone (the live updates swap it in without a reload)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from clm.db.engine import for_writing
from clm.lib.errors import FieldError
from clm.service import workspace
from clm.service.agents import AgentIn, save_agent
from clm.service.models import AVAILABILITY, CHANNELS, PRIORITIES, STATUSES
from clm.service.pages.common import my_agent, now_of, refusal
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, form_data, render

router = dashboard_router()
allowed = require("service")


@router.get("/service")
def service_home(user=Depends(allowed), db: Session = Depends(get_session)):
    view = "mine" if my_agent(db, user) is not None else "unassigned"
    return RedirectResponse(f"/service/inbox?view={view}", status_code=303)


@router.get("/service/inbox")
def inbox_page(request: Request, view: str = "mine", status: str | None = None, priority: str | None = None,
               channel: str | None = None, tag: str | None = None, after: str | None = None,
               user=Depends(allowed), db: Session = Depends(get_session)):
    error, status_code = None, 200
    try:
        filters = workspace.Filters.read(status, priority, channel, tag, after)
        page = workspace.view_page(db, view, user, filters, now_of(request))
    except FieldError as exc:
        error, status_code = refusal(request, user, exc)
        view, filters = "mine", workspace.Filters()
        page = workspace.view_page(db, view, user, filters, now_of(request))
    query = {k: v for k, v in (("view", view), ("status", filters.status), ("priority", filters.priority),
                                ("channel", filters.channel), ("tag", filters.tag)) if v}

    def url(**changes) -> str:
        return "/service/inbox?" + urlencode({k: v for k, v in {**query, **changes}.items() if v})

    partial = request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == "ticket-list"
    return render(request, "service/_list.html" if partial else "service/inbox.html", status_code=status_code,
                  page=page, filters=filters, url=url, error=error, statuses=STATUSES, priorities=PRIORITIES,
                  channels=CHANNELS, views=workspace.VIEWS, agent=my_agent(db, user), availabilities=AVAILABILITY,
                  now=now_of(request))


@router.post("/service/availability")
def availability(request: Request, data: dict = Depends(form_data), user=Depends(allowed),
                 db: Session = Depends(get_session)):
    """The agent sets themself online, busy or offline (going online drains the queue to them)."""
    value = str(data.get("availability") or "")
    back = str(data.get("next") or "/service/inbox")
    back = back if back.startswith("/service/") else "/service/inbox"
    if value not in AVAILABILITY:
        return render(request, "error.html", status_code=422, status=422, title="422",
                      message=refusal(request, user, FieldError("availability", f"choose from {', '.join(AVAILABILITY)}"))[0],
                      home=back)
    for_writing(db)
    save_agent(db, user.id, AgentIn(availability=value), now=now_of(request))
    db.commit()
    return RedirectResponse(back, status_code=303)
