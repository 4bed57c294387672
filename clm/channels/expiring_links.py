"""Signed links that name one record and stop working at a set time: the loyalty member page (/m/<token>)
and the service survey page (/s/<token>).

The token is clm.channels.tracking's sign/verify over "<id>\\n<unix seconds until>" under a key of the
feature's own, derived from CLM_SECRET_KEY with HMAC-SHA256 and a purpose label, so a token made for one
page never opens another and cannot be edited to name someone else's record.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from clm.channels.tracking import BadLink, sign, verify


class ExpiredLink(BadLink):
    """The link was genuine but its time is over: ask the shop for a new one."""


def derived_key(settings, purpose: bytes) -> bytes:
    """The signing key for one kind of link: HMAC-SHA256(CLM_SECRET_KEY, purpose)."""
    base = settings.secret_key.get_secret_value().encode()
    return hmac.new(base, purpose, hashlib.sha256).digest()


def expiring_token(key: bytes, kind: str, record_id: int, until: datetime) -> str:
    return sign(key, kind, f"{record_id}\n{int(until.timestamp())}")


def record_of(key: bytes, kind: str, token: str, now: datetime) -> int:
    """The id a token names; BadLink when it was not signed here, ExpiredLink when its time is over."""
    payload = verify(key, kind, token)
    try:
        record, until = payload.split("\n")
        record_id, expires = int(record), datetime.fromtimestamp(int(until), UTC)
    except ValueError as exc:
        raise BadLink("the link is malformed") from exc
    if now >= expires:
        raise ExpiredLink("the link has expired")
    return record_id
