"""The dashboard's answers when something is in the way: log in first, no access, not found, stale form."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from clm.access.users import home_of
from clm.web import i18n
from clm.web.auth import LoginRequired, PermissionDenied, save_session
from clm.web.csrf import CsrfFailed
from clm.web.pages.base import add_page_headers, render


def error_page(request: Request, status: int, kind: str) -> Response:
    user = getattr(request.state, "user", None)
    t = i18n.translator(i18n.pick_locale(request, user))
    response = render(request, "error.html", status_code=status, status=status, title=t(f"error.{kind}.title"),
                      message=t(f"error.{kind}.body"), home=home_of(user) if user else "/login")
    save_session(request, response)
    return response


def not_found_page(request: Request) -> Response:
    return error_page(request, 404, "not_found")


def install(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired):
        target = "/login" + ("?" + urlencode({"next": exc.next_url}) if exc.next_url not in ("", "/") else "")
        if request.headers.get("HX-Request"):
            # HTMX would swap a redirect's body into the page; ask it to navigate instead.
            response: Response = Response(status_code=200, headers={"HX-Redirect": target})
        else:
            response = RedirectResponse(target, status_code=303)
        add_page_headers(response, 0.0)
        return response

    @app.exception_handler(PermissionDenied)
    async def _denied(request: Request, exc: PermissionDenied):
        return error_page(request, 403, "forbidden")

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: CsrfFailed):
        return error_page(request, 403, "csrf")
