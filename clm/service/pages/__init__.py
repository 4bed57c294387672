"""The service desk's dashboard: the agent workspace (views, a ticket with its conversation and the customer,
the composer and controls), live updates by server-sent events, and the reports.

Permission `service` (admin, manager, agent). Every form carries the CSRF token (HTMX sends it as a header);
every change goes through the same service functions as the API, audited with the user who made it.
"""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    from clm.service.pages import attachments, chat_sites, inbox, live, reports, ticket

    return [inbox.router, ticket.router, attachments.router, chat_sites.router, live.router, reports.router]
