"""Queueing messages: what journeys, broadcasts and the service desk call.

`enqueue_message` writes the message row (rendered content, guardrail verdict) and its `channels.send`
job in the caller's transaction, so a message exists exactly when its job does. It is idempotent on
`idempotency_key`: asking again returns the first row. Problems with the content (a missing template,
a syntax error, an undefined variable) never raise: the message is `failed` with the reason and is
never sent. Problems with the call itself (an unknown channel, a missing customer) raise.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clm.channels import guardrails
from clm.channels.bulk import BulkQueue, enqueue_many  # noqa: F401 - the bulk side of this API
from clm.channels.models import CHANNELS, FAILED, PURPOSES, QUEUED, SUPPRESSED, Message
from clm.channels.rendering import render_for as _render_for
from clm.channels.status import record_status
from clm.channels.templates import Rendered, RenderError, customer_locale, get_version, template_variables
from clm.customers.models import Customer
from clm.lib import cursor
from clm.lib.clock import as_utc, utcnow
from clm.lib.errors import FieldError, NotFound

SEND_JOB = "channels.send"


def send_job_key(message_id: int, until: datetime | None = None) -> str:
    """The job's unique key: one unfinished send job per message (and per deferral)."""
    return f"{SEND_JOB}:{message_id}" + (f":{until.isoformat()}" if until else "")


def _check_call(channel: str, purpose: str, idempotency_key: str, send_at: datetime | None) -> None:
    if channel not in CHANNELS:
        raise FieldError("channel", f"must be one of {', '.join(CHANNELS)}")
    if purpose not in PURPOSES:
        raise FieldError("purpose", "must be transactional or marketing")
    if not isinstance(idempotency_key, str) or not idempotency_key.strip() or len(idempotency_key) > 255:
        raise FieldError("idempotency_key", "give a non-empty key of at most 255 characters")
    if send_at is not None and send_at.tzinfo is None:
        raise FieldError("send_at", "must be an aware datetime")


def _settings(settings):
    if settings is not None:
        return settings
    from clm.config import get_settings

    return get_settings()


def enqueue_message(session: Session, *, customer_id: int, channel: str, template_key: str,
                    purpose: str = "marketing", idempotency_key: str, context: dict | None = None,
                    locale: str | None = None, send_at: datetime | None = None, journey_id: int | None = None,
                    journey_run_id: int | None = None, broadcast_id: int | None = None,
                    settings=None, now: datetime | None = None) -> Message:
    """Queue one message (see the module docstring). The caller commits.

    `settings` and `now` default to the process settings and the clock (tests pass their own)."""
    _check_call(channel, purpose, idempotency_key, send_at)
    existing = session.scalar(sa.select(Message).where(Message.idempotency_key == idempotency_key))
    if existing is not None:
        return existing
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("customer", customer_id)
    while customer.merged_into_id is not None:  # messages go to the surviving profile
        customer = session.get(Customer, customer.merged_into_id)
    settings = _settings(settings)
    now = now or utcnow()
    when = max(as_utc(send_at), now) if send_at is not None else now
    message = Message(customer_id=customer.id, channel=channel, purpose=purpose, template_key=template_key,
                      idempotency_key=idempotency_key, status=QUEUED, data={}, text="", attempts=0,
                      broadcast_id=broadcast_id, journey_id=journey_id, journey_run_id=journey_run_id,
                      created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(message)
            session.flush()
    except IntegrityError:  # a concurrent call with the same key won
        return session.scalar(sa.select(Message).where(Message.idempotency_key == idempotency_key))

    try:
        template, version = get_version(session, template_key)
    except NotFound:
        record_status(session, message, FAILED, reason=f"template {template_key!r} does not exist", at=now, force=True)
        return message
    message.template_version = version.version
    if template.channel != channel:
        record_status(session, message, FAILED, at=now, force=True,
                      reason=f"template {template_key!r} is for {template.channel}, not {channel}")
        return message
    chosen = locale or customer_locale(customer, settings.default_locale)
    try:
        variables = template_variables(session, customer, context, settings.timezone)
        rendered = _render_for(message.id, channel, purpose, version, variables, chosen, settings)
    except RenderError as exc:
        message.locale = chosen
        record_status(session, message, FAILED, reason=f"template {template_key} v{version.version}: {exc.reason}",
                      at=now, force=True)
        return message
    _fill(message, rendered)
    message.address = rendered.data.get("url") if channel == "webhook" else guardrails.address_of(session, customer,
                                                                                                   channel)
    verdict = guardrails.check(session, customer_id=customer.id, channel=channel, purpose=purpose,
                               address=message.address, when=when, settings=settings, message_id=message.id)
    record_status(session, message, verdict.status, reason=verdict.reason, at=now, force=True)
    if verdict.status == SUPPRESSED:
        return message
    message.deferred_until = verdict.until
    from clm.jobs import queue

    queue.enqueue(session, SEND_JOB, {"message_id": message.id}, run_at=verdict.until or when,
                  unique_key=send_job_key(message.id), max_attempts=settings.send_max_attempts, now=now)
    session.flush()
    return message


def _fill(message: Message, rendered: Rendered) -> None:
    message.locale = rendered.locale
    message.subject = rendered.subject
    message.text = rendered.text
    message.html = rendered.html
    message.data = rendered.data


# --- reading ---------------------------------------------------------------------------------------


def get_message(session: Session, message_id: int) -> Message:
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound("message", message_id)
    return message


def list_messages(session: Session, *, customer_id: int | None = None, status: str | None = None,
                  channel: str | None = None, broadcast_id: int | None = None, journey_id: int | None = None,
                  after: str | None = None, limit: int = 50) -> tuple[list[Message], str | None]:
    """Messages newest first, filtered; with the cursor of the next page (None on the last)."""
    query = sa.select(Message)
    if customer_id is not None:
        query = query.where(Message.customer_id == customer_id)
    if status:
        query = query.where(Message.status == status)
    if channel:
        query = query.where(Message.channel == channel)
    if broadcast_id is not None:
        query = query.where(Message.broadcast_id == broadcast_id)
    if journey_id is not None:
        query = query.where(Message.journey_id == journey_id)
    return cursor.page_newest_first(session, query, Message.created_at, Message.id, after, max(1, min(limit, 500)))


def messages_of_customer(session: Session, customer_id: int, limit: int = 20) -> list[Message]:
    """The customer's latest messages (the customer 360)."""
    return list_messages(session, customer_id=customer_id, limit=limit)[0]


def count_by_status(session: Session, *, broadcast_id: int | None = None, journey_id: int | None = None,
                    since: datetime | None = None) -> dict[str, int]:
    """How many messages are in each status (a broadcast's or journey's report, the outbox at a glance)."""
    query = sa.select(Message.status, sa.func.count()).group_by(Message.status)
    if broadcast_id is not None:
        query = query.where(Message.broadcast_id == broadcast_id)
    if journey_id is not None:
        query = query.where(Message.journey_id == journey_id)
    if since is not None:
        query = query.where(Message.created_at >= since)
    return {status: n for status, n in session.execute(query)}
