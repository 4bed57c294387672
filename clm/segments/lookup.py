"""Building a compile/evaluate Context from the database: the business time zone, the clock, and the
segments a tree may reference (read once per context)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.segments.compile import Context
from clm.segments.models import Segment
from clm.segments.rules import parse_rules


def segment_lookup(session: Session):
    """id -> ("dynamic", tree) | ("static", None) | None, loading each segment once."""
    cache: dict[int, tuple[str, Any] | None] = {}

    def find(segment_id: int) -> tuple[str, Any] | None:
        if segment_id not in cache:
            row = session.execute(sa.select(Segment.kind, Segment.rules).where(Segment.id == segment_id)).first()
            if row is None:
                cache[segment_id] = None
            elif row.kind == "static" or row.rules is None:
                cache[segment_id] = ("static", None)
            else:
                cache[segment_id] = ("dynamic", parse_rules(row.rules))
        return cache[segment_id]

    return find


def make_context(session: Session, now: datetime, timezone: str = "Asia/Ho_Chi_Minh",
                 scope_ids: Sequence[int] | None = None) -> Context:
    return Context(dialect=session.get_bind().dialect.name, now=now, timezone=timezone,
                   segment=segment_lookup(session), scope_ids=scope_ids)
