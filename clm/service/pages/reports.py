"""The service desk's reports page: volume by channel and hour, response and resolution times, SLA
attainment, CSAT and each agent's load, drawn with the vendored Chart.js from the page's JSON."""

from __future__ import annotations

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from clm.service.pages.common import now_of, translator
from clm.service.reports import report
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, render

router = dashboard_router()
allowed = require("service")
WINDOWS = (7, 30, 90)


@router.get("/service/reports")
def reports_page(request: Request, days: int = 30, user=Depends(allowed), db: Session = Depends(get_session)):
    days = days if days in WINDOWS else 30
    t = translator(request, user)
    data = report(db, now_of(request), days, request.app.state.settings.timezone)
    channels = list(data.by_channel)
    chart = {
        "channels": {"labels": [t(f"service.channel.{c}") for c in channels],
                     "values": [data.by_channel[c] for c in channels]},
        "hours": {"labels": [f"{h:02d}" for h in range(24)],
                  "series": [{"label": t(f"service.channel.{c}"), "values": data.by_hour[c]} for c in channels]},
        "sla": {"labels": [t(f"service.metric.{a.metric}") for a in data.sla],
                "met": [a.met for a in data.sla], "breached": [a.breached for a in data.sla],
                "met_label": t("service.report.met"), "breached_label": t("service.report.breached")},
        "load": {"labels": [name for name, *_ in data.load], "open": [n for *_, n, _ in data.load],
                 "capacity": [c for *_, c in data.load], "open_label": t("service.report.open_tickets"),
                 "capacity_label": t("service.report.capacity")},
    }
    from clm.service.workspace import staff_names

    return render(request, "service/reports.html", report=data, days=days, windows=WINDOWS, chart_data=chart,
                  names=staff_names(db))
