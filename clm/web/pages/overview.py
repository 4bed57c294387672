"""The overview: customers by stage, the stage funnel, new customers and revenue per week."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from clm.access.users import home_of
from clm.lib.money import from_minor
from clm.web import i18n
from clm.web.auth import require, require_login
from clm.web.deps import get_session
from clm.web.pages import metrics
from clm.web.pages.base import dashboard_router, render

router = dashboard_router()

STAGE_COLOURS = {"awareness": "#64748b", "consideration": "#0284c7", "conversion": "#7c3aed",
                 "retention": "#0f766e", "loyalty": "#ca8a04", "at_risk": "#ea580c", "churned": "#dc2626", "": "#cbd5e1"}


@router.get("/")
def home(user=Depends(require_login)):
    return RedirectResponse(home_of(user), status_code=303)


@router.get("/overview")
def overview(request: Request, user=Depends(require("overview")), db: Session = Depends(get_session)):
    settings = request.app.state.settings
    clock = request.app.state.dashboard_clock
    key = ("overview", settings.timezone, settings.default_currency)
    compute = lambda s: metrics.overview(s, tz=settings.timezone, currency=settings.default_currency, now=clock())  # noqa: E731
    cache = request.app.state.dashboard_cache
    if settings.dashboard_warm_up and cache.peek(key) is None:
        # The figures are being computed (the server has just started): never hold the page up for
        # them; show that they are coming and reload in a moment.
        cache.compute_in_background(key, compute)
        return render(request, "overview_pending.html")
    m = cache.get_or_compute(key, compute, db)
    locale = i18n.pick_locale(request, user)
    fmt = i18n.Formatter(locale, settings.timezone)
    names = i18n.stage_namer(locale)
    t = i18n.translator(locale)
    chart_data = {
        "stages": {"labels": [names(s["key"]) for s in m.stages], "values": [s["count"] for s in m.stages],
                   "colours": [STAGE_COLOURS.get(s["key"], "#94a3b8") for s in m.stages]},
        "weeks": [fmt.week(w) for w in m.weeks],
        "new_customers": {"label": t("overview.new_customers"), "values": m.new_customers},
        "revenue": {"label": t("overview.revenue", currency=m.currency),
                    "values": [float(from_minor(v, m.currency)) for v in m.revenue],
                    "formatted": [fmt.money(v, m.currency) for v in m.revenue]},
    }
    return render(request, "overview.html", m=m, chart_data=chart_data)


@router.get("/overview/funnel")
def overview_funnel(request: Request, user=Depends(require("overview")), db: Session = Depends(get_session)):
    """The funnel card's body, fetched by the overview after it has rendered (it reads the stage history)."""
    steps = request.app.state.dashboard_cache.get_or_compute(("funnel",), metrics.funnel, db)
    return render(request, "partials/funnel.html", funnel=steps,
                  funnel_max=max([s["entered"] for s in steps] + [1]))
