"""Dashboard sessions: a signed cookie naming the user, the guards pages use, and login throttling.

The cookie holds `{"u": user id, "c": CSRF token, "h": password-hash fingerprint, "t": issued at}`,
signed with HMAC-SHA256 under CLM_SECRET_KEY. Nothing secret is inside, so signing is enough; the user
is reloaded on every request, so a deactivated user or a changed password ends the session at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.access.users import can
from clm.web.deps import get_session

COOKIE = "clm_session"


class LoginRequired(Exception):
    """No valid session: the dashboard answers with a redirect to /login?next=..."""

    def __init__(self, next_url: str):
        self.next_url = next_url


class PermissionDenied(Exception):
    """Logged in, but the role lacks `permission`: the dashboard answers 403 with a page."""

    def __init__(self, permission: str):
        self.permission = permission


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs small JSON payloads; `load` returns None for anything forged, damaged or too old."""

    def __init__(self, secret: str, purpose: str = "clm.session"):
        self._key = hashlib.sha256(f"{purpose}:{secret}".encode()).digest()

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def dump(self, payload: dict[str, Any]) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._mac(body)}"

    def load(self, token: str | None, max_age: int, now: float | None = None) -> dict[str, Any] | None:
        if not token or token.count(".") != 1:
            return None
        body, mac = token.split(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            payload = json.loads(_unb64(body))
        except ValueError:
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("t"), int | float):
            return None
        if (now or time.time()) - payload["t"] > max_age:
            return None
        return payload


def fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:12]


def web_session(request: Request) -> dict[str, Any]:
    """This request's session data (a fresh one, with a new CSRF token, when the cookie is missing or bad)."""
    if not hasattr(request.state, "web_session"):
        settings = request.app.state.settings
        signer = Signer(settings.secret_key.get_secret_value())
        data = signer.load(request.cookies.get(COOKIE), settings.session_max_age)
        if data is None or not isinstance(data.get("c"), str):
            data = {"c": secrets.token_urlsafe(24), "t": int(time.time())}
            request.state.session_changed = True
        request.state.web_session = data
    return request.state.web_session


def start_session(request: Request, user: User) -> None:
    """Log `user` in: a new session with a new CSRF token (the old one may have been seen by others)."""
    request.state.web_session = {"u": user.id, "h": fingerprint(user.password_hash),
                                 "c": secrets.token_urlsafe(24), "t": int(time.time())}
    request.state.session_changed = True


def end_session(request: Request) -> None:
    request.state.web_session = {"c": secrets.token_urlsafe(24), "t": int(time.time())}
    request.state.session_changed = True


def save_session(request: Request, response) -> None:
    """Write the cookie onto `response` when this request changed the session."""
    if not getattr(request.state, "session_changed", False):
        return
    settings = request.app.state.settings
    token = Signer(settings.secret_key.get_secret_value()).dump(request.state.web_session)
    response.set_cookie(COOKIE, token, max_age=settings.session_max_age, httponly=True, samesite="lax",
                        secure=settings.session_cookie_secure, path="/")


def current_user(request: Request, db: Session = Depends(get_session)) -> User | None:
    """The logged-in, active user, or None."""
    if hasattr(request.state, "user"):
        return request.state.user
    data = web_session(request)
    user = None
    if isinstance(data.get("u"), int):
        found = db.get(User, data["u"])
        if found is not None and found.active and data.get("h") == fingerprint(found.password_hash):
            user = found
    request.state.user = user
    return user


def require(permission: str) -> Callable[..., User]:
    """A dependency admitting a logged-in user whose role grants `permission`."""

    def guard(request: Request, user: User | None = Depends(current_user)) -> User:
        if user is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(target if request.method == "GET" else "/")
        if not can(user, permission):
            raise PermissionDenied(permission)
        return user

    guard.permission = permission  # read by the access tests
    return guard


def require_login(request: Request, user: User | None = Depends(current_user)) -> User:
    if user is None:
        raise LoginRequired("/")
    return user


class LoginThrottle:
    """At most `limit` failed logins per `window` seconds for one email and for one client address."""

    def __init__(self, limit: int = 10, window: float = 300.0, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and self.clock() - times[0] > self.window:
            times.popleft()
        return times

    def blocked(self, *keys: str) -> bool:
        with self._lock:
            return any(len(self._recent(k)) >= self.limit for k in keys)

    def failed(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._recent(k).append(self.clock())
            if len(self._failures) > 10_000:  # forget idle keys rather than grow without bound
                for k in [k for k, v in self._failures.items() if not v]:
                    del self._failures[k]

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._failures.pop(k, None)
