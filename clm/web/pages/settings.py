"""Settings: API keys, write keys and staff users. Everyone with settings:read sees them;
settings:write (admins) creates and revokes keys and manages users. A new secret is shown once."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from clm.access import keys, users
from clm.access.models import ApiKey, WriteKey
from clm.lib.errors import FieldError, NotFound
from clm.web import i18n
from clm.web.auth import require
from clm.web.deps import get_session
from clm.web.pages.base import dashboard_router, form_data, render
from clm.web.pages.errors import not_found_page

router = dashboard_router()
read = require("settings:read")
write = require("settings:write")


def _page(request: Request, db: Session, status_code: int = 200, **extra: Any):
    context = {"error": None, "notice": None, "new_secret": None, **extra}
    return render(
        request, "settings.html", status_code=status_code,
        api_keys=list(db.scalars(sa.select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc()))),
        write_keys=list(db.scalars(sa.select(WriteKey).order_by(WriteKey.revoked_at.is_not(None), WriteKey.id.desc()))),
        users=users.list_users(db), roles=users.ROLES, scopes=keys.SCOPES, **context,
    )


def _t(request: Request, user):
    return i18n.translator(i18n.pick_locale(request, user))


def _text(form: dict, name: str, limit: int = 255) -> str:
    value = form.get(name, "")
    return (value if isinstance(value, str) else "").strip()[:limit]


@router.get("/settings")
def settings_page(request: Request, user=Depends(read), db: Session = Depends(get_session)):
    return _page(request, db)


@router.post("/settings/api-keys")
def create_api_key(request: Request, form: dict = Depends(form_data), user=Depends(write),
                   db: Session = Depends(get_session)):
    t = _t(request, user)
    name = _text(form, "name")
    scopes = form.get("scope", [])
    scopes = [scopes] if isinstance(scopes, str) else scopes
    if not name or not scopes:
        return _page(request, db, 422, error=t("settings.need_name") if not name else t("settings.need_scope"))
    try:
        row, secret = keys.create_api_key(db, name, scopes)
    except ValueError as exc:
        return _page(request, db, 422, error=str(exc))
    db.commit()
    return _page(request, db, 201, new_secret={"label": t("settings.new_api_key", name=row.name), "value": secret})


@router.post("/settings/write-keys")
def create_write_key(request: Request, form: dict = Depends(form_data), user=Depends(write),
                     db: Session = Depends(get_session)):
    t = _t(request, user)
    name = _text(form, "name")
    if not name:
        return _page(request, db, 422, error=t("settings.need_name"))
    row, secret = keys.create_write_key(db, name)
    db.commit()
    return _page(request, db, 201, new_secret={"label": t("settings.new_write_key", name=row.name), "value": secret})


def _revoke(request: Request, db: Session, model, key_id: int, anchor: str):
    if db.get(model, key_id) is None:
        return not_found_page(request)
    keys.revoke(db, model, key_id)
    db.commit()
    return RedirectResponse(f"/settings#{anchor}", status_code=303)


@router.post("/settings/api-keys/{key_id}/revoke")
def revoke_api_key(request: Request, key_id: int, user=Depends(write), db: Session = Depends(get_session)):
    return _revoke(request, db, ApiKey, key_id, "api-keys")


@router.post("/settings/write-keys/{key_id}/revoke")
def revoke_write_key(request: Request, key_id: int, user=Depends(write), db: Session = Depends(get_session)):
    return _revoke(request, db, WriteKey, key_id, "write-keys")


@router.post("/settings/users")
def create_user(request: Request, form: dict = Depends(form_data), user=Depends(write),
                db: Session = Depends(get_session)):
    try:
        created = users.create_user(db, email=_text(form, "email", 320), name=_text(form, "name"),
                                    role=_text(form, "role", 16), password=str(form.get("password", "")))
    except FieldError as exc:
        db.rollback()
        return _page(request, db, 422, error=_t(request, user)(f"settings.field.{exc.field}") + ": " + exc.message)
    db.commit()
    return _page(request, db, 201, notice=_t(request, user)("settings.user_created", email=created.email))


def _change_user(request: Request, db: Session, user, change):
    try:
        change()
    except NotFound:
        return not_found_page(request)
    except FieldError as exc:
        db.rollback()
        return _page(request, db, 422, error=_t(request, user)("settings.last_admin") if "last active admin" in
                     exc.message else exc.message)
    db.commit()
    return RedirectResponse("/settings#users", status_code=303)


@router.post("/settings/users/{user_id}/role")
def change_role(request: Request, user_id: int, form: dict = Depends(form_data), user=Depends(write),
                db: Session = Depends(get_session)):
    return _change_user(request, db, user, lambda: users.set_role(db, user_id, _text(form, "role", 16)))


@router.post("/settings/users/{user_id}/deactivate")
def deactivate_user(request: Request, user_id: int, user=Depends(write), db: Session = Depends(get_session)):
    return _change_user(request, db, user, lambda: users.set_active(db, user_id, False))


@router.post("/settings/users/{user_id}/activate")
def activate_user(request: Request, user_id: int, user=Depends(write), db: Session = Depends(get_session)):
    return _change_user(request, db, user, lambda: users.set_active(db, user_id, True))
