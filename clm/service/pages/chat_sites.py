"""The web chat's sites in the dashboard: list them, add one, change its name, allowed origins and greeting,
switch it off or on, and copy its embed snippet. Permission `service:manage` (admin, manager).

Every change goes through clm.service.chat (the same functions as `clm service chat-site`); a refused
form is shown again with the field named (422) and nothing saved.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from clm.db.engine import for_writing
from clm.lib.errors import FieldError, NotFound
from clm.service import chat
from clm.service.models import MAX_ID, ChatSite
from clm.service.pages.common import translator
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, form_data, render
from clm.web.pages.errors import not_found_page

router = dashboard_router()
allowed = require("service:manage")
_SPLIT = re.compile(r"[\s,]+")


def _values(site: ChatSite | None) -> dict[str, Any]:
    if site is None:
        return {"name": "", "origins": "", "greeting_vi": "", "greeting_en": "", "language": "vi"}
    return {"name": site.name, "origins": "\n".join(site.origins), "greeting_vi": site.greeting.get("vi", ""),
            "greeting_en": site.greeting.get("en", ""), "language": "vi"}


def _read(data: dict) -> dict[str, Any]:
    def text(name: str) -> str:
        value = data.get(name, "")
        return str(value[0] if isinstance(value, list) else value)

    return {"name": text("name"), "origins": text("origins"), "greeting_vi": text("greeting_vi"),
            "greeting_en": text("greeting_en"), "language": text("language") or "vi"}


def _problem(request: Request, user, exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        text = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg'].removeprefix('Value error, ')}"
    else:
        field = getattr(exc, "field", None)
        text = f"{field}: {exc.message}" if field else str(exc)  # type: ignore[attr-defined]
    return translator(request, user)("service.refused", message=text)


def _page(request: Request, db: Session, user, site: ChatSite | None = None, values: dict | None = None,
          error: str | None = None, status_code: int = 200) -> Response:
    public_url = request.app.state.settings.public_url
    snippets = {s.id: chat.embed_snippet(public_url, s) for s in chat.list_sites(db)}
    return render(request, "service/chat_sites.html", status_code=status_code, sites=chat.list_sites(db),
                  site=site, v=values or _values(site), error=error, snippets=snippets)


def _site(db: Session, site_id: int) -> ChatSite | None:
    if not 1 <= site_id <= MAX_ID:
        return None
    try:
        return chat.get_site(db, site_id)
    except NotFound:
        return None


@router.get("/service/chat-sites")
def sites_page(request: Request, user=Depends(allowed), db: Session = Depends(get_session)) -> Response:
    return _page(request, db, user)


def _save(request: Request, db: Session, user, data: dict, site: ChatSite | None) -> Response:
    values = _read(data)
    for_writing(db)
    try:
        saved = chat.save_site(db, chat.SiteIn(
            name=values["name"], origins=[o for o in _SPLIT.split(values["origins"]) if o],
            greeting={"vi": values["greeting_vi"], "en": values["greeting_en"]},
            language=values["language"] if site is None else None,
            active=site.active if site is not None else True), site.id if site else None)
        db.commit()
    except (FieldError, ValidationError) as exc:
        db.rollback()
        return _page(request, db, user, site, values, _problem(request, user, exc), status_code=422)
    return RedirectResponse(f"/service/chat-sites/{saved.id}", status_code=303)


@router.post("/service/chat-sites/new")
def site_create(request: Request, data: dict = Depends(form_data), user=Depends(allowed),
                db: Session = Depends(get_session)) -> Response:
    return _save(request, db, user, data, None)


@router.get("/service/chat-sites/{site_id}")
def site_page(request: Request, site_id: int, user=Depends(allowed), db: Session = Depends(get_session)) -> Response:
    site = _site(db, site_id)
    return not_found_page(request) if site is None else _page(request, db, user, site)


@router.post("/service/chat-sites/{site_id}")
def site_update(request: Request, site_id: int, data: dict = Depends(form_data), user=Depends(allowed),
                db: Session = Depends(get_session)) -> Response:
    site = _site(db, site_id)
    return not_found_page(request) if site is None else _save(request, db, user, data, site)


def _switch(request: Request, db: Session, site_id: int, active: bool) -> Response:
    if _site(db, site_id) is None:
        return not_found_page(request)
    for_writing(db)
    chat.set_active(db, site_id, active)
    db.commit()
    return RedirectResponse(f"/service/chat-sites/{site_id}", status_code=303)


@router.post("/service/chat-sites/{site_id}/disable")
def site_disable(request: Request, site_id: int, user=Depends(allowed), db: Session = Depends(get_session)) -> Response:
    return _switch(request, db, site_id, False)


@router.post("/service/chat-sites/{site_id}/enable")
def site_enable(request: Request, site_id: int, user=Depends(allowed), db: Session = Depends(get_session)) -> Response:
    return _switch(request, db, site_id, True)
