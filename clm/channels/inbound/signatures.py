"""Each provider's webhook signature, always checked over the raw request bytes.

Re-serialised JSON differs from what the provider signed (key order, whitespace, ``\\u`` escapes),
so nothing here parses before verifying, except Zalo, whose formula names two body fields.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson


def messenger_ok(raw: bytes, header: str | None, app_secret: str) -> bool:
    """``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(raw body, app secret)>``."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len("sha256="):].strip().lower())


def zalo_ok(raw: bytes, header: str | None, oa_secret_key: str) -> bool:
    """``X-ZEvent-Signature: mac=<hex sha256(app_id + raw body + timestamp + OA secret key)>``.

    Plain SHA-256, not an HMAC; ``app_id`` and ``timestamp`` are read from the body.
    """
    if not header:
        return False
    mac = header.strip()
    if mac.lower().startswith("mac="):
        mac = mac[4:].strip()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(body, dict):
        return False
    app_id, timestamp = str(body.get("app_id", "")), str(body.get("timestamp", ""))
    expected = hashlib.sha256(app_id.encode() + raw + timestamp.encode() + oa_secret_key.encode()).hexdigest()
    return hmac.compare_digest(expected, mac.lower())


def esms_mo_ok(query: dict[str, str], cpid: str, private_key: str) -> bool:
    """eSMS's inbound SMS (short code MO): ``sign = base64(MD5(cpid + smsid + content + receiverTime +
    private key))`` over the decoded UTF-8 values; the docs' formula and their sample code disagree on
    hex or base64 output, so both are accepted. The ``cpid`` must be ours."""
    sign = (query.get("sign") or "").strip()
    if not sign or not token_ok(query.get("cpid"), cpid):
        return False
    text = "".join(query.get(k) or "" for k in ("cpid", "smsid", "content", "receiverTime")) + private_key
    digest = hashlib.md5(text.encode(), usedforsecurity=False).digest()
    as_base64, as_hex = base64.b64encode(digest).decode(), digest.hex()
    return hmac.compare_digest(as_base64, sign) | hmac.compare_digest(as_hex, sign.lower())


def token_ok(given: str | None, expected: str) -> bool:
    """A secret carried in the URL, for gateways that sign nothing (eSMS, SpeedSMS)."""
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())
