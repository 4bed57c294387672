"""SpeedSMS.vn: SMS over its JSON API, with the access token as the basic-auth user name.

Wire format: ../shared/design/PROVIDERS.md section 2. Success is ``status == "success"`` and
``code == "00"``; ``data.tranId`` is the id delivery reports carry. SpeedSMS takes no idempotency
key, so clm sends one recipient per request and the outbox's claim keeps a message from being
sent twice; a timeout after the request left is the one case where the outcome is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

from clm.channels.adapters.base import Outgoing, PermanentError, SendResult, TransientError
from clm.channels.adapters.http import ProviderClient, json_body, vn_international

SEND_PATH = "/sms/send"
_NEEDS_SENDER = {3, 5, 7, 8}
_ACCOUNT_CODES = {
    "007": "SpeedSMS locked this server's IP address",
    "008": "the SpeedSMS account is blocked",
    "009": "the SpeedSMS account may not use the API",
    "300": "the SpeedSMS balance is too low: top up the account",
    "500": "SpeedSMS had an internal error",
}
_MESSAGE_CODES = {
    "101": "SpeedSMS rejected the parameters",
    "105": "the phone number is not valid for SpeedSMS",
    "110": "SpeedSMS does not support the text's encoding",
    "113": "the text is too long for SpeedSMS",
}


@dataclass
class SpeedSmsAdapter:
    token: str
    sender: str = ""
    sms_type: int = 3
    url: str = "https://api.speedsms.vn/index.php"
    timeout: float = 10.0
    channel: str = "sms"
    provider = "speedsms"
    idempotent = False  # no idempotency key: a resend is a second SMS

    def __post_init__(self) -> None:
        if not 1 <= self.sms_type <= 8:
            raise ValueError("CLM_SPEEDSMS_SMS_TYPE must be between 1 and 8")
        if self.sms_type in _NEEDS_SENDER and not self.sender:
            raise ValueError(f"SpeedSMS sms_type {self.sms_type} needs a sender: set CLM_SPEEDSMS_SENDER")
        self.http = ProviderClient("SpeedSMS", self.timeout)

    def request_body(self, message: Outgoing) -> dict:
        if not message.text:
            raise PermanentError("the SMS has no text", code="empty")
        return {"to": [vn_international(message.to, "SpeedSMS")], "content": message.text,
                "sms_type": self.sms_type, "sender": self.sender}

    def send(self, message: Outgoing) -> SendResult:
        body = self.request_body(message)
        response = self.http.request("POST", self.url.rstrip("/") + SEND_PATH, json=body, auth=(self.token, "x"))
        if response.status_code == 429:
            reset = response.headers.get("X-Rate-Limit-Reset")
            raise TransientError("SpeedSMS is rate limiting requests (60 a minute)"
                                 + (f"; it resets in {reset} s" if reset else ""), code=429)
        if response.status_code in (401, 403):
            raise TransientError(f"SpeedSMS refused the token (HTTP {response.status_code}): "
                                 "check CLM_SPEEDSMS_TOKEN", code=response.status_code)
        answer = json_body(response)
        if answer is None:
            if response.status_code >= 400:
                raise PermanentError(f"SpeedSMS answered HTTP {response.status_code}", code=response.status_code)
            raise TransientError(f"SpeedSMS answered HTTP {response.status_code} without a JSON body",
                                 code="bad_answer")
        return read_answer(answer)


def read_answer(answer: dict) -> SendResult:
    code = str(answer.get("code", ""))
    if answer.get("status") == "success" and code == "00":
        data = answer.get("data") or {}
        invalid = data.get("invalidPhone") or []
        if invalid and not data.get("totalSMS"):
            raise PermanentError(f"SpeedSMS found the phone number invalid: {', '.join(map(str, invalid))}",
                                 code="105")
        tran = data.get("tranId")
        return SendResult(provider_id=None if tran is None else str(tran), status="sent",
                          detail={"provider": "speedsms", "total_price": data.get("totalPrice")})
    message = answer.get("message") or ""
    said = f"SpeedSMS {code}: {message}" if message else f"SpeedSMS {code}"
    if code in _ACCOUNT_CODES:
        raise TransientError(f"{_ACCOUNT_CODES[code]} ({said})", code=code)
    raise PermanentError(f"{_MESSAGE_CODES.get(code, 'SpeedSMS refused the message')} ({said})", code=code or None)
