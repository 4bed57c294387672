"""Queueing one template for many customers with bulk statements: broadcasts (and the demo).

A :class:`BulkQueue` works chunk by chunk in two halves. `read` takes a chunk of customer ids: skips
who already has a message under the key `<prefix>:<customer id>`, reads the customers, checks the
guardrails for the whole chunk (suppressions, consent, the frequency cap: one query each), draws
the message ids and hands the rendering to the renderer (clm.channels.rendering: worker processes
for a large call). `write` waits for the oldest chunk's rendering and writes its messages, their
first history rows and their send jobs (COPY on PostgreSQL). Reading the next chunks while the
oldest renders is what keeps the renderer's processes and this one busy at the same time.

`enqueue_many` is one call in the caller's transaction. A broadcast commits per chunk and reads
ahead across its transactions (clm.channels.broadcasts): a chunk read in one transaction is written in
a later one, which is safe because its message ids come from PostgreSQL's sequence; SQLite draws ids
after the current maximum, so there every chunk is read and written in one transaction.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.channels import guardrails
from clm.channels.models import FAILED, QUEUED, SUPPRESSED, Message, MessageEvent
from clm.channels.rendering import Batch, links_used, renderer_for
from clm.channels.templates import Rendered, customer_locale, get_version, own_variables, shared_variables
from clm.channels.tracking import secret as tracking_secret
from clm.customers.models import Customer, Identity
from clm.db.bulk import allocate_ids, insert_rows
from clm.db.idlist import list_value, one_of
from clm.lib.clock import as_utc, utcnow
from clm.lib.errors import FieldError

SEND_JOB = "channels.send"
_messages = Message.__table__
_events = MessageEvent.__table__
_COLUMNS = ("id", "customer_id", "channel", "purpose", "template_key", "template_version", "locale", "subject",
            "text", "html", "data", "address", "idempotency_key", "status", "status_reason", "deferred_until",
            "attempts", "broadcast_id", "created_at", "updated_at")


def enqueue_many(session: Session, *, customer_ids: list[int], channel: str, template_key: str,
                 idempotency_prefix: str, purpose: str = "marketing", context: dict | None = None,
                 send_at: datetime | None = None, broadcast_id: int | None = None, settings=None,
                 now: datetime | None = None, chunk: int = 2000, renderer=None) -> dict[str, int]:
    """Queue the template for many customers with bulk statements (broadcasts). Each recipient's key is
    `{idempotency_prefix}:{customer_id}`; recipients already queued under it are skipped, so a broadcast
    interrupted half-way can be queued again. Returns counts by status (and `existing`). The caller commits.

    The frequency cap is checked in bulk: customers at the cap are `deferred` with when they may get the
    next one, and their send job re-checks at the broadcast's time (the send-time check defers it again).

    Rendering goes to worker processes for a large call (clm.channels.rendering); a caller that calls
    many times passes its own `renderer` and closes it itself."""
    ids = list(dict.fromkeys(customer_ids))
    own_renderer = renderer is None
    if own_renderer:
        renderer = renderer_for(len(ids), getattr(_settings(settings), "render_processes", None))
    try:
        queue = BulkQueue(session, channel=channel, template_key=template_key, idempotency_prefix=idempotency_prefix,
                          purpose=purpose, context=context, send_at=send_at, broadcast_id=broadcast_id,
                          settings=settings, renderer=renderer)
        fresh = iter(allocate_ids(session, _messages, len(ids)))  # drawn once: SQLite's come from max(id)
        for start in range(0, len(ids), chunk):
            queue.read(ids[start:start + chunk], now=now, fresh=fresh)
            queue.write(keep=renderer.workers)
        queue.write(keep=0)
    finally:
        if own_renderer:
            renderer.close()
    return queue.totals()


def _settings(settings):
    if settings is not None:
        return settings
    from clm.config import get_settings

    return get_settings()


@dataclass
class _Chunk:
    """One chunk of recipients, read and handed to the renderer: per recipient (message id, customer id,
    key, address, why it is blocked, until when it is capped), the rendering batch in the same order, the
    renderer's futures, and what the chunk was read with (template version, time, quiet hours)."""

    recipients: list[tuple[int, int, str, str | None, str | None, datetime | None]]
    batch: Batch
    rendering: list
    version: object
    now: datetime
    run_at: datetime
    quiet: guardrails.Verdict | None


class BulkQueue:
    """`enqueue_many` chunk by chunk (see the module docstring): `read` a chunk, `write` the oldest read
    ones, `totals` for the counts by status. Chunks are written in the order they were read."""

    def __init__(self, session: Session, *, channel: str, template_key: str, idempotency_prefix: str,
                 purpose: str = "marketing", context: dict | None = None, send_at: datetime | None = None,
                 broadcast_id: int | None = None, settings=None, renderer=None):
        from clm.channels.service import _check_call

        _check_call(channel, purpose, f"{idempotency_prefix}:0", send_at)
        self.session, self.channel, self.template_key, self.prefix = session, channel, template_key, idempotency_prefix
        self.purpose, self.context, self.send_at, self.broadcast_id = purpose, context, send_at, broadcast_id
        self.settings = _settings(settings)
        self.renderer = renderer
        self.pending: deque[_Chunk] = deque()
        self.counts: Counter = Counter()
        self._version()  # a missing template or one for another channel is refused before any chunk

    def _version(self):
        template, version = get_version(self.session, self.template_key)
        if template.channel != self.channel:
            raise FieldError("template_key",
                             f"template {self.template_key!r} is for {template.channel}, not {self.channel}")
        return version

    def read(self, customer_ids: list[int], *, now: datetime | None = None, fresh=None) -> None:
        """Read a chunk and start rendering it. `fresh`: an iterator of message ids drawn beforehand
        (else drawn for this chunk). The template's current version is read again for every chunk: one
        deleted meanwhile raises NotFound, one moved to another channel FieldError."""
        session, settings = self.session, self.settings
        version = self._version()
        now = now or utcnow()
        when = max(as_utc(self.send_at), now) if self.send_at is not None else now
        quiet = guardrails.timing(session, customer_id=0, channel=self.channel, purpose=self.purpose, when=when,
                                  settings=_NoCap(settings)) if self.purpose == "marketing" else None
        if fresh is None:
            fresh = iter(allocate_ids(session, _messages, len(customer_ids)))
        recipients, batch = _read_chunk(session, customer_ids, fresh, self.channel, self.purpose, version,
                                        self.prefix, self.context, settings, when, self.counts)
        rendering = [self.renderer.submit(part) for part in batch.split(self.renderer.workers)]
        self.pending.append(_Chunk(recipients, batch, rendering, version, now,
                                   quiet.until if quiet is not None and quiet.until else when, quiet))

    def write(self, *, keep: int = 0) -> int:
        """Write the oldest chunks read until at most `keep` wait; how many were written."""
        written = 0
        while len(self.pending) > keep:
            _write_chunk(self.session, self.pending.popleft(), self.channel, self.purpose, self.template_key,
                         self.broadcast_id, self.settings, self.counts)
            written += 1
        return written

    def totals(self) -> dict[str, int]:
        return {status: n for status, n in self.counts.items() if n}


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


def _read_chunk(session, part, fresh, channel, purpose, version, prefix, context, settings, when, counts):
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
    lookups = bool(context) and any(context.get(k) is not None for k in ("order_id", "event_id"))
    for customer in customers:
        message_id = next(fresh)
        recipients.append((message_id, customer.id, keys[customer.id], addresses[customer.id],
                           blocked.get(customer.id), capped.get(customer.id)))
        to_render.append((message_id, tuple(customer), customer_locale(customer, settings.default_locale),
                          own_variables(session, customer.id, context) if lookups else None))
    batch = Batch(version.version, version.variants or {}, version.provider or {}, channel, purpose,
                  settings.public_url, tracking_secret(settings), links_used(version),
                  shared_variables(context, settings.timezone), to_render)
    return recipients, batch


def _write_chunk(session, read: _Chunk, channel, purpose, template_key, broadcast_id, settings, counts) -> None:
    """The chunk's messages, their first history rows and their send jobs, in bulk."""
    from clm.jobs import queue

    version, now, quiet = read.version, read.now, read.quiet
    rows, job_ids = [], []
    results = [result for future in read.rendering for result in future.result()]
    for (message_id, customer_id, key, address, blocked, capped), (_, _, locale, _), result in zip(
            read.recipients, read.batch.recipients, results, strict=True):
        r = Rendered(*result) if isinstance(result, tuple) else None
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
    queue.enqueue_many(session, SEND_JOB, [{"message_id": i} for i in job_ids], run_at=read.run_at,
                       max_attempts=settings.send_max_attempts, now=now)
