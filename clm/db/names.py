"""A record's name as people type it: trimmed, 1 to 120 characters, unique among the records of its kind."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.lib.errors import FieldError


def unique_name(session: Session, model: Any, name: str, row_id: int | None, what: str) -> str:
    """`name` trimmed; FieldError("name") when it is empty, too long, or the name of another `model` row
    than `row_id` (None: a new one), whose message calls the record a `what`."""
    name = (name or "").strip()
    if not name or len(name) > 120 or "\x00" in name:
        raise FieldError("name", "must be 1 to 120 characters")
    other = session.scalar(sa.select(model.id).where(model.name == name))
    if other is not None and other != row_id:
        raise FieldError("name", f"a {what} named {name!r} already exists", "duplicate")
    return name
