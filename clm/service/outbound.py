"""Agents' replies and the desk's automatic messages, out through the channels' outbox.

An agent's reply on an email, SMS or Messenger conversation becomes one outbox message (`messages`, key
`service:reply:<service message id>`) with its `channels.send` job, in the reply's own transaction: the
reply and its sending are durable together, and a retried reply (same `external_id`) queues nothing new.
The worker then sends it like any message (guardrails, retries, at most once for SMTP). Chat, phone and
API conversations have no outbox channel: their replies are only recorded.

Per channel:
- **email**: `Re: <subject> [TK-000123]` to the customer's address, with our signed `Message-ID`
  (clm.service.mail.ids), `In-Reply-To` the customer's latest mail in the conversation and `References`
  the thread, so the customer's client threads it and their answer finds the ticket again;
- **sms**: the text to the customer's phone;
- **messenger**: inside 24 hours of the customer's last message a plain response; later, up to 7 days,
  with Meta's `HUMAN_AGENT` tag (a person's answer); beyond that the reply is refused (409
  `messenger_window_closed`) before anything is stored, since Messenger would refuse it.

Automatic messages (`send_automatic`: an acknowledgement, a CSAT request) carry
`Auto-Submitted: auto-replied`, never use the HUMAN_AGENT tag, and are rate-limited per recipient
(`CLM_MAIL_AUTO_PER_RECIPIENT` an hour) and per ticket (`CLM_MAIL_AUTO_PER_TICKET` a day), so two
auto-responders can never answer each other for long.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.channels import guardrails
from clm.channels.models import QUEUED, SUPPRESSED
from clm.channels.models import Message as OutboxMessage
from clm.channels.service import SEND_JOB, send_job_key
from clm.channels.status import record_status
from clm.customers.models import Customer
from clm.lib.clock import as_utc, utcnow
from clm.service.errors import ServiceConflict
from clm.service.mail import ids
from clm.service.models import Conversation, Message, Ticket

SENDS = ("email", "sms", "messenger")  # conversation channels whose replies go through the outbox
REPLY_TEMPLATE, AUTO_TEMPLATE = "service.reply", "service.auto"
MAX_REFERENCES = 10


def _settings(settings):
    if settings is not None:
        return settings
    from clm.config import get_settings

    return get_settings()


def mail_domain(settings) -> str:
    return parseaddr(settings.email_from)[1].rpartition("@")[2] or "clm.invalid"


def outbox_key(message_id: int) -> str:
    return f"service:reply:{message_id}"


def outbox_message(session: Session, message_id: int) -> OutboxMessage | None:
    """The outbox message that carries the service message (an agent's reply), if any."""
    return session.scalar(sa.select(OutboxMessage).where(OutboxMessage.idempotency_key == outbox_key(message_id)))


def _last_in(session: Session, conversation: Conversation) -> Message | None:
    return session.scalar(sa.select(Message).where(Message.conversation_id == conversation.id,
                                                   Message.direction == "in")
                          .order_by(Message.created_at.desc(), Message.id.desc()).limit(1))


def email_headers(session: Session, ticket: Ticket, conversation: Conversation, message: Message, settings,
                  automatic: bool = False) -> dict[str, str]:
    """Message-ID (signed), In-Reply-To and References for a message on an email conversation."""
    headers = {"Message-ID": ids.make(ids.key(settings), ticket.id, message.id, mail_domain(settings))}
    chain: list[str] = []
    if conversation.thread_key and conversation.thread_key.startswith("<"):
        chain.append(conversation.thread_key)
    last = _last_in(session, conversation)
    meta = (last.meta or {}) if last is not None else {}
    chain += [r for r in meta.get("references") or [] if isinstance(r, str)]
    if meta.get("message_id"):
        headers["In-Reply-To"] = meta["message_id"]
        chain.append(meta["message_id"])
    chain = list(dict.fromkeys(chain))
    if len(chain) > MAX_REFERENCES:  # RFC 5322 3.6.4: keep the root and the latest ones
        chain = chain[:1] + chain[-(MAX_REFERENCES - 1):]
    if chain:
        headers["References"] = " ".join(chain)
    if automatic:
        headers["Auto-Submitted"] = "auto-replied"
        headers["X-Auto-Response-Suppress"] = "All"  # Exchange: no out-of-office answer to this
    return headers


def last_messenger_message(session: Session, customer_id: int) -> datetime | None:
    """When the customer last wrote on Messenger: their latest message on a Messenger conversation, or
    their latest `Message Received` event on Messenger (the channels' webhook), whichever is later."""
    from clm.channels.sending import last_inbound_messenger

    desk = session.scalar(sa.select(sa.func.max(Message.created_at)).join(
        Conversation, Conversation.id == Message.conversation_id).where(
        Message.customer_id == customer_id, Message.direction == "in", Conversation.channel == "messenger"))
    events = last_inbound_messenger(session, customer_id)
    times = [as_utc(t) for t in (desk, events) if t is not None]
    return max(times) if times else None


def _messenger_data(session: Session, customer_id: int, now: datetime, automatic: bool) -> dict[str, Any]:
    from clm.channels.adapters.base import PermanentError
    from clm.channels.adapters.messenger import delivery_mode

    last = last_messenger_message(session, customer_id)
    tag = None if automatic else "HUMAN_AGENT"
    try:
        delivery_mode(last, now, tag=tag)
    except PermanentError as exc:
        raise ServiceConflict("messenger_window_closed", exc.reason.replace("not sent: ", "cannot answer on "
                                                                             "Messenger: ", 1), field="body") from None
    data: dict[str, Any] = {"last_inbound_at": last.isoformat() if last else None}
    if tag:
        data["tag"] = tag
    return data


def check_reply(session: Session, conversation: Conversation, now: datetime | None = None) -> None:
    """Refuse before anything is stored a reply the channel would refuse (Messenger's window)."""
    if conversation.channel == "messenger":
        _messenger_data(session, conversation.customer_id, now or utcnow(), automatic=False)


def deliver_reply(session: Session, ticket: Ticket, conversation: Conversation, message: Message, *,
                  settings=None, now: datetime | None = None) -> OutboxMessage | None:
    """Queue an agent's reply on its conversation's channel (in the caller's transaction)."""
    if conversation.channel not in SENDS:
        return None
    return _queue(session, ticket, conversation, message, key=outbox_key(message.id), template=REPLY_TEMPLATE,
                  automatic=False, settings=_settings(settings), now=now or utcnow())


def _queue(session: Session, ticket: Ticket, conversation: Conversation, message: Message, *, key: str,
           template: str, automatic: bool, settings, now: datetime) -> OutboxMessage:
    existing = session.scalar(sa.select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
    if existing is not None:
        return existing
    channel = conversation.channel
    customer = session.get(Customer, ticket.customer_id)
    while customer.merged_into_id is not None:
        customer = session.get(Customer, customer.merged_into_id)
    data: dict[str, Any] = {"ticket_id": ticket.id, "service_message_id": message.id}
    subject = None
    if channel == "email":
        subject = ids.reply_subject(ticket.subject, ticket.number)
        data["headers"] = email_headers(session, ticket, conversation, message, settings, automatic)
    elif channel == "messenger":
        data.update(_messenger_data(session, customer.id, now, automatic))
    row = OutboxMessage(customer_id=customer.id, channel=channel, purpose="transactional", template_key=template,
                        idempotency_key=key, status=QUEUED, data=data, text=message.body, subject=subject,
                        html=None, locale=ticket.language, attempts=0, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    row.address = guardrails.address_of(session, customer, channel)
    verdict = guardrails.check(session, customer_id=customer.id, channel=channel, purpose="transactional",
                               address=row.address, when=now, settings=settings, message_id=row.id)
    record_status(session, row, verdict.status, reason=verdict.reason, at=now, force=True)
    message.meta = {**(message.meta or {}), "outbox_message_id": row.id, "delivery": row.status,
                    **({"delivery_reason": row.status_reason} if row.status_reason else {}),
                    **({"message_id": data["headers"]["Message-ID"]} if channel == "email" else {})}
    if verdict.status != SUPPRESSED:
        row.deferred_until = verdict.until
        from clm.jobs import queue

        queue.enqueue(session, SEND_JOB, {"message_id": row.id}, run_at=verdict.until or now,
                      unique_key=send_job_key(row.id), max_attempts=settings.send_max_attempts, now=now)
    session.flush()
    return row


def automatic_allowed(session: Session, ticket: Ticket, address: str | None, settings,
                      now: datetime) -> str | None:
    """Why an automatic message may not go now (a rate limit reached), or None when it may."""
    sent = sa.select(sa.func.count()).select_from(OutboxMessage).where(OutboxMessage.template_key == AUTO_TEMPLATE)
    per_ticket = session.scalar(sent.where(OutboxMessage.idempotency_key.startswith(f"service:auto:{ticket.id}:"),
                                           OutboxMessage.created_at >= now - timedelta(days=1)))
    if per_ticket >= settings.mail_auto_per_ticket:
        return f"ticket {ticket.number} already sent {per_ticket} automatic messages today"
    if address:
        per_address = session.scalar(sent.where(OutboxMessage.address == address,
                                                OutboxMessage.created_at >= now - timedelta(hours=1)))
        if per_address >= settings.mail_auto_per_recipient:
            return f"{address} already got {per_address} automatic messages this hour"
    return None


def send_automatic(session: Session, ticket: Ticket, conversation: Conversation, body: str, *, kind: str,
                   settings=None, now: datetime | None = None) -> Message | None:
    """An automatic message on the conversation (recorded on the ticket as an outgoing message without an
    author, and queued with Auto-Submitted: auto-replied), unless a rate limit says no: then None.

    `kind` names the purpose (`ack`, `csat`...); one per kind per inbound message is ever queued."""
    settings, now = _settings(settings), now or utcnow()
    if conversation.channel not in SENDS:
        return None
    customer = session.get(Customer, ticket.customer_id)
    address = guardrails.address_of(session, customer, conversation.channel) if customer else None
    if automatic_allowed(session, ticket, guardrails.normalize_address(conversation.channel, address), settings, now):
        return None
    last = _last_in(session, conversation)
    key = f"service:auto:{ticket.id}:{kind}:{last.id if last else 0}"
    if session.scalar(sa.select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)) is not None:
        return None
    message = Message(conversation_id=conversation.id, ticket_id=ticket.id, customer_id=ticket.customer_id,
                      direction="out", author_id=None, body=body, attachments=[], meta={"automatic": kind},
                      created_at=now)
    session.add(message)
    session.flush()
    _queue(session, ticket, conversation, message, key=key, template=AUTO_TEMPLATE, automatic=True,
           settings=settings, now=now)
    return message


ACK = {
    "vi": "Xin chào,\n\nChúng tôi đã nhận được yêu cầu của bạn và mở phiếu {number}. Nhân viên sẽ trả lời sớm nhất "
          "có thể. Khi trả lời, vui lòng giữ nguyên mã {number} trong tiêu đề.\n\nTrân trọng.",
    "en": "Hello,\n\nWe have received your request and opened ticket {number}. Someone will answer as soon as "
          "possible. When you reply, please keep {number} in the subject.\n\nKind regards.",
}


def acknowledge(session: Session, ticket: Ticket, conversation: Conversation, *, settings=None,
                now: datetime | None = None) -> Message | None:
    """The automatic acknowledgement of a new ticket, in the ticket's language (Vietnamese by default)."""
    text = ACK.get((ticket.language or "vi")[:2], ACK["vi"]).format(number=ticket.number)
    return send_automatic(session, ticket, conversation, text, kind="ack", settings=settings, now=now)
