"""What every dashboard page shares: the route class (timing, session cookie), templates and context."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute

from clm.access.users import can
from clm.web import i18n
from clm.web.auth import save_session, web_session
from clm.web.csrf import csrf_protect, csrf_token

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# A strict Content-Security-Policy: everything (scripts, styles, fonts) comes from this server.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


class DashboardRoute(APIRoute):
    """Times the request (Server-Timing and X-Render-Time headers) and saves a changed session cookie."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def timed(request: Request) -> Response:
            started = time.perf_counter()
            response = await handler(request)
            save_session(request, response)
            add_page_headers(response, started)
            return response

        return timed


def add_page_headers(response: Response, started: float) -> None:
    ms = (time.perf_counter() - started) * 1000
    response.headers["Server-Timing"] = f"app;dur={ms:.1f}"
    response.headers["X-Render-Time"] = f"{ms:.1f}ms"
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")


def dashboard_router() -> APIRouter:
    """A router whose every route is timed and CSRF-checked, and left out of the API's OpenAPI."""
    return APIRouter(route_class=DashboardRoute, include_in_schema=False, dependencies=[Depends(csrf_protect)])


def render(request: Request, name: str, status_code: int = 200, headers: dict | None = None,
           **context: Any) -> HTMLResponse:
    """Render a template with the page context (user, locale, translations, formatters, CSRF token)."""
    html = _env.get_template(name).render(**page_context(request), **context)
    return HTMLResponse(html, status_code=status_code, headers=headers)


def page_context(request: Request) -> dict[str, Any]:
    user = getattr(request.state, "user", None)
    locale = i18n.pick_locale(request, user)
    fmt = i18n.Formatter(locale, request.app.state.settings.timezone)
    web_session(request)
    return {
        "request": request,
        "user": user,
        "can": lambda permission: can(user, permission),
        "locale": locale,
        "t": i18n.translator(locale),
        "fmt": fmt,
        "stage_name": i18n.stage_namer(locale),
        "csrf_token": csrf_token(request),
        "path": request.url.path,
    }


async def form_data(request: Request) -> dict[str, Any]:
    """The posted form as a dict (a repeated field becomes a list), read once in the event loop so that
    the route itself can be a plain function run in the thread pool."""
    form = await request.form()
    data: dict[str, Any] = {}
    for key in form:
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        data[key] = values if len(values) > 1 else (values[0] if values else "")
    return data
