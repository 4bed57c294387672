"""Complaints: a recipient who marks a message as spam is never sent marketing again on that channel.

Mailbox providers with a feedback loop (Yahoo, Outlook/JMRP, Mail.ru, Comcast, ...) mail an
**abuse report** (ARF, RFC 5965) to the address the shop registered with them: a
``multipart/report; report-type=feedback-report`` whose second part says ``Feedback-Type: abuse``
(and often ``Original-Rcpt-To``), and whose third part holds the original message or its headers,
with the ``Message-ID`` clm gave it. The shop's mail server pipes such mail to
``POST /hooks/email/feedback/<CLM_HOOKS_TOKEN>`` (docs/channels.md).

A complaint, whichever provider reports it (`record_complaint` is the one entry point), puts the
address on the suppression list with reason ``complaint`` (no more marketing; transactional mail
still goes), records the withdrawal of marketing consent for the channel, stops that customer's
marketing still queued on it, marks the message ``unsubscribed`` with why, and writes an
``Email Marked as Spam`` event on the customer's timeline. Repeats change nothing.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import parseaddr, parsedate_to_datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.channels.guardrails import normalize_address
from clm.channels.models import Message
from clm.channels.sending import suppress_address
from clm.channels.status import record_status
from clm.channels.timeline import record_customer_event
from clm.channels.tracking import _marketing_granted, _props, stop_queued
from clm.customers.consent import record_consent
from clm.customers.models import Customer
from clm.lib.clock import as_utc, utcnow

COMPLAINT_TYPES = ("abuse", "fraud")  # RFC 5965 feedback types that mean "this is unwanted mail"
EVENT = {"email": "Email Marked as Spam"}


@dataclass(frozen=True)
class Complaint:
    """One recipient's complaint about one message (or, when the report lost it, about an address)."""

    channel: str
    address: str | None  # the complaining recipient
    provider_id: str | None = None  # the provider's id of the message (an email's Message-ID)
    source: str = "spam complaint"  # who reported it, for the reason and the consent record
    at: datetime | None = None


class NotAReport(ValueError):
    """The body is not a feedback report clm can read."""


def parse_arf(raw: bytes) -> tuple[list[Complaint], int]:
    """The complaints an ARF report carries, and how many it carried that are not complaints (a
    ``not-spam`` report, a virus notice): ``([Complaint], ignored)``. NotAReport when it is no ARF."""
    report = email.message_from_bytes(raw, policy=email.policy.default)
    if report.get_content_type() != "multipart/report" or \
            (report.get_param("report-type") or "").lower() != "feedback-report":
        raise NotAReport("the body is not an ARF feedback report (multipart/report; report-type=feedback-report)")
    fields: EmailMessage | None = None
    original: EmailMessage | None = None
    for part in report.iter_parts():
        kind = part.get_content_type()
        if kind == "message/feedback-report":
            fields = _feedback_fields(part)
        elif kind in ("message/rfc822", "text/rfc822-headers"):
            original = _original(part)
    if fields is None:
        raise NotAReport("the report has no message/feedback-report part")
    feedback_type = (fields.get("Feedback-Type") or "").strip().lower()
    if feedback_type not in COMPLAINT_TYPES:
        return [], 1
    address = parseaddr(str(fields.get("Original-Rcpt-To") or ""))[1] or None
    message_id = None
    if original is not None:
        message_id = str(original.get("Message-ID") or "").strip() or None
        if address is None and message_id is None:  # the message clm sent names its recipient better
            address = parseaddr(str(original.get("To") or ""))[1] or None
    reporter = str(fields.get("User-Agent") or parseaddr(str(report.get("From") or ""))[1] or "a mailbox provider")
    at = None
    if fields.get("Arrival-Date"):
        try:
            at = as_utc(parsedate_to_datetime(str(fields["Arrival-Date"])))
        except (TypeError, ValueError):
            at = None
    if address is None and message_id is None:
        raise NotAReport("the report names neither the recipient (Original-Rcpt-To) nor the message (Message-ID)")
    return [Complaint("email", address, message_id, f"spam complaint ({feedback_type}) reported by {reporter}",
                      at)], 0


def _feedback_fields(part) -> EmailMessage:
    """The machine-readable fields (RFC 5965 section 3.1): header lines in the part's body."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload:  # the email package reads message/* bodies as messages
        return payload[0]
    text = payload if isinstance(payload, str) else part.get_payload(decode=True).decode(errors="replace")
    return email.message_from_string(text.strip() + "\n\n", policy=email.policy.default)


def _original(part) -> EmailMessage | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        return payload[0]
    raw = part.get_payload(decode=True) or b""
    return email.message_from_bytes(raw, policy=email.policy.default) if raw else None


def _find(session: Session, complaint: Complaint) -> tuple[Message | None, int | None]:
    """The message complained about, and the customer (from the message, else by the address)."""
    message = None
    if complaint.provider_id:
        message = session.scalar(sa.select(Message).where(
            Message.provider_id == complaint.provider_id, Message.channel == complaint.channel)
            .order_by(Message.id.desc()).limit(1))
    address = normalize_address(complaint.channel, complaint.address)
    if message is None and address:
        message = session.scalar(sa.select(Message).where(
            Message.channel == complaint.channel, Message.address == address, Message.sent_at.is_not(None))
            .order_by(Message.sent_at.desc(), Message.id.desc()).limit(1))
    if message is not None:
        return message, message.customer_id
    if address and complaint.channel == "email":
        return None, session.scalar(sa.select(Customer.id).where(sa.func.lower(Customer.email) == address,
                                                                 Customer.merged_into_id.is_(None)).limit(1))
    return None, None


def record_complaint(session: Session, complaint: Complaint) -> bool | None:
    """Apply a complaint in the caller's transaction. None when it names nothing clm knows (no message,
    no customer, no address); else whether something changed (False for a repeat)."""
    at = complaint.at or utcnow()
    message, customer_id = _find(session, complaint)
    address = normalize_address(complaint.channel, complaint.address or (message.address if message else None))
    if not address:
        return None
    changed = False
    from clm.channels.models import Suppression

    known = session.scalar(sa.select(Suppression.id).where(
        Suppression.channel == complaint.channel, Suppression.address == address, Suppression.reason == "complaint"))
    if known is None:
        suppress_address(session, complaint.channel, address, "complaint", detail=complaint.source,
                         customer_id=customer_id, at=at)
        changed = True
    if customer_id is None:
        return changed
    if _marketing_granted(session, customer_id, complaint.channel) is not False:
        record_consent(session, customer_id, channel=complaint.channel, purpose="marketing", granted=False,
                       source=complaint.source[:128], evidence=f"message {message.id}" if message else address,
                       recorded_at=at)
        changed = True
    props = {**_props(message), "source": complaint.source} if message else \
        {"channel": complaint.channel, "source": complaint.source}
    key = f"clm:message:{message.id}:complaint" if message else f"clm:complaint:{complaint.channel}:{address}"
    if record_customer_event(session, customer_id, EVENT.get(complaint.channel, "Marked as Spam"), props, key=key,
                             at=at) and message is not None:
        record_status(session, message, "unsubscribed", reason=f"the recipient reported it: {complaint.source}",
                      detail={"source": "complaint"}, at=at)
        changed = True
    changed |= bool(stop_queued(session, customer_id, complaint.channel,
                                f"the recipient reported a {complaint.channel} message as spam"))
    session.flush()
    return changed
