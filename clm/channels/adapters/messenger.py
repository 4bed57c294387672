"""Facebook Messenger Send API, honouring Meta's 24-hour standard messaging window.

Wire format: ../shared/design/PROVIDERS.md section 4. ``Outgoing.to`` is the customer's page-scoped
id (PSID); ``data["last_inbound_at"]`` is when the customer last wrote to the Page (ISO time or
None). Inside 24 h clm replies with ``RESPONSE``; outside it a message goes only with one of the
tags Meta still allows (``data["tag"]``), never for marketing, and otherwise is refused with the
reason. :func:`delivery_mode` is that decision, without I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clm.channels.adapters.base import Outgoing, PermanentError, SendResult, TransientError
from clm.channels.adapters.http import ProviderClient, json_body
from clm.lib.clock import as_utc, utcnow

STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
MAX_TEXT = 2000
# The tags left after Meta removed the legacy ones on 4 March 2020. None may carry promotions.
ALLOWED_TAGS = frozenset({"CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE", "HUMAN_AGENT"})
_OUTSIDE_WINDOW = (10, 2018278)
_RETRY_CODES = {1, 2, 4, 17, 32, 613}  # unknown/temporary errors and rate limits


@dataclass(frozen=True)
class Mode:
    """How a message goes out: ``messaging_type`` and, for MESSAGE_TAG, the tag."""

    messaging_type: str
    tag: str | None = None


def delivery_mode(last_inbound_at: datetime | None, now: datetime, tag: str | None = None,
                  promotional: bool = False) -> Mode:
    """RESPONSE inside 24 h of the customer's last message; else an allowed tag; else PermanentError.

    HUMAN_AGENT stretches the window to 7 days (for a person's reply, not automation). Tags never
    carry marketing, so a promotional message outside the window is refused whatever its tag.
    """
    elapsed = None if last_inbound_at is None else now - last_inbound_at
    if elapsed is not None and elapsed < STANDARD_WINDOW:
        return Mode("RESPONSE")
    since = ("the customer has never written to the Page" if elapsed is None
             else f"the customer last wrote to the Page {_ago(elapsed)} ago")
    if promotional:
        raise PermanentError(f"not sent: {since}, and Messenger allows marketing only within 24 hours of "
                             "the customer's last message (message tags may not carry promotions)",
                             code="outside_window")
    if not tag:
        raise PermanentError(f"not sent: {since}; outside the 24-hour window Messenger needs a message tag "
                             f"({', '.join(sorted(ALLOWED_TAGS))})", code="outside_window")
    tag = tag.strip().upper()
    if tag not in ALLOWED_TAGS:
        raise PermanentError(f"not sent: {since}, and {tag!r} is not a message tag Meta allows "
                             f"({', '.join(sorted(ALLOWED_TAGS))})", code="bad_tag")
    if tag == "HUMAN_AGENT" and (elapsed is None or elapsed >= HUMAN_AGENT_WINDOW):
        raise PermanentError(f"not sent: {since}; the HUMAN_AGENT tag covers only 7 days after the "
                             "customer's last message", code="outside_window")
    return Mode("MESSAGE_TAG", tag)


def parse_time(value: Any) -> datetime | None:
    """``data["last_inbound_at"]`` as an aware UTC time (a naive one is read as UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    try:
        return as_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        raise PermanentError(f"last_inbound_at {value!r} is not an ISO 8601 time", code="bad_data") from None


@dataclass
class MessengerAdapter:
    page_token: str
    graph_url: str = "https://graph.facebook.com/v25.0"
    app_secret: str | None = None  # CLM_MESSENGER_APP_SECRET: every call then carries appsecret_proof
    timeout: float = 10.0
    channel: str = "messenger"
    provider = "messenger"
    idempotent = False

    def __post_init__(self) -> None:
        self.http = ProviderClient("Messenger", self.timeout)

    def request_body(self, message: Outgoing, now: datetime | None = None) -> dict:
        if not message.to:
            raise PermanentError("the customer has no Messenger id (PSID)", code="no_address")
        if not message.text:
            raise PermanentError("the Messenger message has no text", code="empty")
        if len(message.text) > MAX_TEXT:
            raise PermanentError(f"Messenger text is limited to {MAX_TEXT} characters; this one has "
                                 f"{len(message.text)}", code="too_long")
        mode = delivery_mode(parse_time(message.data.get("last_inbound_at")), now or utcnow(),
                             message.data.get("tag"), message.data.get("purpose") == "marketing")
        body: dict[str, Any] = {"recipient": {"id": message.to}, "messaging_type": mode.messaging_type,
                                "message": {"text": message.text}}
        if mode.tag:
            body["tag"] = mode.tag
        return body

    def send(self, message: Outgoing) -> SendResult:
        body = self.request_body(message)
        response = self.http.request("POST", self.graph_url.rstrip("/") + "/me/messages", json=body,
                                     params=self.auth_params())
        answer = json_body(response) or {}
        if response.status_code < 300 and answer.get("message_id"):
            return SendResult(provider_id=str(answer["message_id"]), status="sent",
                              detail={"provider": "messenger", "messaging_type": body["messaging_type"],
                                      **({"tag": body["tag"]} if "tag" in body else {})})
        raise error_for(answer, response.status_code)


    def auth_params(self) -> dict[str, str]:
        """The Page token and, with the app secret, its ``appsecret_proof``: Meta's "Require App Secret"
        setting refuses Graph calls without it, and with it a leaked token is useless without the secret."""
        params = {"access_token": self.page_token}
        if self.app_secret:
            params["appsecret_proof"] = appsecret_proof(self.page_token, self.app_secret)
        return params


def appsecret_proof(access_token: str, app_secret: str) -> str:
    """HMAC-SHA256 of the access token keyed with the app secret, in hex (Graph API "Securing Requests")."""
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


def error_for(answer: dict, status: int) -> PermanentError | TransientError:
    """The Graph API's ``{"error": {...}}`` answer as one of the two errors."""
    error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
    code, subcode = error.get("code"), error.get("error_subcode")
    said = f"Messenger {code}" + (f"/{subcode}" if subcode else "") + (f": {error['message']}" if error.get("message") else "")
    if (code, subcode) == _OUTSIDE_WINDOW:
        return PermanentError(f"Meta says the message is outside the allowed window ({said})", code=code)
    if code == 551:
        return PermanentError(f"the person is not available on Messenger ({said})", code=code)
    if code == 190:
        return TransientError(f"the Page access token is invalid or expired: set CLM_MESSENGER_PAGE_TOKEN "
                              f"({said})", code=code)
    if "appsecret_proof" in str(error.get("message", "")):  # an account setting, not this message
        return TransientError(f"Meta refused the call's appsecret_proof: set CLM_MESSENGER_APP_SECRET to the "
                              f"app's secret ({said})", code=code)
    if code in _RETRY_CODES or status == 429:
        return TransientError(f"Messenger asks to retry later ({said})", code=code or status)
    if not error:
        return TransientError(f"Messenger answered HTTP {status} without a message id", code=status)
    return PermanentError(f"Messenger refused the message ({said})", code=code)


def _ago(elapsed: timedelta) -> str:
    hours = elapsed.total_seconds() / 3600
    return f"{hours:.0f} hours" if hours < 72 else f"{hours / 24:.0f} days"
