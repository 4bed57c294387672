"""Our own Message-IDs, signed, and the ticket token in subjects: how a customer's answer finds its ticket.

An agent's reply goes out with ``Message-ID: <clm.t<ticket>.m<message>.<hmac>@domain>``. Mail clients
put it in ``In-Reply-To`` / ``References`` of the answer, and the HMAC (keyed from CLM_SECRET_KEY) proves
that clm made it: a forged or edited id is ignored, so nobody can thread mail onto a ticket by guessing
numbers. The subject token (``[TK-000123]``) is weaker evidence (anyone can type it) and is accepted only
from the ticket's customer or someone copied on it (clm.service.mail.inbound).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

_SIGNED = re.compile(r"^<?clm\.t(\d{1,19})\.m(\d{1,19})\.([0-9a-f]{20})@[^>\s]+>?$")
_TOKEN = re.compile(r"\[?\b(TK-\d{6,12})\b\]?", re.IGNORECASE)
_ANGLE = re.compile(r"<[^<>\s]{1,900}>")


@dataclass(frozen=True)
class Signed:
    ticket_id: int
    message_id: int


def key(settings) -> bytes:
    """The signing key, derived from CLM_SECRET_KEY (its own purpose, so it never equals another key)."""
    base = settings.secret_key.get_secret_value().encode()
    return hmac.new(base, b"clm service mail message ids", hashlib.sha256).digest()


def _mac(secret: bytes, ticket_id: int, message_id: int) -> str:
    return hmac.new(secret, f"{ticket_id}.{message_id}".encode(), hashlib.sha256).hexdigest()[:20]


def make(secret: bytes, ticket_id: int, message_id: int, domain: str) -> str:
    """The Message-ID of the service message `message_id` on ticket `ticket_id`, with angle brackets."""
    return f"<clm.t{ticket_id}.m{message_id}.{_mac(secret, ticket_id, message_id)}@{domain or 'clm.invalid'}>"


def read(secret: bytes, value: str) -> Signed | None:
    """The ticket and message a Message-ID names, when clm signed it; None for anyone else's or a forgery."""
    match = _SIGNED.match(value.strip())
    if not match:
        return None
    ticket_id, message_id, mac = int(match[1]), int(match[2]), match[3]
    if not hmac.compare_digest(mac, _mac(secret, ticket_id, message_id)):
        return None
    return Signed(ticket_id, message_id)


def ids_in(header: str | None) -> list[str]:
    """The message ids in an In-Reply-To or References header, in order (`<...>` each)."""
    return _ANGLE.findall(header or "")


def subject_token(subject: str | None) -> str | None:
    """The ticket number quoted in a subject (``Re: Đổi size [TK-000123]``), upper-cased."""
    match = _TOKEN.search(subject or "")
    return match[1].upper() if match else None


def reply_subject(subject: str, number: str) -> str:
    """``Re: <subject> [TK-000123]``: one "Re:", and the token once."""
    text = subject.strip()
    if subject_token(text) != number:
        text = f"{text} [{number}]"
    return text if re.match(r"^(re|tl|trả lời)\s*:", text, re.IGNORECASE) else f"Re: {text}"
