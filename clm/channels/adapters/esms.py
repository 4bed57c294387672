"""eSMS.vn (ViHAT): customer-care SMS with a registered brandname (SmsType 2).

Wire format: ../shared/design/PROVIDERS.md section 1. eSMS answers ``CodeResult "100"`` when it
accepts a message; delivery comes later through ``CallbackUrl`` (clm.channels.inbound.esms).
``RequestId`` carries the idempotency key: eSMS refuses a repeat within the day with code 124, which
here means "already accepted", so a retry after a lost answer never sends twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from clm.channels.adapters.base import Outgoing, PermanentError, SendResult, TransientError
from clm.channels.adapters.http import ProviderClient, json_body, vn_local

SEND_PATH = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"

# Codes about clm's account rather than this message: retried, since they succeed once the account
# is fixed (credentials, balance, price list, IP whitelist, a request still being processed).
_ACCOUNT_CODES = {
    "101": "eSMS refused the credentials: check CLM_ESMS_API_KEY and CLM_ESMS_SECRET_KEY",
    "102": "the eSMS account has no price list yet: ask eSMS to set one up",
    "103": "the eSMS balance is too low: top up the account",
    "104": "the brandname is not registered with eSMS: check CLM_ESMS_BRANDNAME",
    "140": "eSMS refused this server's IP address: add it to the account's whitelist",
    "199": "eSMS is still processing an earlier request",
}
_MESSAGE_CODES = {
    "99": "eSMS blocks this phone number",
    "105": "eSMS does not know this message id",
    "108": "the phone number has a format eSMS does not accept",
    "110": "eSMS rejected the request data",
    "115": "eSMS rejected the hashed phone",
    "118": "eSMS does not support this message type",
    "146": "the text does not match a CSKH template registered for the brandname",
    "177": "the brandname is not registered with this recipient's carrier",
    "210": "eSMS rejected the payload",
    "300": "the message type is missing",
    "301": "eSMS does not support this service",
}


@dataclass
class EsmsAdapter:
    api_key: str
    secret_key: str
    brandname: str
    url: str = "https://rest.esms.vn"
    sandbox: bool = False
    unicode: bool = False
    callback_url: str | None = None
    timeout: float = 10.0
    channel: str = "sms"
    provider = "esms"
    idempotent = True  # a repeated RequestId is refused (code 124) within the day

    def __post_init__(self) -> None:
        self.http = ProviderClient("eSMS", self.timeout)

    def request_body(self, message: Outgoing) -> dict:
        if not message.text:
            raise PermanentError("the SMS has no text", code="empty")
        body = {
            "ApiKey": self.api_key,
            "SecretKey": self.secret_key,
            "Phone": vn_local(message.to, "eSMS"),
            "Content": message.text,
            "Brandname": self.brandname,
            "SmsType": "2",
            "IsUnicode": "1" if self.unicode else "0",
            "Sandbox": "1" if self.sandbox else "0",
            "RequestId": request_id(message.idempotency_key),
        }
        if self.callback_url:
            body["CallbackUrl"] = self.callback_url
        return body

    def send(self, message: Outgoing) -> SendResult:
        body = self.request_body(message)
        response = self.http.request("POST", self.url.rstrip("/") + SEND_PATH, json=body)
        answer = json_body(response)
        if response.status_code == 429:
            raise TransientError("eSMS is rate limiting requests", code=429)
        if answer is None:
            raise TransientError(f"eSMS answered HTTP {response.status_code} without a JSON body", code="bad_answer")
        return read_answer(answer, response.status_code)


def request_id(idempotency_key: str) -> str:
    """eSMS takes at most 50 characters: longer keys are replaced by a digest (stable across retries)."""
    if len(idempotency_key) <= 50:
        return idempotency_key
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:50]


def read_answer(answer: dict, status: int = 200) -> SendResult:
    """eSMS's answer as a result, or the error it stands for."""
    code = answer.get("CodeResult")
    if code is None:
        # The docs' sample for a malformed request: {"error": "Invalid request"} with no code at all.
        reason = answer.get("error") or answer.get("ErrorMessage") or f"HTTP {status}"
        raise PermanentError(f"eSMS rejected the request: {reason}", code="invalid_request")
    code = str(code)
    message = answer.get("ErrorMessage") or ""
    if code == "100":
        return SendResult(provider_id=_str(answer.get("SMSID")), status="sent",
                          detail={"provider": "esms", "code": code})
    if code == "124":
        # The RequestId was accepted earlier today: this is a retry of a message already sent.
        return SendResult(provider_id=_str(answer.get("SMSID")), status="sent",
                          detail={"provider": "esms", "code": code, "duplicate": True})
    said = f"eSMS {code}: {message}" if message else f"eSMS {code}"
    if code in _ACCOUNT_CODES:
        raise TransientError(f"{_ACCOUNT_CODES[code]} ({said})", code=code)
    raise PermanentError(f"{_MESSAGE_CODES.get(code, 'eSMS refused the message')} ({said})", code=code)


def _str(value) -> str | None:
    return None if value in (None, "") else str(value)
