"""Zalo OA: ``user_submit_info``, sent when a follower shares their details through the OA's
"request user info" form. The webhook carries them, so no API call is needed:

``{"event_name": "user_submit_info", "app_id": "...", "sender": {"id": "<user id in the OA>"},
"recipient": {"id": "<OA id>"}, "info": {"name", "phone", "address", "city", "district", "ward"},
"timestamp": "<epoch ms>"}``. The signature is the OA's (X-ZEvent-Signature, see
clm.channels.inbound.signatures.zalo_ok).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from clm.sales.leads import LeadIn

SUBMIT_INFO = "user_submit_info"


def submitted_lead(body: Any) -> LeadIn | None:
    """The lead a Zalo event carries, or None for any other event."""
    if not isinstance(body, dict) or body.get("event_name") != SUBMIT_INFO:
        return None
    info = body.get("info") if isinstance(body.get("info"), dict) else {}
    sender = body.get("sender") if isinstance(body.get("sender"), dict) else {}
    user = str(sender.get("id") or "") or None
    phone = str(info.get("phone") or "").strip() or None
    if phone and phone.isdigit() and phone.startswith("84") and len(phone) == 11:
        phone = "+" + phone  # Zalo writes numbers in country-code form without the plus
    details = {k: str(info[k])[:255] for k in ("address", "district", "ward") if info.get(k)}
    oa = body.get("recipient") if isinstance(body.get("recipient"), dict) else {}
    if oa.get("id"):
        details["oa_id"] = str(oa["id"])
    stamp = str(body.get("timestamp") or "")
    return LeadIn(name=str(info.get("name") or "").strip()[:255] or None, phone=phone,
                  city=str(info.get("city") or "").strip()[:128] or None, source="zalo", zalo_id=user,
                  external_id=f"{user}:{stamp}" if user and stamp else None, details=details,
                  occurred_at=_millis(stamp))


def _millis(value: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
