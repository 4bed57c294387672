"""Opaque keyset-paging cursors: the sort key of the last row a page showed, base64url-encoded.

A cursor is not a secret and not signed: forging one only moves where a page starts. Decoding checks
the shape, so a mangled cursor is a clear error instead of a wrong page.
"""

from __future__ import annotations

import base64
from datetime import datetime

import orjson
import sqlalchemy as sa

from clm.lib.errors import FieldError


class InvalidCursor(ValueError):
    """A `cursor` that this API did not make (or that belongs to another listing)."""


def encode(*values: str | int | datetime) -> str:
    """A cursor holding `values` (datetimes become ISO 8601 text)."""
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(orjson.dumps(plain)).decode().rstrip("=")


def decode(token: str, *types: type) -> tuple:
    """The values of `token`, each checked against (and converted to) the matching type in `types`."""
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise InvalidCursor("is not a cursor from this API; pass the `next` value of the previous page") from None
    if not isinstance(raw, list) or len(raw) != len(types):
        raise InvalidCursor("does not belong to this listing; pass the `next` value of the previous page")
    out = []
    for value, kind in zip(raw, types, strict=True):
        try:
            if kind is datetime:
                parsed = datetime.fromisoformat(value)
                if parsed.tzinfo is None:
                    raise ValueError
                out.append(parsed)
            elif kind is int and isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63:
                out.append(value)
            elif kind is str and isinstance(value, str):
                out.append(value)
            else:
                raise ValueError
        except (TypeError, ValueError):
            raise InvalidCursor("does not belong to this listing; pass the `next` value of the previous page") from None
    return tuple(out)


def newest_first(time_col, id_col, at: datetime, row_id: int):
    """The keyset condition "after (at, row_id)" for a listing ordered by time, then id, both descending."""
    return sa.or_(time_col < at, sa.and_(time_col == at, id_col < row_id))


def read(token: str | None, *types: type) -> tuple | None:
    """`decode` for a request's `cursor` parameter: None when absent, a FieldError naming it when bad."""
    if token is None:
        return None
    try:
        return decode(token, *types)
    except InvalidCursor as exc:
        raise FieldError("cursor", str(exc)) from None


def page_newest_first(session, query: sa.Select, time_col, id_col, after: str | None, limit: int):
    """One page of `query`'s rows ordered by time then id, newest first, and the next page's cursor.

    `after` is the previous page's `next` cursor (or None for the first page); the next cursor is None
    on the last page.
    """
    position = read(after, datetime, int)
    if position:
        query = query.where(newest_first(time_col, id_col, *position))
    rows = list(session.scalars(query.order_by(time_col.desc(), id_col.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode(getattr(last, time_col.key), getattr(last, id_col.key))
