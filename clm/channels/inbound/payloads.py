"""Each provider's webhook payload, read into reports, replies and reads (no I/O).

Shapes: ../shared/design/PROVIDERS.md (eSMS callback, SpeedSMS webhook, Zalo OA and ZNS events,
Messenger page events). Anything unknown is counted as ignored, never an error: providers retry
deliveries that fail, and a retry of something clm cannot read would never succeed.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from clm.channels.inbound.optouts import OptOut
from clm.channels.inbound.replies import Reply
from clm.channels.inbound.reports import Read, Report
from clm.channels.inbound.service import Parsed, from_millis
from clm.lib.phones import InvalidPhone, normalize_phone

# eSMS SendStatus: 1 awaiting approval, 2 waiting to send, 4 rejected, 5 finished, 7 sent awaiting report.
_ESMS_ZALO_TYPES = {"24", "25"}


def esms(query: dict[str, str]) -> Parsed:
    """eSMS's CallbackUrl GET: one report per SMSID once SendStatus is final (4 or 5)."""
    parsed = Parsed()
    sms_id, status = query.get("SMSID") or None, str(query.get("SendStatus", ""))
    channel = "zalo" if str(query.get("TypeId")) in _ESMS_ZALO_TYPES else "sms"
    detail = {k: query[k] for k in ("SendStatus", "SendSuccess", "SendFailed", "TypeId", "telcoid") if k in query}
    if status == "5" and _int(query.get("SendSuccess")) > 0:
        parsed.reports.append(Report(channel, sms_id, "delivered", sent_key=query.get("RequestId") or None,
                                     detail=detail))
    elif status == "4" or (status == "5" and _int(query.get("SendFailed")) > 0):
        why = "eSMS rejected the message" if status == "4" else "eSMS could not deliver the message"
        info = _esms_error_info(query.get("error_info"))
        parsed.reports.append(Report(channel, sms_id, "failed", reason=f"{why}{': ' + info if info else ''}",
                                     sent_key=query.get("RequestId") or None, detail=detail))
    else:
        parsed.ignored += 1  # not final yet: awaiting approval, queued, sent awaiting the carrier's report
    return parsed


def esms_mo(query: dict[str, str], timezone: str = "Asia/Ho_Chi_Minh") -> Parsed:
    """eSMS's inbound SMS (a customer texting the short code): ``sender`` (84...), ``content``,
    ``serviceNumber``, ``keyword``, ``smsid`` (unique per SMS) and ``receiverTime`` (yyyyMMddHHmmss,
    read in the business time zone)."""
    parsed = Parsed()
    phone, smsid = _phone(query.get("sender")), _str(query.get("smsid"))
    if not phone or not smsid:
        parsed.ignored += 1
        return parsed
    try:
        at = datetime.strptime(query.get("receiverTime") or "", "%Y%m%d%H%M%S").replace(tzinfo=ZoneInfo(timezone))
    except ValueError:
        at = None
    properties = {k: v for k, v in (("service_number", query.get("serviceNumber")),
                                    ("keyword", query.get("keyword"))) if v}
    parsed.replies.append(Reply("sms", phone, smsid, text=str(query.get("content") or ""), at=at, provider="esms",
                                properties=properties))
    return parsed


def speedsms(body: Any) -> Parsed:
    """SpeedSMS webhook: ``{"type": "report", "tranId", "phone", "status"}`` (0 delivered) or
    ``{"type": "incoming", "phone", "content"}``."""
    parsed = Parsed()
    for event in body if isinstance(body, list) else [body]:
        if not isinstance(event, dict):
            parsed.ignored += 1
            continue
        kind = event.get("type")
        if kind == "report" and event.get("tranId") is not None:
            status = _int(event.get("status"), -1)
            parsed.reports.append(Report(
                "sms", str(event["tranId"]), "delivered" if status == 0 else "failed",
                reason=None if status == 0 else f"SpeedSMS reports status {event.get('status')}: not delivered",
                detail={"phone": event.get("phone"), "status": event.get("status")}))
        elif kind == "incoming" and _phone(event.get("phone")):
            # SpeedSMS sends no message id: one is drawn from the event itself, so a redelivery of the
            # same webhook is stored once.
            mid = str(event.get("id") or event.get("msgId") or
                      hashlib.sha256(orjson.dumps(event, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32])
            parsed.replies.append(Reply("sms", _phone(event.get("phone")), mid, text=str(event.get("content") or ""),
                                        provider="speedsms"))
        else:
            parsed.ignored += 1
    return parsed


def zalo(body: dict[str, Any]) -> Parsed:
    """Zalo OA events: ``user_received_message`` (ZNS delivered), ``user_seen_message`` (the user read the
    messages listed in ``message.msg_ids``; the OA is the sender, the user the recipient), ``user_send_*``
    (a reply), ``unfollow`` (an opt-out: clm.channels.inbound.optouts)."""
    parsed = Parsed()
    event = str(body.get("event_name") or "")
    message = body.get("message") if isinstance(body.get("message"), dict) else {}
    sender = (body.get("sender") or {}).get("id") if isinstance(body.get("sender"), dict) else None
    if event == "user_received_message" and (message.get("msg_id") or message.get("tracking_id")):
        parsed.reports.append(Report("zalo", _str(message.get("msg_id")), "delivered",
                                     at=from_millis(message.get("delivery_time")),
                                     sent_key=_str(message.get("tracking_id")), detail={"event": event}))
    elif event == "user_seen_message" and _seen_ids(message):
        viewer = (body.get("recipient") or {}).get("id") if isinstance(body.get("recipient"), dict) else None
        parsed.reads.append(Read("zalo", "zalo", str(viewer or ""), from_millis(body.get("timestamp")),
                                 provider_ids=_seen_ids(message)))
    elif event.startswith("user_send_") and sender and message.get("msg_id"):
        kind = event[len("user_send_"):]
        text = str(message.get("text") or "") or f"[{kind}]"
        properties = {"zalo_event": event}
        if message.get("attachments"):
            properties["attachments"] = message["attachments"]
        parsed.replies.append(Reply("zalo", str(sender), str(message["msg_id"]), text=text,
                                    at=from_millis(body.get("timestamp")), properties=properties))
    elif event == "unfollow" and sender:
        parsed.optouts.append(OptOut("zalo", "zalo", str(sender), f"unfollow:{sender}:{body.get('timestamp')}",
                                     at=from_millis(body.get("timestamp"))))
    else:
        parsed.ignored += 1
    return parsed


def _seen_ids(message: dict[str, Any]) -> tuple[str, ...]:
    """The message ids a Zalo ``user_seen_message`` lists (``msg_ids``; a lone ``msg_id`` is taken too)."""
    ids = message.get("msg_ids")
    if not isinstance(ids, list):
        ids = [message.get("msg_id")]
    return tuple(dict.fromkeys(str(i) for i in ids if isinstance(i, str | int) and str(i)))


def messenger(body: dict[str, Any]) -> Parsed:
    """Messenger page events: messages (not echoes), delivery receipts and read watermarks."""
    parsed = Parsed()
    if body.get("object") != "page":
        parsed.ignored += 1
        return parsed
    for entry in body.get("entry") or []:
        for event in (entry.get("messaging") or []) if isinstance(entry, dict) else []:
            psid = ((event.get("sender") or {}).get("id")) if isinstance(event, dict) else None
            if not psid:
                parsed.ignored += 1
                continue
            message, delivery, read = event.get("message"), event.get("delivery"), event.get("read")
            if isinstance(message, dict) and message.get("mid") and not message.get("is_echo"):
                properties: dict[str, Any] = {"page_id": (event.get("recipient") or {}).get("id")}
                if message.get("attachments"):
                    properties["attachments"] = [a.get("type") for a in message["attachments"] if isinstance(a, dict)]
                parsed.replies.append(Reply("messenger", str(psid), str(message["mid"]),
                                            text=str(message.get("text") or ""),
                                            at=from_millis(event.get("timestamp")), properties=properties))
            elif isinstance(delivery, dict):
                at = from_millis(delivery.get("watermark"))
                for mid in delivery.get("mids") or []:
                    parsed.reports.append(Report("messenger", str(mid), "delivered", at=at))
            elif isinstance(read, dict) and from_millis(read.get("watermark")):
                parsed.reads.append(Read("messenger", "facebook", str(psid), from_millis(read["watermark"])))
            else:
                parsed.ignored += 1
    return parsed


def _esms_error_info(value: str | None) -> str:
    if not value:
        return ""
    try:
        info = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value[:200]
    if isinstance(info, dict):
        return f"{info.get('message', '')} ({info.get('error')})".strip()
    return str(info)[:200]


def _phone(value: Any) -> str | None:
    try:
        return normalize_phone(str(value), "VN") if value else None
    except InvalidPhone:
        return None


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
