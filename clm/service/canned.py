"""Canned replies: ready answers agents insert (and triggers and macros send), with variables, per language.

A body is a Jinja2 template run in a sandbox with StrictUndefined: a misspelt variable is refused when the
reply is saved or rendered, never sent as an empty hole. Variables: `customer` (name, given_name, email,
phone, city), `ticket` (number, subject, status, priority, channel) and `agent` (name, email: the agent
answering, or the ticket's assignee). The output is plain text; pages escape it when they show it.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
import sqlalchemy as sa
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.customers.models import Customer
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound
from clm.service.desk_models import CannedReply
from clm.service.models import Ticket

KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
LANGUAGES = ("vi", "en")
MAX_BODY = 20_000


class CannedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=KEY.pattern, description="lowercase letters, digits, . _ -; what agents type after /")
    title: str = Field(min_length=1, max_length=120)
    bodies: dict[str, str] = Field(description='The text per language: {"vi": "...", "en": "..."}')
    active: bool = True


@lru_cache(maxsize=1)
def _env() -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=256)
def _compiled(source: str) -> jinja2.Template:
    return _env().from_string(source)


SAMPLE = {"customer": {"name": "Nguyễn Văn An", "given_name": "An", "email": "an@example.vn", "phone": "+84912345678",
                       "city": "Hà Nội"},
          "ticket": {"number": "TK-000001", "subject": "Đơn hàng", "status": "open", "priority": "normal",
                     "channel": "zalo"},
          "agent": {"name": "Lan", "email": "lan@shop.vn"}}


def _render(source: str, variables: dict[str, Any], where: str) -> str:
    try:
        return _compiled(source).render(**variables).strip()
    except jinja2.TemplateSyntaxError as exc:
        raise FieldError(where, f"template error on line {exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise FieldError(where, f"{exc.message}; the variables are customer, ticket and agent") from None
    except jinja2.TemplateError as exc:
        raise FieldError(where, str(exc)) from None


def save_canned(session: Session, data: CannedIn, reply_id: int | None = None, now: datetime | None = None) -> CannedReply:
    """Add or change a canned reply; every body must render with sample variables (a typo is refused here)."""
    now = now or utcnow()
    bodies = {lang: text.strip() for lang, text in data.bodies.items()}
    if not bodies:
        raise FieldError("bodies", "give the text in at least one language (vi, en)")
    for lang, text in bodies.items():
        if lang not in LANGUAGES:
            raise FieldError(f"bodies.{lang}", f"the languages are {', '.join(LANGUAGES)}")
        if not text or len(text) > MAX_BODY:
            raise FieldError(f"bodies.{lang}", f"must be 1 to {MAX_BODY} characters")
        _render(text, SAMPLE, f"bodies.{lang}")
    clash = session.scalar(sa.select(CannedReply.id).where(CannedReply.key == data.key))
    if clash is not None and clash != reply_id:
        raise FieldError("key", f"a canned reply with key {data.key!r} already exists", "duplicate")
    if reply_id is None:
        row = CannedReply(created_at=now)
        session.add(row)
    else:
        row = get_canned(session, reply_id)
    row.key, row.title, row.bodies, row.active, row.updated_at = data.key, data.title.strip(), bodies, data.active, now
    session.flush()
    return row


def get_canned(session: Session, reply_id: int) -> CannedReply:
    row = session.get(CannedReply, reply_id)
    if row is None:
        raise NotFound("canned reply", reply_id)
    return row


def canned_by_key(session: Session, key: str) -> CannedReply:
    row = session.scalar(sa.select(CannedReply).where(CannedReply.key == key))
    if row is None:
        raise NotFound("canned reply", key)
    return row


def list_canned(session: Session, q: str | None = None, active_only: bool = False) -> list[CannedReply]:
    """Canned replies by key; `q` keeps those whose key or title starts a word with it (diacritics ignored)."""
    from clm.lib.text import fold

    rows = list(session.scalars(sa.select(CannedReply).order_by(CannedReply.key)))
    if active_only:
        rows = [r for r in rows if r.active]
    if q:
        needle = fold(q).lower()
        rows = [r for r in rows if needle in fold(f"{r.key} {r.title}").lower()]
    return rows


def variables(session: Session, ticket: Ticket, agent_id: int | None) -> dict[str, Any]:
    customer = session.get(Customer, ticket.customer_id)
    agent = session.get(User, agent_id or ticket.assignee_id) if (agent_id or ticket.assignee_id) else None
    return {
        "customer": {"name": customer.full_name or customer.given_name or "", "given_name": customer.given_name or "",
                     "email": customer.email or "", "phone": customer.phone or "", "city": customer.city or ""},
        "ticket": {"number": ticket.number, "subject": ticket.subject, "status": ticket.status,
                   "priority": ticket.priority, "channel": ticket.channel},
        "agent": {"name": agent.name if agent else "", "email": agent.email if agent else ""},
    }


def language_for(session: Session, ticket: Ticket, reply: CannedReply) -> str:
    """The ticket's language, else the customer's `locale` trait, else Vietnamese; the first body there is."""
    customer = session.get(Customer, ticket.customer_id)
    for lang in (ticket.language, (customer.traits or {}).get("locale") if customer else None, "vi", "en"):
        if lang in reply.bodies:
            return lang
    return next(iter(reply.bodies))


def render_canned(session: Session, reply: CannedReply, ticket: Ticket, *, agent_id: int | None = None,
                  language: str | None = None) -> str:
    """The reply's text for this ticket, in `language` or the ticket's."""
    lang = language if language in (reply.bodies or {}) else language_for(session, ticket, reply)
    return _render(reply.bodies[lang], variables(session, ticket, agent_id), f"bodies.{lang}")
