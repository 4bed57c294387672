"""What the sales pages share: staff names, stage names in the reader's language, the notifications bell."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.customers.models import Customer
from clm.sales.notifications import unread
from clm.web import i18n


def blank(value: Any) -> str | None:
    """A form field's text, stripped; None when empty."""
    text = str(value or "").strip()
    return text or None


def staff(db: Session) -> list[tuple[int, str]]:
    """Active staff who can own leads and deals, by name."""
    rows = db.execute(sa.select(User.id, User.name, User.email).where(User.active.is_(True)).order_by(User.name))
    return [(i, name or email) for i, name, email in rows]


def customer_names(db: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = db.execute(sa.select(Customer.id, Customer.full_name, Customer.email, Customer.phone)
                      .where(Customer.id.in_(ids)))
    return {i: name or email or phone or f"#{i}" for i, name, email, phone in rows}


def stage_label(stage, locale: str) -> str:
    names = stage.name or {}
    return names.get(locale) or names.get("vi") or names.get("en") or stage.key


def locale_of(request: Request, user) -> str:
    return i18n.pick_locale(request, user)


def shared(request: Request, db: Session, user) -> dict[str, Any]:
    """The context every sales page has: the tab row and the user's unread notifications."""
    return {"notes": unread(db, user.id), "tab": request.url.path.split("/")[2] if request.url.path.count("/") >= 2
            else "board"}
