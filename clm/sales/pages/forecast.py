"""The forecast: weighted pipeline by expected close month, won and lost by month closed, per owner (a
chart and the tables), with the first-contact SLA of the last 30 days and the lead score's evaluation."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from clm.sales.forecast import forecast
from clm.sales.models import LeadScoreModel
from clm.sales.pages.common import shared, staff
from clm.sales.pipelines import list_pipelines
from clm.sales.sla import breach_counts
from clm.web import i18n
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, render

router = dashboard_router()
allowed = require("sales")


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 19 else None


@router.get("/sales/forecast")
def forecast_page(request: Request, pipeline: str | None = None, owner: str | None = None, user=Depends(allowed),
                  db: Session = Depends(get_session)):
    settings = request.app.state.settings
    now = request.app.state.dashboard_clock()
    today = now.date()
    t = i18n.translator(i18n.pick_locale(request, user))
    pipeline_id, owner_id = _int(pipeline), _int(owner)
    figures = forecast(db, pipeline_id=pipeline_id, owner_id=owner_id, since=date(today.year - 1, today.month, 1),
                       until=today + timedelta(days=365), currency=settings.default_currency,
                       timezone=settings.timezone)
    months = figures["months"]
    chart = {"labels": [m["month"] for m in months], "weighted": [m["weighted_value"] for m in months],
             "rest": [m["open_value"] - m["weighted_value"] for m in months], "won": [m["won_value"] for m in months],
             "names": {"weighted": t("sales.forecast.weighted"), "rest": t("sales.forecast.rest"),
                       "won": t("sales.forecast.won")}}
    model = db.scalar(sa.select(LeadScoreModel).order_by(LeadScoreModel.trained_at.desc(), LeadScoreModel.id.desc())
                      .limit(1))
    people = staff(db)
    return render(request, "sales/forecast.html", figures=figures, chart_data=chart, pipelines=list_pipelines(db),
                  pipeline_id=pipeline_id, owner_id=owner_id, staff=people, people=dict(people),
                  sla=breach_counts(db, now - timedelta(days=30)), model=model,
                  evaluation=(model.params or {}).get("evaluation") if model else None,
                  currency=settings.default_currency, **shared(request, db, user))
