"""The member page's signed link: /m/<token>, where the token names the customer and when the link stops
working, signed with HMAC-SHA256 (clm.channels.expiring_links, under a key of its own derived from
CLM_SECRET_KEY). A token cannot be edited to show someone else's points, and an old one stops working.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from clm.channels.expiring_links import ExpiredLink as ExpiredLink  # the member page catches it from here
from clm.channels.expiring_links import derived_key, expiring_token, record_of

KIND = "m"
VALID_DAYS = 90  # a link sent in a message keeps working for a season


def member_key(settings) -> bytes:
    return derived_key(settings, b"clm loyalty member page links")


def member_token(key: bytes, customer_id: int, now: datetime, days: int = VALID_DAYS) -> str:
    return expiring_token(key, KIND, customer_id, now + timedelta(days=days))


def member_url(settings, customer_id: int, now: datetime, days: int = VALID_DAYS) -> str:
    return f"{settings.public_url.rstrip('/')}/m/{member_token(member_key(settings), customer_id, now, days)}"


def customer_of(key: bytes, token: str, now: datetime) -> int:
    """The customer a token names; BadLink when it was not signed here, ExpiredLink when its time is over."""
    return record_of(key, KIND, token, now)
