"""Email tracking and the customer's own controls: open pixel, signed click links, unsubscribe, preferences.

Every link carries an HMAC-SHA256 signature (key: CLM_TRACKING_SECRET, else derived from
CLM_SECRET_KEY) over what it names, so a link cannot be edited to point elsewhere (no open redirect) or
to unsubscribe someone else: a tampered link is refused with a 4xx and changes nothing.

Each action is recorded as the message's status and as a customer event (`Email Opened`,
`Email Link Clicked`, `Unsubscribed`); unsubscribing records a consent withdrawal through
clm.customers.consent, adds the address to the suppression list and stops what is still queued.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html as html_lib
import re
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.channels.guardrails import normalize_address
from clm.channels.models import WAITING, Message, Suppression
from clm.channels.status import record_status
from clm.channels.timeline import record_customer_event
from clm.customers.consent import record_consent
from clm.lib.clock import utcnow

KINDS = {"o": "open", "c": "click", "u": "unsubscribe", "p": "preferences"}
PREFERENCE_CHANNELS = ("email", "sms", "zalo", "messenger")
_HREF = re.compile(r"""(href\s*=\s*)(["'])(https?://[^"']+)\2""", re.IGNORECASE)


class BadLink(ValueError):
    """The link's signature does not match what it names (edited, truncated or from elsewhere)."""


def secret(settings) -> bytes:
    if settings.tracking_secret is not None:
        return settings.tracking_secret.get_secret_value().encode()
    base = settings.secret_key.get_secret_value().encode()
    return hmac.new(base, b"clm channels tracking links", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, kind: str, payload: str) -> str:
    """A token for `payload`: base64url(payload).base64url(HMAC(kind + payload))[:16 bytes].

    Only URL-safe base64 letters and a dot: a token needs no escaping in HTML."""
    raw = payload.encode()
    mac = hmac.digest(key, kind.encode() + b"\0" + raw, "sha256")[:16]
    return f"{_b64(raw)}.{_b64(mac)}"


@lru_cache(maxsize=1024)
def _unescaped(url: str) -> str:
    # A broadcast's HTML carries the same few links for every recipient.
    return html_lib.unescape(url)


def verify(key: bytes, kind: str, token: str) -> str:
    """The payload of a token made by `sign`; BadLink when it was not."""
    try:
        body, mac = token.split(".", 1)
        raw = _unb64(body)
        given = _unb64(mac)
    except (ValueError, TypeError) as exc:
        raise BadLink("the link is malformed") from exc
    expected = hmac.digest(key, kind.encode() + b"\0" + raw, "sha256")[:16]
    if not hmac.compare_digest(given, expected):
        raise BadLink("the link's signature does not match")
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise BadLink("the link is malformed") from exc


def message_id_of(key: bytes, kind: str, token: str) -> int:
    payload = verify(key, kind, token)
    try:
        return int(payload.split("\n", 1)[0])
    except ValueError as exc:
        raise BadLink("the link is malformed") from exc


class Links:
    """The signed URLs of one message."""

    def __init__(self, settings, message_id: int, key: bytes | None = None):
        self.base = settings.public_url.rstrip("/")
        self.key = key if key is not None else secret(settings)
        self.message_id = message_id

    def open_pixel(self) -> str:
        return f"{self.base}/t/o/{sign(self.key, 'o', str(self.message_id))}.gif"

    def click(self, url: str) -> str:
        token = sign(self.key, "c", f"{self.message_id}\n" + url)
        return f"{self.base}/t/c/{token}"

    def unsubscribe(self) -> str:
        return f"{self.base}/t/u/{sign(self.key, 'u', str(self.message_id))}"

    def preferences(self) -> str:
        return f"{self.base}/t/p/{sign(self.key, 'p', str(self.message_id))}"

    def track_html(self, html: str) -> str:
        """Links through the click redirect (our own /t/ links stay), and the open pixel at the end."""
        own = f"{self.base}/t/"
        base = _escaped(self.base)  # tokens are URL-safe base64: only the base can need escaping
        prefix, key = f"{self.message_id}\n", self.key

        def swap(match: re.Match) -> str:
            url = _unescaped(match.group(3))
            if url.startswith(own):
                return match.group(0)
            quote = match.group(2)
            return f"{match.group(1)}{quote}{base}/t/c/{sign(key, 'c', prefix + url)}{quote}"

        tracked = _HREF.sub(swap, html)
        pixel = (f'<img src="{base}/t/o/{sign(key, "o", str(self.message_id))}.gif" width="1" height="1" alt="" '
                 'style="display:none">')
        at = tracked.lower().rfind("</body>")
        return tracked[:at] + pixel + tracked[at:] if at >= 0 else tracked + pixel


@lru_cache(maxsize=16)
def _escaped(text: str) -> str:
    return html_lib.escape(text)


def click_target(settings, token: str) -> tuple[int, str]:
    payload = verify(secret(settings), "c", token)
    head, _, url = payload.partition("\n")
    if not head.isdigit() or not url.startswith(("http://", "https://")):
        raise BadLink("the link is malformed")
    return int(head), url


# --- recording what the customer did ----------------------------------------------------------------


def record_open(session: Session, message_id: int, at: datetime | None = None) -> Message | None:
    message = session.get(Message, message_id)
    if message is None:
        return None
    at = at or utcnow()
    if record_customer_event(session, message.customer_id, "Email Opened", _props(message),
                             key=f"clm:message:{message.id}:opened", at=at):
        record_status(session, message, "opened", at=at)
    return message


def record_click(session: Session, message_id: int, url: str, at: datetime | None = None) -> Message | None:
    message = session.get(Message, message_id)
    if message is None:
        return None
    at = at or utcnow()
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    if record_customer_event(session, message.customer_id, "Email Link Clicked", {**_props(message), "url": url},
                             key=f"clm:message:{message.id}:click:{digest}", at=at):
        record_status(session, message, "clicked", detail={"url": url}, at=at)
    return message


def _props(message: Message) -> dict[str, Any]:
    props: dict[str, Any] = {"message_id": message.id, "channel": message.channel, "template": message.template_key}
    if message.broadcast_id is not None:
        props["broadcast_id"] = message.broadcast_id
    if message.journey_id is not None:
        props["journey_id"] = message.journey_id
    return props


def _marketing_granted(session: Session, customer_id: int, channel: str) -> bool | None:
    from clm.customers.models import Consent

    return session.scalar(sa.select(Consent.granted).where(
        Consent.customer_id == customer_id, Consent.channel == channel, Consent.purpose == "marketing")
        .order_by(Consent.recorded_at.desc(), Consent.id.desc()).limit(1))


def stop_queued(session: Session, customer_id: int, channel: str, reason: str) -> int:
    """Marketing still waiting for `customer_id` on `channel` is suppressed now (the send-time check
    would stop it anyway; this makes the outbox say so at once)."""
    waiting = list(session.scalars(sa.select(Message).where(
        Message.customer_id == customer_id, Message.channel == channel, Message.purpose == "marketing",
        Message.status.in_(WAITING))))
    for message in waiting:
        record_status(session, message, "suppressed", reason=reason, force=True)
    return len(waiting)


def unsubscribe(session: Session, message_id: int, source: str = "unsubscribe link",
                at: datetime | None = None) -> Message | None:
    """One-click unsubscribe from the message's channel (marketing). Idempotent: a repeat changes nothing."""
    message = session.get(Message, message_id)
    if message is None:
        return None
    at = at or utcnow()
    channel = message.channel
    if _marketing_granted(session, message.customer_id, channel) is not False:
        record_consent(session, message.customer_id, channel=channel, purpose="marketing", granted=False,
                       source=source, evidence=f"message {message.id}", recorded_at=at)
    address = normalize_address(channel, message.address)
    if address and session.scalar(sa.select(Suppression.id).where(
            Suppression.channel == channel, Suppression.address == address,
            Suppression.reason == "unsubscribe")) is None:
        session.add(Suppression(channel=channel, address=address, reason="unsubscribe", customer_id=message.customer_id,
                                message_id=message.id, detail=source, at=at))
    if record_customer_event(session, message.customer_id, "Unsubscribed", {**_props(message), "source": source},
                             key=f"clm:message:{message.id}:unsubscribed", at=at):
        record_status(session, message, "unsubscribed", reason=source, at=at)
    stop_queued(session, message.customer_id, channel, f"consent for {channel} marketing was withdrawn")
    session.flush()
    return message


def preferences(session: Session, message_id: int) -> tuple[Message, dict[str, bool]] | None:
    """The customer's marketing choices per channel, as the preference page shows them."""
    message = session.get(Message, message_id)
    if message is None:
        return None
    return message, {ch: bool(_marketing_granted(session, message.customer_id, ch)) for ch in PREFERENCE_CHANNELS}


def save_preferences(session: Session, message_id: int, wanted: dict[str, bool],
                     at: datetime | None = None) -> dict[str, bool] | None:
    """Record a consent decision for each channel whose choice changed; withdrawing stops what is queued."""
    found = preferences(session, message_id)
    if found is None:
        return None
    message, current = found
    at = at or utcnow()
    for channel in PREFERENCE_CHANNELS:
        choice = bool(wanted.get(channel, False))
        if choice == current[channel]:
            continue
        record_consent(session, message.customer_id, channel=channel, purpose="marketing", granted=choice,
                       source="preference page", evidence=f"message {message.id}", recorded_at=at)
        if not choice:
            stop_queued(session, message.customer_id, channel, f"consent for {channel} marketing was withdrawn")
            record_customer_event(session, message.customer_id, "Unsubscribed",
                                  {**_props(message), "channel": channel, "source": "preference page"},
                                  key=f"clm:message:{message.id}:prefs:{channel}:{at.isoformat()}", at=at)
        current[channel] = choice
    session.flush()
    return current
