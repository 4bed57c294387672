"""The ASGI app: tracking API, native API, (later) the dashboard; one app for server, tests and CLI."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker

import clm
from clm.config import Settings, get_settings
from clm.db.engine import checkpoint_in_background, make_engine, make_session_factory
from clm.web import errors

SERVER_NICENESS = 5  # how much a server process yields to the ingestion writer process (see lifespan)


def create_app(settings: Settings | None = None, session_factory: sessionmaker[Session] | None = None) -> FastAPI:
    """Build the app. Tests pass a session factory bound to their rolled-back connection."""
    settings = settings or get_settings()
    serving = session_factory is None  # a real server process (tests pass their own session factory)
    if session_factory is None:
        engine = make_engine(settings.database_url)
        checkpoint_in_background(engine)
        session_factory = make_session_factory(engine)
    from clm.tracking.writer import BatchWriter

    if settings.ingest_writer_socket and settings.ingest_writer_secret:  # a server process of `clm serve`
        from clm.tracking.writer_process import RemoteWriter

        writer = RemoteWriter(settings.ingest_writer_socket,
                              bytes.fromhex(settings.ingest_writer_secret.get_secret_value()))
    else:
        writer = BatchWriter(session_factory)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.dashboard_warm_up:
            from clm.web.pages import warm_up

            warm_up(app)
        if serving:
            from clm.lib.gc_tuning import tune_for_server

            tune_for_server()
            if settings.ingest_writer_socket:
                # A server process in front of the one ingestion writer process (SQLite): the writer is
                # the serial bottleneck, so when the cores are contended it runs first and the server
                # processes, which only need to keep it fed, yield. Raising one's own niceness needs no
                # privilege.
                os.nice(SERVER_NICENESS)
        yield
        writer.close()

    app = FastAPI(
        lifespan=lifespan,
        title="clm",
        version=clm.__version__,
        description="Customer lifecycle management: the Segment-compatible tracking API (/v1) and the native API (/api/v1).",
        default_response_class=JSONResponse,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.session_factory = session_factory
    app.state.ingest_writer = writer
    app.state.write_key_cache = {}
    errors.install(app)
    from clm.service.accepting_http import AcceptMessages

    app.add_middleware(AcceptMessages)  # POST /api/v1/service/messages in groups, before routing (issue 10)

    from clm.analytics.api import router as analytics_router
    from clm.channels.broadcast_api import router as broadcasts_router
    from clm.channels.inbound.api import router as hooks_router
    from clm.commerce.api import router as commerce_router
    from clm.customers.api import router as customers_router
    from clm.journeys.api import router as journeys_router
    from clm.lifecycle.api import router as lifecycle_router
    from clm.loyalty.api import router as loyalty_router
    from clm.segments.api import router as segments_router
    from clm.tracking.api import router as tracking_router
    from clm.tracking.events_api import router as events_router

    app.include_router(tracking_router)
    app.include_router(hooks_router)  # /hooks/...: providers' delivery reports and replies, signed
    from clm.sales.hooks import router as lead_hooks_router

    app.include_router(lead_hooks_router)  # /hooks/leads/...: Facebook Lead Ads and Zalo forms, signed
    from clm.sales.api import router as sales_router
    from clm.sales.deals_api import router as deals_router
    from clm.sales.points_api import router as points_router
    from clm.service.api import router as service_router

    for router in (customers_router, events_router, commerce_router, lifecycle_router, analytics_router,
                   segments_router, journeys_router, loyalty_router, broadcasts_router, sales_router, deals_router,
                   points_router, service_router):
        app.include_router(router, prefix="/api/v1")
    from clm.service.automation_api import router as service_automation_router

    app.include_router(service_automation_router, prefix="/api/v1")  # triggers, canned replies, macros, CSAT, calls
    from clm.service.mail.api import router as service_mail_router

    app.include_router(service_mail_router, prefix="/api/v1")  # inbound mail (raw) and its quarantine

    from clm.web import pages

    pages.install(app)  # the dashboard: /login, /overview, /customers, /settings, /static
    from clm.channels.routes import router as links_router

    app.include_router(links_router)  # /t/...: open pixel, click redirect, unsubscribe, preferences (no login)
    from clm.sales.public import router as lead_form_router

    app.include_router(lead_form_router)  # /forms/lead: the embeddable lead form (no login; token, honeypot, rate limit)
    from clm.loyalty.public import router as member_page_router

    app.include_router(member_page_router)  # /m/...: a loyalty member's own page (no login; signed, expiring link)
    from clm.service.chat_public import router as chat_router

    app.include_router(chat_router)  # /chat/<site key>/...: the web chat widget's messages and live stream (no login)
    from clm.service.cti import router as cti_router

    app.include_router(cti_router)  # /hooks/cti/<token>: a PBX's call events (Zammad's Generic CTI format)
    from clm.service.survey_page import router as survey_page_router

    app.include_router(survey_page_router)  # /s/...: a customer's CSAT / NPS answer (no login; signed, expiring link)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"ok": True}

    return app
