"""Queueing messages: what journeys, broadcasts and the service desk call.

`enqueue_message` writes the message row (rendered content, guardrail verdict) and its `channels.send`
job in the caller's transaction, so a message exists exactly when its job does. It is idempotent on
`idempotency_key`: asking again returns the first row. Problems with the content (a missing template,
a syntax error, an undefined variable) never raise: the message is `failed` with the reason and is
never sent. Problems with the call itself (an unknown channel, a missing customer) raise.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clm.channels import guardrails
from clm.channels.models import CHANNELS, FAILED, PURPOSES, QUEUED, SUPPRESSED, Message, MessageEvent
from clm.channels.rendering import Batch, links_used, renderer_for
from clm.channels.rendering import render_for as _render_for
from clm.channels.status import record_status
from clm.channels.templates import (
    Rendered,
    RenderError,
    customer_locale,
    get_version,
    template_variables,
)
from clm.channels.tracking import secret as tracking_secret
from clm.customers.models import Customer, Identity
from clm.db.bulk import allocate_ids, insert_rows
from clm.db.idlist import list_value, one_of
from clm.lib import cursor
from clm.lib.clock import as_utc, utcnow
from clm.lib.errors import FieldError, NotFound

SEND_JOB = "channels.send"
_messages = Message.__table__
_events = MessageEvent.__table__


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


_COLUMNS = ("id", "customer_id", "channel", "purpose", "template_key", "template_version", "locale", "subject",
            "text", "html", "data", "address", "idempotency_key", "status", "status_reason", "deferred_until",
            "attempts", "broadcast_id", "created_at", "updated_at")


def enqueue_many(session: Session, *, customer_ids: list[int], channel: str, template_key: str,
                 idempotency_prefix: str, purpose: str = "marketing", context: dict | None = None,
                 send_at: datetime | None = None, broadcast_id: int | None = None, settings=None,
                 now: datetime | None = None, chunk: int = 2000) -> dict[str, int]:
    """Queue the template for many customers with bulk statements (broadcasts). Each recipient's key is
    `{idempotency_prefix}:{customer_id}`; recipients already queued under it are skipped, so a broadcast
    interrupted half-way can be queued again. Returns counts by status (and `existing`). The caller commits.

    The frequency cap is checked in bulk: customers at the cap are `deferred` with when they may get the
    next one, and their send job re-checks at the broadcast's time (the send-time check defers it again)."""
    _check_call(channel, purpose, f"{idempotency_prefix}:0", send_at)
    settings = _settings(settings)
    now = now or utcnow()
    when = max(as_utc(send_at), now) if send_at is not None else now
    template, version = get_version(session, template_key)
    if template.channel != channel:
        raise FieldError("template_key", f"template {template_key!r} is for {template.channel}, not {channel}")
    quiet = guardrails.timing(session, customer_id=0, channel=channel, purpose=purpose, when=when,
                              settings=_NoCap(settings)) if purpose == "marketing" else None
    run_at = quiet.until if quiet is not None and quiet.until else when
    counts: Counter = Counter()
    ids = list(dict.fromkeys(customer_ids))
    # Chunk N+1 is read (and chunk N written) while the renderer works on chunk N: see clm.channels.rendering.
    renderer = renderer_for(len(ids), getattr(settings, "render_processes", None))
    fresh = iter(allocate_ids(session, _messages, len(ids)))  # drawn once: SQLite's come from max(id)
    pending: deque = deque()
    try:
        for start in range(0, len(ids), chunk):
            read = _read_chunk(session, ids[start:start + chunk], fresh, channel, purpose, template_key, version,
                               idempotency_prefix, context, settings, when, counts)
            pending.append((read, renderer.submit(read.batch)))
            if len(pending) > renderer.workers:
                _write_chunk(session, *pending.popleft(), channel, purpose, template_key, version, broadcast_id,
                             settings, now, run_at, quiet, counts)
        while pending:
            _write_chunk(session, *pending.popleft(), channel, purpose, template_key, version, broadcast_id,
                         settings, now, run_at, quiet, counts)
    finally:
        renderer.close()
    return {status: n for status, n in counts.items() if n}


def _bulk_insert(session: Session, table: sa.Table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """COPY on PostgreSQL (several times faster than executemany for wide rows), executemany on SQLite."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        insert_rows(session, table, columns, rows)
        return
    import orjson

    json_at = [i for i, c in enumerate(columns) if c in ("data", "detail")]
    cur = session.connection().connection.driver_connection.cursor()
    names = ", ".join(columns)  # from the model, never input
    with cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        for row in rows:
            if json_at:
                row = list(row)
                for i in json_at:
                    row[i] = orjson.dumps(row[i]).decode()
            copy.write_row(row)


class _NoCap:
    """Settings as seen by the broadcast-wide quiet-hours check (the cap is per customer)."""

    def __init__(self, settings):
        self._s = settings
        self.marketing_cap = 0

    def __getattr__(self, name):
        return getattr(self._s, name)


# What templates and guardrails read of a customer: plain rows load several times faster than ORM objects.
_PROFILE = (Customer.id, Customer.external_id, Customer.email, Customer.phone, Customer.full_name, Customer.given_name,
            Customer.family_name, Customer.city, Customer.birthday, Customer.gender, Customer.lifecycle_stage,
            Customer.traits)


@dataclass
class _Chunk:
    """One chunk of recipients, read and ready to render: per recipient (message id, customer id, key,
    address, why it is blocked, until when it is capped), and the rendering batch in the same order."""

    recipients: list[tuple[int, int, str, str | None, str | None, datetime | None]]
    batch: Batch


def _read_chunk(session, part, fresh, channel, purpose, template_key, version, prefix, context, settings, when,
                counts) -> _Chunk:
    keys = {cid: f"{prefix}:{cid}" for cid in part}
    dialect = session.get_bind().dialect.name
    # Lists as one parameter (= ANY / json_each): a 2,000-value IN list cost more to compile than to run.
    taken = set(session.scalars(sa.select(Message.idempotency_key).where(
        one_of(Message.idempotency_key, "keys", dialect, sa.String)), {"keys": list_value(keys.values(), dialect)}))
    customers = [c for c in session.execute(sa.select(*_PROFILE).where(
        one_of(Customer.id, "ids", dialect), Customer.merged_into_id.is_(None)), {"ids": list_value(part, dialect)})
        if keys[c.id] not in taken]
    counts["existing"] += len(taken)
    psids: dict[int, str] = {}
    if channel == "messenger" and customers:
        for cid, value in session.execute(sa.select(Identity.customer_id, Identity.value).where(
                one_of(Identity.customer_id, "ids", dialect), Identity.kind == "facebook").order_by(Identity.id),
                {"ids": list_value([c.id for c in customers], dialect)}):
            psids[cid] = value
    addresses = {c.id: psids.get(c.id) if channel == "messenger" else guardrails.address_of(session, c, channel)
                 for c in customers}
    blocked = guardrails.blocked_many(session, [(c.id, addresses[c.id]) for c in customers if channel != "webhook"],
                                      channel, purpose)
    capped = guardrails.capped_many(session, [c.id for c in customers], when, settings.marketing_cap,
                                    settings.marketing_cap_days) if purpose == "marketing" else {}
    recipients, to_render = [], []
    for customer in customers:
        message_id = next(fresh)
        recipients.append((message_id, customer.id, keys[customer.id], addresses[customer.id],
                           blocked.get(customer.id), capped.get(customer.id)))
        to_render.append((message_id, template_variables(session, customer, context, settings.timezone),
                          customer_locale(customer, settings.default_locale)))
    batch = Batch(version.version, version.variants or {}, version.provider or {}, channel, purpose,
                  settings.public_url, tracking_secret(settings), links_used(version), to_render)
    return _Chunk(recipients, batch)


def _write_chunk(session, read: _Chunk, rendering, channel, purpose, template_key, version, broadcast_id, settings,
                 now, run_at, quiet, counts) -> None:
    """The chunk's messages, their first history rows and their send jobs, in bulk."""
    from clm.jobs import queue

    rows, job_ids = [], []
    for (message_id, customer_id, key, address, blocked, capped), (_, _, locale), result in zip(
            read.recipients, read.batch.recipients, rendering.result(), strict=True):
        r = result if isinstance(result, Rendered) else None
        status, reason, until = QUEUED, None, None
        if r is None:
            status, reason = FAILED, f"template {template_key} v{version.version}: {result}"
        if channel == "webhook":
            address = r.data.get("url") if r else None
        if status == QUEUED and channel == "webhook" and not address:
            status, reason = SUPPRESSED, f"the customer has no {guardrails.NEEDS['webhook']} for webhook"
        elif status == QUEUED and blocked:
            status, reason = SUPPRESSED, blocked
        elif status == QUEUED and capped:
            status, until = "deferred", capped
            reason = f"frequency cap: {settings.marketing_cap} marketing messages in {settings.marketing_cap_days} days"
        elif status == QUEUED and quiet is not None and quiet.status == "deferred":
            status, until, reason = "deferred", quiet.until, quiet.reason
        counts[status] += 1
        if status in (QUEUED, "deferred"):
            job_ids.append(message_id)
        rows.append((message_id, customer_id, channel, purpose, template_key, version.version,
                     r.locale if r else locale, r.subject if r else None, r.text if r else "", r.html if r else None,
                     r.data if r else {}, address, key, status, reason, until, 0, broadcast_id, now, now))
    _bulk_insert(session, _messages, _COLUMNS, rows)
    _bulk_insert(session, _events, ("message_id", "status", "reason", "detail", "at"),
                 [(r[0], r[13], r[14], {}, now) for r in rows])
    # The messages are new, so no job can exist for them yet: the jobs go in without unique keys,
    # which lets the queue COPY them on PostgreSQL (the message's own key guards duplicates).
    queue.enqueue_many(session, SEND_JOB, [{"message_id": i} for i in job_ids], run_at=run_at,
                       max_attempts=settings.send_max_attempts, now=now)


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
