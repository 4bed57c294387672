"""CSRF protection for the dashboard: every unsafe request carries the session's token.

Forms send it in a hidden `csrf_token` field, HTMX requests in the `X-CSRF-Token` header (set once
with hx-headers on <body>). The JSON API and the tracking API don't use cookies, so they need none.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from clm.web.auth import web_session

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


class CsrfFailed(Exception):
    """The token is missing or wrong: answered with 403 and a page saying to reload."""


def csrf_token(request: Request) -> str:
    return web_session(request)["c"]


async def csrf_protect(request: Request) -> None:
    """Dependency of every dashboard route: unsafe methods must present the session's token."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(HEADER)
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = (await request.form()).get(FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(sent, csrf_token(request)):
        raise CsrfFailed()
