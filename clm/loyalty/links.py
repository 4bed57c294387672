"""The member page's signed link: /m/<token>, where the token names the customer and when the link stops
working, signed with HMAC-SHA256 (clm.channels.tracking's sign/verify, under a key of its own derived from
CLM_SECRET_KEY). A token cannot be edited to show someone else's points, and an old one stops working.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from clm.channels.tracking import BadLink, sign, verify

KIND = "m"
VALID_DAYS = 90  # a link sent in a message keeps working for a season


class ExpiredLink(BadLink):
    """The link was genuine but its time is over: ask the shop for a new one."""


def member_key(settings) -> bytes:
    base = settings.secret_key.get_secret_value().encode()
    return hmac.new(base, b"clm loyalty member page links", hashlib.sha256).digest()


def member_token(key: bytes, customer_id: int, now: datetime, days: int = VALID_DAYS) -> str:
    until = int((now + timedelta(days=days)).timestamp())
    return sign(key, KIND, f"{customer_id}\n{until}")


def member_url(settings, customer_id: int, now: datetime, days: int = VALID_DAYS) -> str:
    return f"{settings.public_url.rstrip('/')}/m/{member_token(member_key(settings), customer_id, now, days)}"


def customer_of(key: bytes, token: str, now: datetime) -> int:
    """The customer a token names; BadLink when it was not signed here, ExpiredLink when its time is over."""
    payload = verify(key, KIND, token)
    try:
        customer, until = payload.split("\n")
        customer_id, expires = int(customer), datetime.fromtimestamp(int(until), UTC)
    except ValueError as exc:
        raise BadLink("the link is malformed") from exc
    if now >= expires:
        raise ExpiredLink("the link has expired")
    return customer_id
