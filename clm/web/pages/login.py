"""Logging in and out, and choosing the dashboard language."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from clm.access.users import LOCALES, authenticate, home_of, set_locale
from clm.web import i18n
from clm.web.auth import current_user, end_session, start_session
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, form_data, render

router = dashboard_router()


def safe_next(target: str | None, default: str = "/") -> str:
    """Only local paths: never send someone to another site after logging in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def _client(request: Request) -> str:
    return "ip:" + (request.client.host if request.client else "?")


@router.get("/login")
def login_page(request: Request, next: str | None = None, user=Depends(current_user)):
    if user is not None:
        return RedirectResponse(safe_next(next, home_of(user)), status_code=303)
    return render(request, "login.html", next_url=safe_next(next, ""), email="", error=None, notice=None)


@router.post("/login")
def login(request: Request, form: dict = Depends(form_data), db: Session = Depends(get_session)):
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    next_url = safe_next(str(form.get("next", "")), "")
    t = i18n.translator(i18n.pick_locale(request, None))
    throttle = request.app.state.login_throttle
    keys = (_client(request), "email:" + email.strip().lower())
    if throttle.blocked(*keys):
        return render(request, "login.html", status_code=429, next_url=next_url, email=email,
                      error=t("login.throttled"), notice=None)
    user = authenticate(db, email, password)
    if user is None:
        throttle.failed(*keys)
        return render(request, "login.html", status_code=401, next_url=next_url, email=email,
                      error=t("login.failed"), notice=None)
    throttle.succeeded(*keys)
    db.commit()  # a rehashed password
    start_session(request, user)
    request.state.user = user
    return RedirectResponse(next_url or home_of(user), status_code=303)


@router.post("/logout")
def logout(request: Request):
    end_session(request)
    request.state.user = None
    return RedirectResponse("/login", status_code=303)


@router.post("/locale")
def choose_locale(request: Request, form: dict = Depends(form_data), db: Session = Depends(get_session),
                  user=Depends(current_user)):
    """Switch the language: stored on the user when logged in, in a cookie for the login page."""
    locale = str(form.get("locale", ""))
    response = RedirectResponse(safe_next(str(form.get("next", "")), "/"), status_code=303)
    if locale in LOCALES:
        if user is not None:
            set_locale(db, user, locale)
            db.commit()
        response.set_cookie(i18n.COOKIE, locale, max_age=365 * 24 * 3600, httponly=True, samesite="lax",
                            secure=request.app.state.settings.session_cookie_secure)
    return response
