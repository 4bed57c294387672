"""Bounces that arrive by mail: delivery status notifications (DSN, RFC 3464) after the SMTP server
accepted a message and a later hop could not deliver it.

A DSN is ``multipart/report; report-type=delivery-status``: a human-readable part, a
``message/delivery-status`` part (one block of fields about the message, then one block per recipient:
``Final-Recipient``, ``Action``, ``Status``, ``Diagnostic-Code``) and the original message or its
headers, whose ``Message-ID`` names clm's message (clm derives it from the idempotency key).

What each recipient block becomes:

- ``Action: failed`` with a status saying the address is bad (``5.1.x``: no such mailbox, bad domain,
  bad syntax; ``5.2.1``: mailbox disabled) is a **hard bounce**: the message is ``bounced`` and the address
  put on the suppression list with reason ``hard_bounce`` (no more mail to it, transactional included);
- ``Action: failed`` with another permanent status (``5.x.x``: a full mailbox, a policy refusal) makes the
  message ``failed`` with the status and diagnostic, and suppresses nothing: the address exists;
- ``delayed``, ``delivered``, ``relayed``, ``expanded`` and ``4.x.x`` statuses are ignored (the MTA is
  still trying, or it worked).
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import Message as MimeMessage
from email.utils import parseaddr, parsedate_to_datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.channels.guardrails import normalize_address
from clm.channels.models import SENDING, Message
from clm.channels.sending import suppress_address
from clm.channels.status import record_status
from clm.lib.clock import as_utc, utcnow

_STATUS = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")
_NOT_DELIVERED = ("queued", "deferred", SENDING, "suppressed")  # never handed over: not what bounced


class NotADsn(ValueError):
    """The body is not a delivery status notification clm can read."""


@dataclass(frozen=True)
class Bounce:
    """One recipient the DSN says could not be reached."""

    address: str  # the final recipient
    status: str  # the RFC 3463 status, e.g. 5.1.1
    hard: bool  # the address does not exist (or is disabled): suppress it
    diagnostic: str = ""  # the remote server's words
    message_id: str | None = None  # the original's Message-ID
    reporter: str = ""  # the MTA that wrote the DSN (Reporting-MTA)
    at: datetime | None = None

    @property
    def reason(self) -> str:
        said = f" ({self.diagnostic})" if self.diagnostic else ""
        return f"the mail server reported a bounce: {self.status}{said}"


def is_hard(status: str) -> bool:
    """Whether an RFC 3463 status says the address itself is bad (5.1.x) or disabled (5.2.1)."""
    m = _STATUS.match(status)
    return bool(m) and m.group(1) == "5" and (m.group(2) == "1" or (m.group(2), m.group(3)) == ("2", "1"))


def parse_dsn(raw: bytes) -> tuple[list[Bounce], int]:
    """The failed recipients a DSN reports, and how many recipient blocks it had that are not failures
    (delayed, delivered, relayed, a 4.x.x status): ``([Bounce], ignored)``. NotADsn when it is no DSN."""
    report = email.message_from_bytes(raw, policy=email.policy.default)
    if report.get_content_type() != "multipart/report" or \
            (report.get_param("report-type") or "").lower() != "delivery-status":
        raise NotADsn("the body is not a delivery status notification "
                      "(multipart/report; report-type=delivery-status)")
    blocks: list[MimeMessage] | None = None
    original: MimeMessage | None = None
    for part in report.iter_parts():
        kind = part.get_content_type()
        if kind in ("message/delivery-status", "message/global-delivery-status"):
            blocks = _field_blocks(part)
        elif kind in ("message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers"):
            original = _original(part)
    if not blocks:
        raise NotADsn("the report has no message/delivery-status part")
    per_message, recipients = blocks[0], blocks[1:]
    message_id = (str(original.get("Message-ID") or "").strip() or None) if original is not None else None
    reporter = _value(per_message.get("Reporting-MTA"))
    at = _date(per_message.get("Arrival-Date"))
    bounces, ignored = [], 0
    for fields in recipients:
        address = parseaddr(_value(fields.get("Final-Recipient") or fields.get("Original-Recipient")))[1]
        action = str(fields.get("Action") or "").strip().lower()
        status = str(fields.get("Status") or "").strip().split(" ")[0]
        if action != "failed" or not address or not status.startswith("5"):
            ignored += 1
            continue
        diagnostic = " ".join(_value(fields.get("Diagnostic-Code")).split())[:300]
        bounces.append(Bounce(address, status, is_hard(status), diagnostic, message_id, reporter,
                              _date(fields.get("Last-Attempt-Date")) or at))
    return bounces, ignored


def record_bounce(session: Session, bounce: Bounce) -> bool | None:
    """Apply a bounce in the caller's transaction. None when it names no message clm sent and the
    address is no customer's; else whether something changed (False for a repeat)."""
    at = bounce.at or utcnow()
    address = normalize_address("email", bounce.address)
    message = _find(session, bounce.message_id, address)
    changed = False
    if bounce.hard and address:
        from clm.channels.models import Suppression

        known = session.scalar(sa.select(Suppression.id).where(
            Suppression.channel == "email", Suppression.address == address, Suppression.reason == "hard_bounce"))
        if known is None:
            suppress_address(session, "email", address, "hard_bounce", detail=bounce.reason,
                             customer_id=message.customer_id if message else None, at=at)
            changed = True
    if message is not None and message.status not in ("bounced", "failed"):
        status = "bounced" if bounce.hard else "failed"
        detail = {"status": bounce.status, "source": "dsn", **({"reporter": bounce.reporter} if bounce.reporter else {})}
        changed |= record_status(session, message, status, reason=bounce.reason, detail=detail, at=at, force=True)
    if message is None and not changed:
        return None
    session.flush()
    return changed


def _find(session: Session, message_id: str | None, address: str | None) -> Message | None:
    """The message that bounced: by its Message-ID, else the latest email handed over to that address."""
    if message_id:
        found = session.scalar(sa.select(Message).where(Message.provider_id == message_id, Message.channel == "email")
                               .order_by(Message.id.desc()).limit(1))
        if found is not None:
            return found
    if not address:
        return None
    return session.scalar(sa.select(Message).where(
        Message.channel == "email", Message.address == address, Message.sent_at.is_not(None),
        Message.status.not_in(_NOT_DELIVERED)).order_by(Message.sent_at.desc(), Message.id.desc()).limit(1))


def _field_blocks(part) -> list[MimeMessage]:
    """The DSN's field blocks: the per-message one first, then one per recipient (RFC 3464 section 2.1)."""
    payload = part.get_payload()
    if isinstance(payload, list):  # the email package reads message/delivery-status as a list of blocks
        return list(payload)
    text = payload if isinstance(payload, str) else (part.get_payload(decode=True) or b"").decode(errors="replace")
    chunks = re.split(r"\r?\n\s*\r?\n", text.strip())
    return [email.message_from_string(chunk.strip() + "\n\n", policy=email.policy.default) for chunk in chunks if chunk]


def _original(part) -> MimeMessage | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        return payload[0]
    raw = part.get_payload(decode=True) or b""
    return email.message_from_bytes(raw, policy=email.policy.default) if raw else None


def _value(field) -> str:
    """A typed DSN field's value without its type ("rfc822; an@example.vn" -> "an@example.vn")."""
    text = str(field or "").strip()
    kind, sep, rest = text.partition(";")
    return rest.strip() if sep and " " not in kind.strip() else text


def _date(field) -> datetime | None:
    if not field:
        return None
    try:
        return as_utc(parsedate_to_datetime(str(field)))
    except (TypeError, ValueError):
        return None
