"""Outgoing webhooks: a signed JSON POST to the URL in ``Outgoing.to``.

Headers:
- ``X-Clm-Timestamp``: Unix seconds when the request was signed;
- ``X-Clm-Signature``: ``sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``, over the exact
  body bytes, so a receiver verifies before parsing and rejects old timestamps (replays);
- ``X-Clm-Idempotency-Key``: the same on every retry of one message: receivers deduplicate on it.

Any 2xx is delivered; 408, 429, 5xx, timeouts and refused connections are retried; any other answer
(4xx, a redirect) is permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

import orjson

from clm.channels.adapters.base import Outgoing, PermanentError, SendResult, TransientError
from clm.channels.adapters.http import ProviderClient

REPLAY_TOLERANCE = 300  # seconds a receiver should accept between X-Clm-Timestamp and its own clock


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The X-Clm-Signature value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str | None, body: bytes, signature: str | None, now: float | None = None,
           tolerance: int = REPLAY_TOLERANCE) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def payload(message: Outgoing) -> dict[str, Any]:
    """``data["body"]`` when the sender built the JSON itself; otherwise the message and its data."""
    if isinstance(message.data.get("body"), dict):
        return message.data["body"]
    return {"id": message.idempotency_key, "message_id": message.message_id, "channel": message.channel,
            "text": message.text, "subject": message.subject,
            "data": {k: v for k, v in message.data.items() if k != "body"}}


@dataclass
class WebhookAdapter:
    secret: str
    timeout: float = 10.0
    channel: str = "webhook"
    provider = "webhook"
    idempotent = True  # receivers deduplicate on X-Clm-Idempotency-Key

    def __post_init__(self) -> None:
        self.http = ProviderClient("the webhook receiver", self.timeout)

    def send(self, message: Outgoing, now: float | None = None) -> SendResult:
        if not message.to.startswith(("https://", "http://")):
            raise PermanentError(f"the webhook URL {message.to!r} is not an http(s) URL", code="bad_url")
        body = orjson.dumps(payload(message))
        timestamp = str(int(time.time() if now is None else now))
        headers = {
            "Content-Type": "application/json",
            "X-Clm-Timestamp": timestamp,
            "X-Clm-Signature": sign(self.secret, timestamp, body),
            "X-Clm-Idempotency-Key": message.idempotency_key,
            **{k: v for k, v in message.headers.items() if not k.lower().startswith("x-clm-")},
        }
        response = self.http.request("POST", message.to, content=body, headers=headers)
        status = response.status_code
        if 200 <= status < 300:
            return SendResult(provider_id=None, status="delivered", detail={"http_status": status})
        if status in (408, 429):
            raise TransientError(f"the webhook receiver answered HTTP {status}; retrying later", code=status)
        if 300 <= status < 400:
            raise PermanentError(f"the webhook URL redirects (HTTP {status}); configure the final URL", code=status)
        raise PermanentError(f"the webhook receiver refused the message (HTTP {status})", code=status)
