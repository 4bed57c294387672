"""What every channel adapter takes and gives back.

The sending pipeline (``clm.channels.sending``) renders a message row into an :class:`Outgoing`,
calls ``adapter.send(outgoing)`` and records the :class:`SendResult` or the error on the row.
Adapters never touch the database: they turn an ``Outgoing`` into the provider's request and the
provider's answer into a result or one of the two errors below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Outgoing:
    """One rendered message, ready for a provider.

    ``to`` is the address the channel needs: an email address, a phone in E.164 (``+84...``), a Zalo
    user id, a Messenger page-scoped id (PSID) or a webhook URL. ``data`` carries what a channel needs
    beyond text: ZNS ``template_id`` and ``template_data``, a Messenger ``tag``, a webhook's JSON body.
    ``idempotency_key`` is stable across retries of the same message; adapters pass it to providers
    that accept one (eSMS ``RequestId``, ZNS ``tracking_id``, the webhook's ``X-Clm-Idempotency-Key``).
    """

    message_id: int
    idempotency_key: str
    channel: str
    to: str
    text: str = ""
    subject: str | None = None
    html: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    """The provider accepted the message. ``provider_id`` is its id for the message (for delivery
    reports to find the row); ``status`` is ``sent`` or, for a provider that answers with the final
    outcome, ``delivered``."""

    provider_id: str | None = None
    status: str = "sent"
    detail: dict[str, Any] = field(default_factory=dict)


class SendError(Exception):
    """The provider refused or could not be reached. ``code`` is the provider's error code (or the HTTP
    status), ``reason`` a sentence a shop owner can read."""

    transient = False

    def __init__(self, reason: str, code: str | int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.code = code


class TransientError(SendError):
    """Worth retrying later: a timeout, a 5xx, a rate limit, a refused connection."""

    transient = True


class PermanentError(SendError):
    """Retrying cannot help: a bad address, a rejected template, a 4xx, a closed Messenger window."""


class Adapter(Protocol):
    channel: str  # "email" | "sms" | "zalo" | "messenger" | "webhook"

    def send(self, message: Outgoing) -> SendResult: ...
