"""What the channel pages share: the permission, the tabs, the business-time helpers and the test-send fragment."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse

from clm.channels.reasons import in_language
from clm.web.auth import require
from clm.web.i18n import pick_locale
from clm.web.pages.base import render

allowed = require("channels")
TABS = ("broadcasts", "templates", "messages", "providers")


def page(request: Request, name: str, tab: str, status_code: int = 200, **context) -> HTMLResponse:
    locale = pick_locale(request, getattr(request.state, "user", None))
    return render(request, name, status_code=status_code, tab=tab, tabs=TABS,
                  reason_text=lambda text: in_language(text, locale), **context)


def settings_of(request: Request):
    return request.app.state.settings


def local_input(value: datetime | None, timezone: str) -> str:
    """An aware time as a datetime-local field's value in the business time zone ("2026-03-02T10:00")."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%dT%H:%M")


def parse_local(value: str, timezone: str) -> datetime | None:
    """A datetime-local field's value, read in the business time zone; None when empty, ValueError when bad."""
    value = (value or "").strip()
    if not value:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=ZoneInfo(timezone))


def fragment_of_test(request: Request, job_id: int | None, state: str | None = None, error: str | None = None,
                  to: str | None = None) -> HTMLResponse:
    locale = pick_locale(request, getattr(request.state, "user", None))
    return render(request, "channels/_test_result.html", job_id=job_id, state=state,
                  error=in_language(error, locale), to=to)
