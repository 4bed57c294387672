"""The embeddable lead form's spam protection: a signed, time-stamped token and a honeypot field.

The token is ``<unix seconds>.<HMAC-SHA256(key, "lead-form:<form>:<seconds>")>``. A submission must
carry a token made by this server for the same form, at least `min_seconds` old (people take a few
seconds to type; scripts post at once) and at most `max_seconds` old. The honeypot is a field hidden
from people with CSS; a bot that fills every field fills it too.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from clm.lib.errors import FieldError
from clm.sales.leads import UTM_KEYS, LeadIn

HONEYPOT = "website"
_FIELDS = ("name", "phone", "email", "city", "message")


def form_key(secret: str) -> bytes:
    """The form tokens' key, derived from CLM_SECRET_KEY (a leaked form key never signs sessions)."""
    return hmac.new(secret.encode(), b"clm lead form tokens", hashlib.sha256).digest()


def _mac(key: bytes, form: str, seconds: int) -> str:
    return hmac.new(key, f"lead-form:{form}:{seconds}".encode(), hashlib.sha256).hexdigest()[:32]


def issue_token(key: bytes, form: str, now: datetime) -> str:
    seconds = int(now.timestamp())
    return f"{seconds}.{_mac(key, form, seconds)}"


def check_token(key: bytes, token: Any, form: str, now: datetime, *, min_seconds: float,
                max_seconds: float) -> None:
    """Raise FieldError("token", code="spam") unless the token is ours, for this form, and of the right age."""
    if not isinstance(token, str) or "." not in token:
        raise FieldError("token", "is missing: load the form from this server to get one", code="spam")
    seconds, _, mac = token.partition(".")
    if not seconds.isdigit() or not hmac.compare_digest(_mac(key, form, int(seconds)), mac):
        raise FieldError("token", "was not issued by this server for this form", code="spam")
    age = now.timestamp() - int(seconds)
    if age < min_seconds:
        raise FieldError("token", "the form was sent too soon after it was loaded", code="spam")
    if age > max_seconds:
        raise FieldError("token", "has expired: reload the form and send it again", code="expired")


def read_submission(data: dict[str, Any]) -> LeadIn:
    """The posted fields as a web-form lead; the honeypot must be empty."""
    if str(data.get(HONEYPOT) or "").strip():
        raise FieldError(HONEYPOT, "must be left empty", code="spam")
    values = {k: str(data[k]).strip() for k in _FIELDS if isinstance(data.get(k), str | int) and str(data[k]).strip()}
    if not (values.get("phone") or values.get("email")):
        raise FieldError("phone", "give a phone number or an email address so we can reach you")
    utm = {k: str(data[f"utm_{k}"])[:255] for k in UTM_KEYS if isinstance(data.get(f"utm_{k}"), str) and data[f"utm_{k}"]}
    details = {}
    for key in ("page_url", "form"):
        if isinstance(data.get(key), str) and data[key]:
            details[key] = data[key][:2000]
    anonymous = data.get("anonymous_id")
    try:
        return LeadIn(source="web_form", utm=utm, details=details,
                      anonymous_id=anonymous[:255] if isinstance(anonymous, str) and anonymous else None,
                      **{k: v[:5000] if k == "message" else v[:320] for k, v in values.items()})
    except ValueError as exc:  # pydantic: a field too long
        raise FieldError(None, str(exc).splitlines()[0]) from None
