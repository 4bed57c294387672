"""Web chat: the sites that carry the widget, and what a visitor says and reads.

A site has a public key (it is in the page's embed snippet: it names the site, it is no secret), the origins
allowed to call the chat endpoints, and the chat inbox its conversations arrive in. The visitor is the
tracking API's `anonymousId` (analytics.js keeps it in the browser): their first message resolves it to a
customer (created when new) exactly as a tracked event would, so what they said and what they browsed are one
profile, merged with the known customer when they later log in. Each message goes through
`conversations.receive` (the one entry for inbound messages), keyed by the widget's own message id, so a
message the widget sends again (a retry after a dropped connection) is stored once. The visitor reads the
messages of their conversations in the site's inbox, agents' replies included, newest after an id.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.customers.identity import IdentityResolver, Key
from clm.customers.models import Customer, Identity
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound
from clm.service.conversations import InboundIn, InboxIn, Received, receive, save_inbox
from clm.service.models import ChatSite, Conversation, Message

VISITOR = re.compile(r"^[A-Za-z0-9._:-]{8,100}$")  # analytics.js ids are UUIDs; anything id-like is accepted
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_BODY = 5_000
HISTORY = 200  # messages a visitor reads back at most


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    origins: list[str] = Field(default_factory=list, max_length=20,
                               description="https://shop.vn and the like; empty: any site may embed the widget")
    greeting: dict[str, str] = Field(default_factory=dict)
    language: str | None = Field("vi", min_length=2, max_length=8)
    active: bool = Field(True, description="A switched-off site's widget and endpoints answer 404.")


@dataclass(frozen=True)
class ChatLine:
    """A message as the visitor sees it: no internal ids beyond its own, no agent's email."""

    id: int
    direction: str
    body: str
    at: datetime
    author: str | None  # the agent's first name for replies


def _origin(value: str, where: str) -> str:
    parts = urlsplit(value.strip().rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise FieldError(where, f"{value!r} is not an origin such as https://shop.vn")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def save_site(session: Session, data: SiteIn, site_id: int | None = None) -> ChatSite:
    """Create a site (with its chat inbox and a new public key) or change one's origins and greeting."""
    name = data.name.strip()
    clash = session.scalar(sa.select(ChatSite.id).where(ChatSite.name == name))
    if clash is not None and clash != site_id:
        raise FieldError("name", f"a chat site named {name!r} already exists", "duplicate")
    origins = sorted({_origin(o, f"origins[{i}]") for i, o in enumerate(data.origins)})
    greeting = {k: v.strip()[:300] for k, v in data.greeting.items() if k in ("vi", "en") and v.strip()}
    if site_id is None:
        inbox = save_inbox(session, InboxIn(name=f"Chat: {name}"[:120], channel="chat", language=data.language))
        site = ChatSite(name=name, public_key=secrets.token_urlsafe(18), inbox_id=inbox.id, created_at=utcnow())
        session.add(site)
    else:
        site = get_site(session, site_id)
        site.name = name
    site.origins, site.greeting, site.active = origins, greeting, data.active
    session.flush()
    return site


def get_site(session: Session, site_id: int) -> ChatSite:
    site = session.get(ChatSite, site_id)
    if site is None:
        raise NotFound("chat site", site_id)
    return site


def set_active(session: Session, site_id: int, active: bool) -> ChatSite:
    """Switch a site off (its widget and chat endpoints answer 404 at once; its inbox and tickets stay) or on."""
    site = get_site(session, site_id)
    site.active = active
    session.flush()
    return site


def embed_snippet(public_url: str, site: ChatSite, language: str = "vi") -> str:
    """The script tag the shop puts before </body> on the site's pages."""
    return (f'<script src="{public_url.rstrip("/")}/static/chat-widget.js" data-key="{site.public_key}" '
            f'data-lang="{language}" async></script>')


def list_sites(session: Session) -> list[ChatSite]:
    return list(session.scalars(sa.select(ChatSite).order_by(ChatSite.name)))


def site_by_key(session: Session, key: str) -> ChatSite | None:
    """The active site with this public key (None for an unknown or switched-off one)."""
    if not key or len(key) > 64:
        return None
    site = session.scalar(sa.select(ChatSite).where(ChatSite.public_key == key))
    return site if site is not None and site.active else None


def allows(site: ChatSite, origin: str | None) -> bool:
    """Whether a page at `origin` may use the site's widget (any when the site lists no origins)."""
    if not site.origins:
        return True
    return origin is not None and origin.rstrip("/").lower() in {o.lower() for o in site.origins}


def check_visitor(anonymous_id: str | None) -> str:
    value = (anonymous_id or "").strip()
    if not VISITOR.match(value):
        raise FieldError("visitor", "must be the visitor's anonymousId (8-100 letters, digits, . _ : -)")
    return value


def visitor_customer(session: Session, anonymous_id: str) -> int | None:
    """The customer the anonymous id belongs to now (following merges), or None when it is unknown."""
    customer_id = session.scalar(sa.select(Identity.customer_id).where(Identity.kind == "anonymous_id",
                                                                       Identity.value == anonymous_id))
    hops = 0
    while customer_id is not None and hops < 10:
        merged = session.scalar(sa.select(Customer.merged_into_id).where(Customer.id == customer_id))
        if merged is None:
            break
        customer_id, hops = merged, hops + 1
    return customer_id


def _resolve(session: Session, anonymous_id: str, now: datetime) -> int:
    known = visitor_customer(session, anonymous_id)
    if known is not None:
        return known
    resolver = IdentityResolver(session, "chat")
    customer_id = resolver.resolve([Key("anonymous_id", anonymous_id)], now)
    resolver.flush()
    return resolver.current(customer_id)


def post(session: Session, site: ChatSite, anonymous_id: str, body: str, client_id: str,
         now: datetime | None = None) -> Received:
    """The visitor's message, stored once per (site, visitor, client id) on their open chat ticket."""
    now = now or utcnow()
    anonymous_id = check_visitor(anonymous_id)
    if not CLIENT_ID.match(client_id or ""):
        raise FieldError("id", "must be the widget's message id (1-64 letters, digits, _ or -)")
    text = (body or "").replace("\x00", "").strip()
    if not text:
        raise FieldError("body", "write a message first")
    if len(text) > MAX_BODY:
        raise FieldError("body", f"a message is at most {MAX_BODY:,} characters")
    customer_id = _resolve(session, anonymous_id, now)
    return receive(session, InboundIn(inbox_id=site.inbox_id, customer_id=customer_id, body=text,
                                      thread_key=f"chat:{anonymous_id}"[:255],
                                      external_id=f"chat:{site.id}:{anonymous_id}:{client_id}"[:255]), now=now)


def lines(session: Session, site: ChatSite, anonymous_id: str, after: int = 0,
          limit: int = HISTORY) -> list[ChatLine]:
    """The visitor's messages in the site's inbox with an id above `after`, oldest first (the last `limit`)."""
    customer_id = visitor_customer(session, check_visitor(anonymous_id))
    if customer_id is None:
        return []
    rows = list(session.execute(
        sa.select(Message.id, Message.direction, Message.body, Message.created_at, Message.author_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.inbox_id == site.inbox_id, Conversation.customer_id == customer_id, Message.id > after)
        .order_by(Message.id.desc()).limit(limit)))
    authors = {a for *_, a in rows if a is not None}
    names = {}
    if authors:
        names = {i: (name or "").split()[-1] if name else None
                 for i, name in session.execute(sa.select(User.id, User.name).where(User.id.in_(authors)))}
    return [ChatLine(i, d, b, at, names.get(a) if a else None) for i, d, b, at, a in reversed(rows)]
