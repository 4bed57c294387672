"""What the service pages share: the clock, refusals shown by name, the agent's own row, channel limits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from clm.lib.errors import FieldError
from clm.service.errors import ServiceConflict
from clm.service.models import Agent
from clm.web import i18n

# What the composer allows per channel: the longest reply and how the channel counts it.
CHANNEL_LIMITS = {"sms": 480, "zalo": 2000, "messenger": 2000, "chat": 5000, "web": 5000, "email": 100_000,
                  "api": 100_000}


def now_of(request: Request) -> datetime:
    return request.app.state.dashboard_clock()


def translator(request: Request, user):
    return i18n.translator(i18n.pick_locale(request, user))


def refusal(request: Request, user, exc: Exception) -> tuple[str, int]:
    """A refused change as one sentence naming the field, and its status (422 bad input, 409 state)."""
    t = translator(request, user)
    field = getattr(exc, "field", None)
    message = getattr(exc, "message", None) or str(exc)
    text = f"{field}: {message}" if field else message
    return t("service.refused", message=text), 409 if isinstance(exc, ServiceConflict) else 422


def my_agent(db: Session, user) -> Agent | None:
    return db.get(Agent, user.id)


def check_reply(channel: str, body: str) -> str:
    text = (body or "").strip()
    if not text:
        raise FieldError("body", "write the reply first")
    if channel == "phone":
        raise FieldError("body", "a call is answered on the phone; write a note instead")
    limit = CHANNEL_LIMITS.get(channel, 100_000)
    if len(text) > limit:
        raise FieldError("body", f"a {channel} reply is at most {limit:,} characters ({len(text):,} written)")
    return text


def ints(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 19 else None
