"""The dashboard: server-rendered pages (Jinja2 + HTMX) served by the same app as the APIs."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from clm.lib.clock import utcnow
from clm.web.auth import LoginThrottle

STATIC = Path(__file__).resolve().parent.parent / "static"


def install(app: FastAPI, cache_ttl: float = 60.0, refresh_in_background: bool = True) -> None:
    """Mount the pages, static files (vendored htmx and Chart.js: nothing from a CDN) and their error pages."""
    from clm.web.pages import customers, errors, login, overview, settings
    from clm.web.pages.metrics import TTLCache

    app.state.dashboard_cache = TTLCache(
        cache_ttl, session_factory=app.state.session_factory if refresh_in_background else None)
    app.state.dashboard_clock = utcnow  # tests put a fixed `now` here
    app.state.login_throttle = LoginThrottle()
    errors.install(app)
    for module in (login, overview, customers, settings):
        app.include_router(module.router)
    from clm.analytics import pages as analytics_pages

    app.include_router(analytics_pages.router)  # /analytics/..., /customers/{id}/scores
    from clm.segments import pages as segment_pages

    app.include_router(segment_pages.router)  # /segments, the builder, /segments/{id}
    from clm.web.pages import jobs as job_pages

    app.include_router(job_pages.router)  # /jobs: counts, dead jobs, retry and cancel
    from clm.journeys import pages as journey_pages

    app.include_router(journey_pages.router)  # /journeys: list, builder, a journey's page with its counts
    from clm.channels import pages as channel_pages

    for router in channel_pages.routers():  # /channels/...: broadcasts, templates, messages, providers
        app.include_router(router)
    from clm.sales import pages as sales_pages

    for router in sales_pages.routers():  # /sales/...: pipeline board, leads, forecast, lead forms, assignment rules
        app.include_router(router)
    from clm.loyalty import pages as loyalty_pages

    app.include_router(loyalty_pages.router)  # /loyalty: reports, member lookup and pages, the program's forms
    from clm.service import pages as service_pages

    for router in service_pages.routers():  # /service/...: the agent workspace, a ticket, live updates, reports
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def warm_up(app: FastAPI) -> threading.Thread:
    """Compute the overview's figures in the background as the server starts, so that even the first
    visitor gets them from the cache (on a million customers they take a second or more to compute)."""
    from clm.web.pages import metrics

    settings = app.state.settings

    def run() -> None:
        cache = app.state.dashboard_cache
        overview = lambda s: metrics.overview(s, tz=settings.timezone, currency=settings.default_currency,  # noqa: E731
                                              now=app.state.dashboard_clock())
        for key, compute in ((("overview", settings.timezone, settings.default_currency), overview),
                             (("funnel",), metrics.funnel)):
            if cache.peek(key) is None and cache.claim(key):  # a page may have started it already
                cache.compute_now(key, compute)  # logs and keeps going if it fails

    thread = threading.Thread(target=run, name="clm-dashboard-warm-up", daemon=True)
    thread.start()
    return thread
