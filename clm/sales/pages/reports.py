"""Sales reports: the lead funnel by source and by campaign (conversion and win rates), the median time in
each stage, the weighted forecast per month and per owner, the rule points against the learned score on the
deals that closed, and the learned model's holdout evaluation (AUC and a calibration plot). Charts drawn by the
vendored Chart.js from a JSON block in the page (clm/web/static/sales.js)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from clm.sales.forecast import forecast
from clm.sales.models import LeadScoreModel
from clm.sales.pages.common import shared, staff
from clm.sales.pipelines import default_pipeline, list_pipelines
from clm.sales.reports import funnel, scores_against_outcomes, time_in_stage
from clm.web import i18n
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, render

router = dashboard_router()
allowed = require("sales")
PERIODS = ("3", "6", "12", "all")  # months of leads and stage changes the funnel and time in stage read


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 19 else None


def _since(period: str, now: datetime, timezone: str) -> datetime | None:
    """The start of the business-time month `period` months back (the current month counts as one)."""
    if period == "all":
        return None
    local = now.astimezone(ZoneInfo(timezone))
    months = local.year * 12 + local.month - int(period)
    start = datetime(months // 12, months % 12 + 1, 1, tzinfo=ZoneInfo(timezone))
    return start.astimezone(UTC)


def _funnel_chart(report: dict[str, Any], label, t) -> dict[str, Any]:
    rows = report["rows"]
    return {"labels": [label(r) for r in rows],
            "series": [{"name": t(f"sales.reports.step.{step}"), "data": [r[step] for r in rows]}
                       for step in ("leads", "contacted", "qualified", "converted", "won")]}


@router.get("/sales/reports")
def reports_page(request: Request, period: str | None = None, pipeline: str | None = None, owner: str | None = None,
                 user=Depends(allowed), db: Session = Depends(get_session)):
    settings = request.app.state.settings
    now = request.app.state.dashboard_clock()
    locale = i18n.pick_locale(request, user)
    t = i18n.translator(locale)
    period = period if period in PERIODS else "12"
    since = _since(period, now, settings.timezone)
    owner_id = _int(owner)
    pipelines = list_pipelines(db)
    chosen = next((p for p in pipelines if p.id == _int(pipeline)), None) or default_pipeline(db)
    by_source = funnel(db, "source", since=since, owner_id=owner_id)
    by_campaign = funnel(db, "campaign", since=since, owner_id=owner_id)

    def source_label(row) -> str:
        return t(f"sales.source.{row['key']}")

    def campaign_label(row) -> str:
        if row["key"] is None:
            return t("sales.reports.other_campaigns", n=row["groups"])
        return row["key"] or t("sales.reports.no_campaign")

    stages = time_in_stage(db, chosen.id, since=since, now=now)
    for s in stages:
        names = s["name"] or {}
        s["label"] = names.get(locale) or names.get("vi") or names.get("en") or s["key"]
    today = now.astimezone(ZoneInfo(settings.timezone)).date()
    figures = forecast(db, pipeline_id=chosen.id, owner_id=owner_id, since=date(today.year - 1, today.month, 1),
                       until=today + timedelta(days=365), currency=settings.default_currency,
                       timezone=settings.timezone)
    people = staff(db)
    people_names = dict(people)
    scores = scores_against_outcomes(db)
    model = db.scalar(sa.select(LeadScoreModel).order_by(LeadScoreModel.trained_at.desc(), LeadScoreModel.id.desc())
                      .limit(1))
    evaluation = ((model.params or {}).get("evaluation") or {}) if model else {}
    owner_rows = figures["owners"]
    charts = {
        "source": _funnel_chart(by_source, source_label, t),
        "campaign": _funnel_chart(by_campaign, campaign_label, t),
        "stages": {"labels": [s["label"] for s in stages],
                   "series": [{"name": t("sales.reports.median_days"),
                               "data": [round(s["median_days"], 2) if s["median_days"] is not None else None
                                        for s in stages]}]},
        "months": {"labels": [m["month"] for m in figures["months"]],
                   "series": [{"name": t("sales.forecast.weighted"), "data": [m["weighted_value"] for m in figures["months"]]},
                              {"name": t("sales.forecast.won"), "data": [m["won_value"] for m in figures["months"]]}]},
        "owners": {"labels": [people_names.get(o["owner_id"], "—") if o["owner_id"] else t("sales.forecast.nobody")
                              for o in owner_rows],
                   "series": [{"name": t("sales.forecast.weighted"), "data": [o["weighted_value"] for o in owner_rows]},
                              {"name": t("sales.forecast.open"), "data": [o["open_value"] for o in owner_rows]},
                              {"name": t("sales.forecast.won"), "data": [o["won_value"] for o in owner_rows]}]},
        "scores": {"labels": [str(i + 1) for i in range(max(len(scores["learned"]), len(scores["rules"])))],
                   "series": [{"name": t("sales.reports.learned"), "data": [b["won_rate"] for b in scores["learned"]]},
                              {"name": t("sales.reports.rules"), "data": [b["won_rate"] for b in scores["rules"]]}]},
        "calibration": {"points": [{"x": b["predicted"], "y": b["observed"]}
                                   for b in evaluation.get("calibration") or []],
                        "names": {"model": t("sales.reports.calibration_model"),
                                  "ideal": t("sales.reports.calibration_ideal")}},
    }
    return render(request, "sales/reports.html", period=period, periods=PERIODS, pipelines=pipelines,
                  pipeline_id=chosen.id, owner_id=owner_id, staff=people, people=people_names, by_source=by_source,
                  by_campaign=by_campaign, source_label=source_label, campaign_label=campaign_label, stages=stages,
                  figures=figures, scores=scores, model=model, evaluation=evaluation, charts=charts,
                  currency=settings.default_currency, **shared(request, db, user))
