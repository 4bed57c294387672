"""Zalo ZNS template messages sent to a phone number, and OA consultation messages to a follower.

Wire format: ../shared/design/PROVIDERS.md section 3. The OA access token goes in a custom
``access_token`` header; Zalo answers HTTP 200 with ``error`` in the body (0 is success). The phone
is sent as ``84xxxxxxxxx``; ``tracking_id`` is the message's idempotency key, which the delivery
webhook (``user_received_message``) hands back next to ``msg_id``.

A message whose data names ``zalo_user_id`` (an agent's answer to someone who wrote to the OA) goes as
free text to ``{oa_url}/v3.0/oa/message/cs`` instead: ``{"recipient": {"user_id": ...}, "message":
{"text": ...}}`` with the same OA access token, at most 2000 characters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clm.channels.adapters.base import Outgoing, PermanentError, SendResult, TransientError
from clm.channels.adapters.http import ProviderClient, json_body, vn_international

SEND_PATH = "/message/template"
CS_PATH = "/v3.0/oa/message/cs"
MAX_CS_TEXT = 2000
TOKEN_EXPIRED = -124
_TRACKING_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,48}$")

# Errors about the app, the OA or Zalo itself: retried (they pass once the setup is fixed).
_ACCOUNT_CODES = {
    -100: "Zalo had an unknown error",
    -101: "the Zalo application is invalid",
    -102: "the Zalo application does not exist",
    -103: "the Zalo application is not activated",
    -104: "the Zalo app secret key is invalid",
    -105: "the Zalo application is not linked to an OA",
    TOKEN_EXPIRED: "the Zalo access token is invalid or expired: renew CLM_ZALO_ACCESS_TOKEN, or set "
                   "CLM_ZALO_APP_SECRET, CLM_ZALO_REFRESH_TOKEN and CLM_ZALO_TOKEN_FILE so clm refreshes it",
}
_MESSAGE_CODES = {
    -106: "Zalo does not support this method",
    -107: "the message id is invalid",
    -108: "the phone number is not valid for Zalo",
    -109: "the ZNS template id is not valid",
    -110: "the recipient's Zalo version cannot show ZNS messages",
    -111: "the ZNS template data is empty",
    -114: "the recipient is inactive on Zalo or refused the message",
    -118: "the phone number has no Zalo account",
}


@dataclass
class ZaloZnsAdapter:
    access_token: str
    url: str = "https://business.openapi.zalo.me"
    oa_url: str = "https://openapi.zalo.me"  # the OA API: consultation messages to followers
    timeout: float = 10.0
    # Called once with the token Zalo refused as expired; returns a newer one (or None if it cannot).
    refresh: Callable[[str], str | None] | None = None
    channel: str = "zalo"
    provider = "zalo"
    # tracking_id is for reconciliation; Zalo does not document refusing a repeated one.
    idempotent = False
    _token: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.http = ProviderClient("Zalo", self.timeout)
        self._token = self.access_token

    def request_body(self, message: Outgoing) -> dict:
        template_id = message.data.get("template_id")
        if not template_id:
            raise PermanentError("a ZNS message needs a template id (data.template_id)", code="no_template")
        template_data = message.data.get("template_data") or {}
        if not isinstance(template_data, dict):
            raise PermanentError("ZNS template data must be an object of parameter -> value", code="bad_template_data")
        return {
            "phone": vn_international(message.to, "Zalo ZNS"),
            "template_id": str(template_id),
            "template_data": {str(k): _text(v) for k, v in template_data.items()},
            "tracking_id": tracking_id(message.idempotency_key),
        }

    def consultation_body(self, message: Outgoing) -> dict:
        text = (message.text or "").strip()
        if not text:
            raise PermanentError("a Zalo OA message needs text", code="no_text")
        if len(text) > MAX_CS_TEXT:
            raise PermanentError(f"a Zalo OA message holds at most {MAX_CS_TEXT} characters, not {len(text)}",
                                 code="too_long")
        return {"recipient": {"user_id": str(message.data["zalo_user_id"])}, "message": {"text": text}}

    def send(self, message: Outgoing) -> SendResult:
        if message.data.get("zalo_user_id"):
            body, url = self.consultation_body(message), self.oa_url.rstrip("/") + CS_PATH
        else:
            body, url = self.request_body(message), self.url.rstrip("/") + SEND_PATH
        answer = self._post(body, url)
        if answer.get("error") == TOKEN_EXPIRED and self.refresh is not None:
            fresh = self.refresh(self._token)
            if fresh and fresh != self._token:
                self._token = fresh
                answer = self._post(body, url)
        return read_answer(answer)

    def _post(self, body: dict, url: str) -> dict:
        response = self.http.request("POST", url, json=body, headers={"access_token": self._token})
        answer = json_body(response)
        if response.status_code == 429:
            raise TransientError("Zalo is rate limiting requests", code=429)
        if answer is None or "error" not in answer:
            raise TransientError(f"Zalo answered HTTP {response.status_code} without an error code",
                                 code="bad_answer")
        return answer


def tracking_id(idempotency_key: str) -> str:
    """Zalo asks for at most 48 characters without special ones: other keys become a stable digest."""
    if _TRACKING_ID.match(idempotency_key):
        return idempotency_key
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:48]


def read_answer(answer: dict[str, Any]) -> SendResult:
    try:
        code = int(answer.get("error"))
    except (TypeError, ValueError):
        raise TransientError("Zalo answered without a numeric error code", code="bad_answer") from None
    message = str(answer.get("message") or "")
    if code == 0:
        data = answer.get("data") or {}
        msg_id = data.get("msg_id") or data.get("message_id")  # ZNS: msg_id; OA consultation: message_id
        return SendResult(provider_id=None if msg_id is None else str(msg_id), status="sent",
                          detail={"provider": "zalo", "sent_time": data.get("sent_time"),
                                  "quota": data.get("quota")})
    said = f"Zalo {code}: {message}" if message else f"Zalo {code}"
    if code in _ACCOUNT_CODES or "quota" in message.lower():
        reason = _ACCOUNT_CODES.get(code, "the OA is out of ZNS quota for today")
        raise TransientError(f"{reason} ({said})", code=code)
    raise PermanentError(f"{_MESSAGE_CODES.get(code, 'Zalo refused the message')} ({said})", code=code)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
