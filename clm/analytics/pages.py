"""Dashboard pages of the analytics: CLV, RFM grid, cohorts, model fit; and the customer 360's scores card.

Every page reads the latest finished run (one row, its figures precomputed by the refresh) plus, for
the CLV page, the top 50 customers through the index on predicted_clv_12m: nothing here aggregates
the whole customer base on a request.
"""

from __future__ import annotations

from typing import Any

from babel.numbers import format_compact_currency
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from clm.analytics import scores
from clm.analytics.models import AnalyticsRun, CustomerScore
from clm.analytics.refresh import MODEL_NAMES
from clm.analytics.rfm import SEGMENTS
from clm.customers import service
from clm.lib.errors import NotFound
from clm.lib.money import from_minor
from clm.web import i18n
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, render
from clm.web.pages.errors import not_found_page

router = dashboard_router()
TABS = ("clv", "rfm", "cohorts", "fit")
TOP = 50
HEAT_STEPS = 10


def segment_key(name: str) -> str:
    """"can't lose them" -> "cant_lose_them": the i18n key of a segment name."""
    return "".join(ch for ch in name.replace(" ", "_") if ch.isalnum() or ch == "_")


def explain(score: CustomerScore | None, t, fmt: i18n.Formatter) -> str:
    """One line a person reads on the 360: how likely the customer still buys, and from what history."""
    if score is None:
        return t("scores.none")
    if score.status != "ok":
        return t(f"scores.reason.{score.reason or 'no_orders'}")
    p = score.p_alive or 0.0
    state = t("scores.state.active" if p >= 0.7 else "scores.state.drifting" if p >= 0.3 else "scores.state.lapsed")
    values = {"state": state, "p": fmt.percent(p), "days": fmt.number(score.recency_days or 0)}
    if not score.frequency:
        return t("scores.explain.once", **values)
    gap = round(((score.tenure_days or 0) - (score.recency_days or 0)) / score.frequency)
    return t("scores.explain.repeat", n=fmt.number(score.frequency + 1), gap=fmt.number(max(gap, 1)), **values)


def _heat(value: float | None, top: float) -> str:
    if value is None or top <= 0:
        return "heat-none"
    return f"heat-{min(HEAT_STEPS, int(round(HEAT_STEPS * value / top)))}"


def _context(request: Request, user, db: Session) -> tuple[AnalyticsRun | None, dict[str, Any]]:
    settings = request.app.state.settings
    locale = i18n.pick_locale(request, user)
    run = scores.latest_run(db)
    return run, {"run": run, "tabs": TABS, "model_name": MODEL_NAMES.get(run.model, run.model) if run else None,
                 "t_locale": locale, "currency": run.currency if run else settings.default_currency}


@router.get("/analytics")
def analytics_home(user=Depends(require("analytics"))):
    return RedirectResponse("/analytics/clv", status_code=303)


@router.get("/analytics/clv")
def clv_page(request: Request, user=Depends(require("analytics")), db: Session = Depends(get_session)):
    run, ctx = _context(request, user, db)
    top, chart = [], None
    if run is not None and run.status == "ok":
        fmt = i18n.Formatter(ctx["t_locale"], request.app.state.settings.timezone)
        dist = run.diagnostics.get("summary", {}).get("clv_distribution", {"edges": [], "counts": []})
        edges = dist["edges"]
        labels = [f"{_compact(e, run.currency, fmt)}–{_compact(edges[i + 1], run.currency, fmt)}"
                  if i + 1 < len(edges) else f"≥ {_compact(e, run.currency, fmt)}" for i, e in enumerate(edges)]
        chart = {"clv": {"labels": labels, "values": dist["counts"]}}
        top = [(sc, c, segment_key(sc.rfm_segment or "")) for sc, c in scores.top_customers(db, TOP)]
    return render(request, "analytics/clv.html", tab="clv", top=top, chart_data=chart,
                  s=run.diagnostics.get("summary", {}) if run else {}, **ctx)


def _compact(minor: int, currency: str, fmt: i18n.Formatter) -> str:
    return format_compact_currency(from_minor(int(minor), currency), currency, locale=fmt.locale)


@router.get("/analytics/rfm")
def rfm_page(request: Request, user=Depends(require("analytics")), db: Session = Depends(get_session)):
    run, ctx = _context(request, user, db)
    summary = run.diagnostics.get("summary", {}) if run else {}
    grid = summary.get("rfm_grid")
    cells, segments = [], []
    if grid:
        from clm.analytics.rfm import rfm_segments

        top = max(max(row) for row in grid)
        for r in range(5, 0, -1):
            row = []
            for fm in range(1, 6):
                name = str(rfm_segments([r], [fm], [fm])[0])
                count = grid[r - 1][fm - 1]
                row.append({"count": count, "segment": segment_key(name), "heat": _heat(count, top)})
            cells.append({"r": r, "cells": row})
        buyers = max(summary.get("buyers", 0), 1)
        for name in SEGMENTS:
            seg = summary["segments"][name]
            segments.append({"key": segment_key(name), "count": seg["count"], "share": seg["count"] / buyers,
                             "revenue": seg["revenue"], "clv": seg.get("clv")})
        segments.sort(key=lambda s: -s["revenue"])
    return render(request, "analytics/rfm.html", tab="rfm", grid=cells, segments=segments, s=summary, **ctx)


@router.get("/analytics/cohorts")
def cohorts_page(request: Request, user=Depends(require("analytics")), db: Session = Depends(get_session)):
    run, ctx = _context(request, user, db)
    cohorts = run.diagnostics.get("cohorts") if run else None
    rows, ages = [], 0
    if cohorts and cohorts.get("months"):
        fmt = i18n.Formatter(ctx["t_locale"], request.app.state.settings.timezone)
        ages = max(len(r) for r in cohorts["retention"])
        top_revenue = max([v for row in cohorts["revenue"] for v in row if v is not None] + [0])
        top_retention = max([v for row in cohorts["retention"] for v in row[1:] if v is not None] + [0])
        for i, month in enumerate(cohorts["months"]):
            retention = cohorts["retention"][i]
            revenue = cohorts["revenue"][i]
            rows.append({
                "month": month, "size": cohorts["size"][i],
                "retention": [None if v is None else {"text": fmt.percent(v), "heat": _heat(v, top_retention) if k else "heat-base"}
                              for k, v in enumerate(retention)],
                "revenue": [None if v is None else {"text": _compact(v, run.currency, fmt),
                                                    "heat": _heat(v, top_revenue)} for v in revenue],
            })
    return render(request, "analytics/cohorts.html", tab="cohorts", rows=rows, ages=list(range(ages)), **ctx)


@router.get("/analytics/fit")
def fit_page(request: Request, user=Depends(require("analytics")), db: Session = Depends(get_session)):
    run, ctx = _context(request, user, db)
    chart, comparison = None, []
    if run is not None and run.status == "ok":
        t = i18n.translator(ctx["t_locale"])
        hist, track = run.diagnostics.get("histogram"), run.diagnostics.get("tracking")
        chart = {
            "histogram": {"labels": [str(k) if k < len(hist["frequency"]) - 1 else f"{k}+" for k in hist["frequency"]],
                          "actual": hist["actual"], "expected": hist["expected"],
                          "actual_label": t("fit.actual"), "expected_label": t("fit.model")},
            "tracking": {"labels": track["week"], "actual": track["actual"], "expected": track["expected"],
                         "split": track.get("split_week"), "actual_label": t("fit.actual"),
                         "expected_label": t("fit.model"), "x_label": t("fit.weeks_since", start=track["start"])},
        }
        for row in (run.holdout or {}).get("rows", []):
            comparison.append({**row, "name": MODEL_NAMES.get(row["model"], row["model"])})
    return render(request, "analytics/fit.html", tab="fit", chart_data=chart, comparison=comparison, **ctx)


@router.get("/customers/{customer_id}/scores")
def scores_card(request: Request, customer_id: int, user=Depends(require("customers")),
                db: Session = Depends(get_session)):
    """The 360's scores card, fetched by HTMX once the profile has rendered."""
    try:
        service.get_customer(db, customer_id)
    except (NotFound, service.Merged):
        return not_found_page(request)
    locale = i18n.pick_locale(request, user)
    fmt, t = i18n.Formatter(locale, request.app.state.settings.timezone), i18n.translator(locale)
    score = scores.score_of(db, customer_id)
    return render(request, "analytics/scores_card.html", score=score, explanation=explain(score, t, fmt),
                  model_name=MODEL_NAMES.get(score.model, score.model) if score and score.model else None,
                  segment=segment_key(score.rfm_segment) if score and score.rfm_segment else None)
