"""The `channels.send` job: re-check the guardrails, hand the message to its adapter, record the outcome.

## Exactly once, as far as each provider allows

A job runs at least once (clm.jobs); a message must go out at most once and never be lost. The handler
works in three transactions:

1. **Claim.** Under a lock on the message (and its customer, so two workers cannot both pass the
   frequency cap), re-check the guardrails, then mark the message ``sending`` (attempts + 1) and commit.
2. **Send**, outside any transaction (a slow provider holds no lock, and on SQLite no write lock).
3. **Record** the result and the effect key ``channels.send:{id}`` (clm.jobs.effects) and commit.

A worker that dies in (2) leaves the message ``sending``. When the job runs again it finds the claim
and cannot know whether the provider accepted the message:

- adapters whose provider accepts an idempotency key (``adapter.idempotent = True``: eSMS ``RequestId``,
  ZNS ``tracking_id``, webhooks' ``X-Clm-Idempotency-Key``) are called again with the same key: the
  provider drops the duplicate (**at least once, deduplicated by the provider**);
- the others (SMTP email has no such key) are **not** sent again: the message is ``failed`` with a
  reason that says it may have arrived (**at most once**). A duplicate promotion is worse than one
  uncertain message, and the reason tells a person exactly which one to check.

A dead worker in (1) or (3) loses nothing: (1) rolled back, and in (3) the effect key decides.

Errors: ``TransientError`` puts the message back to ``queued`` and fails the job, which the queue
retries with its backoff; after ``CLM_SEND_MAX_ATTEMPTS`` tries the message is ``failed``.
``PermanentError`` makes it ``failed`` with the provider's code and reason at once; a hard bounce
(``error.hard_bounce``) makes it ``bounced`` and suppresses the address.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.channels import guardrails
from clm.channels.adapters.base import Adapter, Outgoing, PermanentError, SendResult, TransientError
from clm.channels.models import DEFERRED, FAILED, QUEUED, SENDING, SUPPRESSED, WAITING, Message, Suppression
from clm.channels.service import SEND_JOB, send_job_key
from clm.channels.status import record_status
from clm.channels.tracking import Links
from clm.customers.models import Customer
from clm.db.engine import for_writing
from clm.jobs import queue
from clm.jobs.effects import effect_done, record_effect
from clm.jobs.queue import Claimed
from clm.jobs.runner import JobError
from clm.lib.clock import utcnow

INTERRUPTED = ("interrupted: the worker stopped while handing the message to {provider}; it may or may not have "
               "arrived and {provider} cannot tell duplicates apart, so it is not sent again (at most once)")


def effect_key(message_id: int) -> str:
    return f"{SEND_JOB}:{message_id}"


def send_handler(settings, adapters: dict[str, Adapter] | None = None):
    """The job handler, with the adapters built once per worker."""
    if adapters is None:
        from clm.channels.adapters.registry import build_adapters

        adapters = build_adapters(settings)

    def handle(session: Session, job: Claimed) -> None:
        send_message(session, job, adapters=adapters, settings=settings)

    return handle


def register(registry, settings, adapters: dict[str, Adapter] | None = None) -> None:
    """`channels.send` in the worker's registry: one job at a time (`send_message`) or, for a claimed
    batch, `send_many`, sharing one set of adapters (one SMTP connection per worker)."""
    if adapters is None:
        from clm.channels.adapters.registry import build_adapters

        adapters = build_adapters(settings)

    def many(session_factory, jobs: Sequence[Claimed]) -> list[tuple[Claimed, BaseException]]:
        return send_many(session_factory, jobs, adapters=adapters, settings=settings)

    registry.register(SEND_JOB, send_handler(settings, adapters), on_dead=job_died, many=many)


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _locked_message(session: Session, message_id: int) -> Message | None:
    return session.get(Message, message_id, with_for_update=_postgres(session), populate_existing=True)


def last_inbound_messenger(session: Session, customer_id: int) -> datetime | None:
    """When the customer last wrote to the page on Messenger (the start of the 24-hour window)."""
    from clm.tracking.models import Event

    rows = session.execute(sa.select(Event.timestamp, Event.properties).where(
        Event.customer_id == customer_id, Event.name == "Message Received")
        .order_by(Event.timestamp.desc()).limit(200))
    for at, props in rows:
        if (props or {}).get("channel") == "messenger":
            return at
    return None


def build_outgoing(session: Session, message: Message, settings) -> Outgoing:
    """The adapter's view of a message row."""
    data: dict[str, Any] = {**(message.data or {}), "purpose": message.purpose}
    headers: dict[str, str] = {}
    if message.channel == "email" and message.purpose == "marketing":
        # RFC 8058: one HTTPS URI, and the exact one-click pair (mail providers POST it, no cookies).
        headers["List-Unsubscribe"] = f"<{Links(settings, message.id).unsubscribe()}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if message.channel == "email" and isinstance(data.get("headers"), dict):
        # Threading headers a sender set (the service desk's replies: a signed Message-ID, In-Reply-To, ...).
        headers.update({str(k): str(v) for k, v in data["headers"].items()})
    if message.channel == "messenger":
        last = last_inbound_messenger(session, message.customer_id)
        known = data.get("last_inbound_at")  # the service desk knows of messages that are not events
        if known and (last is None or known > last.isoformat()):
            data["last_inbound_at"] = known
        else:
            data["last_inbound_at"] = last.isoformat() if last else None
    if message.channel == "webhook":
        data["body"] = {"message_id": message.id, "customer_id": message.customer_id, "template": message.template_key,
                        "purpose": message.purpose, "subject": message.subject, "text": message.text,
                        "data": {k: v for k, v in (message.data or {}).items() if k not in ("url", "purpose")}}
    return Outgoing(message_id=message.id, idempotency_key=message.idempotency_key, channel=message.channel,
                    to=message.address or "", text=message.text or "", subject=message.subject, html=message.html,
                    data=data, headers=headers)


@dataclass
class InFlight:
    """A message claimed (`sending`, committed) and about to be handed to its adapter."""

    job: Claimed
    message_id: int
    attempt: int
    adapter: Adapter
    outgoing: Outgoing
    result: SendResult | None = None
    error: Exception | None = None

    def send(self) -> None:
        try:
            self.result = self.adapter.send(self.outgoing)
        except (TransientError, PermanentError) as exc:
            self.error = exc
        except Exception as exc:  # an adapter bug: treated as transient, with what it said
            self.error = TransientError(f"{type(exc).__name__}: {exc}")


def send_message(session: Session, job: Claimed, *, adapters: dict[str, Adapter], settings,
                 now: datetime | None = None) -> str:
    """Run one send job; returns what happened to the message (for tests and logs)."""
    # 1. Claim.
    claimed = claim_message(session, job, adapters=adapters, settings=settings, now=now)
    session.commit()  # the claim is durable before the provider hears of the message
    if isinstance(claimed, str):
        return claimed
    # 2. Send, outside any transaction.
    claimed.send()
    # 3. Record.
    for_writing(session)
    outcome, retry = record_outcome(session, claimed)
    session.commit()
    if retry is not None:
        raise JobError(retry)  # the queue retries the job with its backoff
    return outcome


def claim_message(session: Session, job: Claimed, *, adapters: dict[str, Adapter], settings,
                  now: datetime | None = None) -> InFlight | str:
    """Step 1 in the caller's transaction: lock the message, re-check the guardrails and mark it `sending`.
    Returns the message to send, or what happened instead (skipped, interrupted, failed, suppressed,
    deferred): then the job is done. The caller commits before sending."""
    message_id = job.args.get("message_id")
    if not isinstance(message_id, int):
        raise JobError("channels.send needs an integer message_id", permanent=True)
    key = effect_key(message_id)
    now = now or utcnow()
    message = _locked_message(session, message_id)
    if message is None or effect_done(session, key) or message.status not in (*WAITING, SENDING):
        return "skipped"
    adapter = adapters.get(message.channel)
    if message.status == SENDING and not getattr(adapter, "idempotent", False):
        provider = getattr(adapter, "provider", None) or message.provider or message.channel
        record_status(session, message, FAILED, reason=INTERRUPTED.format(provider=provider), at=now, force=True)
        record_effect(session, key, job.id)
        return "interrupted"
    if adapter is None:
        from clm.channels.adapters.registry import SETTING_HINTS

        hint = SETTING_HINTS.get(message.channel, "configure its provider")
        record_status(session, message, FAILED, at=now, force=True,
                      reason=f"no {message.channel} provider is configured: {hint}")
        return "failed"
    customer = session.get(Customer, message.customer_id, with_for_update=_postgres(session), populate_existing=True)
    if message.channel != "webhook":
        message.address = guardrails.address_of(session, customer, message.channel)  # today's address
    verdict = guardrails.check(session, customer_id=message.customer_id, channel=message.channel,
                               purpose=message.purpose, address=message.address, when=now, settings=settings,
                               message_id=message.id)
    if verdict.status == SUPPRESSED:
        record_status(session, message, SUPPRESSED, reason=verdict.reason, at=now, force=True)
        return "suppressed"
    if verdict.status == DEFERRED:
        message.deferred_until = verdict.until
        record_status(session, message, DEFERRED, reason=verdict.reason, at=now, force=True)
        queue.enqueue(session, SEND_JOB, {"message_id": message.id}, run_at=verdict.until,
                      unique_key=send_job_key(message.id, verdict.until), max_attempts=job.max_attempts, now=now)
        return "deferred"
    outgoing = build_outgoing(session, message, settings)
    message.attempts += 1
    message.sent_at = now
    message.provider = getattr(adapter, "provider", None) or message.channel
    message.deferred_until = None
    record_status(session, message, SENDING, at=now, force=True)
    return InFlight(job, message.id, message.attempts, adapter, outgoing)


def record_outcome(session: Session, sent: InFlight) -> tuple[str, str | None]:
    """Step 3 in the caller's transaction: the provider's answer on the message, and the effect key
    when the message is finished. Returns (outcome, None), or (queued, error) when the job must be
    retried after a transient error."""
    job, attempt, result, error = sent.job, sent.attempt, sent.result, sent.error
    message = _locked_message(session, sent.message_id)
    if message is None or message.attempts != attempt:
        return "taken over", None  # another worker took the message over meanwhile; its outcome stands
    key = effect_key(message.id)
    done = utcnow()
    if result is not None:
        message.provider_id = result.provider_id
        record_status(session, message, result.status or "sent", detail=result.detail, at=done, force=True)
        record_effect(session, key, job.id)
        return message.status, None
    reason = getattr(error, "reason", str(error))
    code = getattr(error, "code", None)
    detail = {"code": code, "attempt": attempt} if code is not None else {"attempt": attempt}
    text = f"[{code}] {reason}" if code is not None else reason
    if isinstance(error, TransientError):
        if job.attempt >= job.max_attempts:
            record_status(session, message, FAILED, reason=f"gave up after {attempt} attempts: {text}",
                          detail=detail, at=done, force=True)
            record_effect(session, key, job.id)
            return "failed", None
        record_status(session, message, QUEUED, reason=f"attempt {attempt} failed, retrying: {text}", detail=detail,
                      at=done, force=True)
        return QUEUED, text
    if getattr(error, "hard_bounce", False):
        _suppress(session, message, "hard_bounce", text, done)
        record_status(session, message, "bounced", reason=text, detail=detail, at=done, force=True)
    else:
        record_status(session, message, FAILED, reason=text, detail=detail, at=done, force=True)
    record_effect(session, key, job.id)
    return message.status, None


def send_many(session_factory, jobs: Sequence[Claimed], *, adapters: dict[str, Adapter],
              settings) -> list[tuple[Claimed, BaseException]]:
    """The jobs of a claimed batch with far fewer commits than one job at a time (the queue's `many` mode).

    Each transaction records the outcomes of the messages just sent, completes their jobs (or fails them
    for a retry), and claims the next messages; one commit, then those are sent. How many go out between
    two commits depends on what a crash would cost: messages whose provider deduplicates (eSMS, webhooks:
    `adapter.idempotent`) are claimed together, since sending them again is harmless; a message whose
    provider cannot tell a duplicate (SMTP, SpeedSMS, ZNS, Messenger) ends the group, so a worker dying
    in a send leaves at most one of them uncertain, exactly as one job at a time would. Per message that
    is one durable commit instead of three. Each claim runs in a savepoint: a failure (a bug, a lost
    row) is returned for the queue to record and rolls back only that job's claim."""
    failures: list[tuple[Claimed, BaseException]] = []
    todo = list(jobs)
    flying: list[InFlight] = []
    with session_factory() as session:
        while todo or flying:
            for_writing(session)
            for sent in flying:
                try:
                    with session.begin_nested():
                        _, retry = record_outcome(session, sent)
                except Exception as exc:  # the message stays `sending`: its retry treats it as interrupted
                    failures.append((sent.job, exc))
                    continue
                if retry is not None:
                    queue.fail(session, sent.job, retry)
                else:
                    queue.complete(session, sent.job)
            flying = []
            while todo:
                job = todo.pop(0)
                try:
                    with session.begin_nested():
                        claimed = claim_message(session, job, adapters=adapters, settings=settings)
                except Exception as exc:  # recorded on the job by the queue after this batch
                    failures.append((job, exc))
                    continue
                if isinstance(claimed, str):
                    queue.complete(session, job)
                    continue
                flying.append(claimed)
                if not getattr(claimed.adapter, "idempotent", False):
                    break  # at most one message whose duplicate nobody would catch per commit
            session.commit()  # outcomes and claims are durable before the provider hears of the next ones
            for sent in flying:
                sent.send()
    return failures


def job_died(session: Session, job: Claimed, error: str) -> None:
    """The queue parked a send job dead (its handler kept failing, or its worker died on the last
    attempt): the message is `failed` and says so instead of waiting, or staying `sending`, forever.
    Registered as the kind's `on_dead` hook; runs in the transaction that parks the job."""
    message_id = job.args.get("message_id")
    message = _locked_message(session, message_id) if isinstance(message_id, int) else None
    if message is None or message.status not in (*WAITING, SENDING) or effect_done(session, effect_key(message.id)):
        return
    reason = f"the send job failed {job.attempt} times: {error}"
    if message.status == SENDING:  # the worker stopped inside the send: nobody knows if it arrived
        reason = (f"interrupted: the worker stopped while handing the message to {message.provider or message.channel} "
                  f"and the send job has no attempts left ({error}); it may or may not have arrived")
    record_status(session, message, FAILED, reason=reason, force=True)


def _suppress(session: Session, message: Message, reason: str, detail: str, at: datetime) -> None:
    address = guardrails.normalize_address(message.channel, message.address)
    if not address:
        return
    exists = session.scalar(sa.select(Suppression.id).where(
        Suppression.channel == message.channel, Suppression.address == address, Suppression.reason == reason))
    if exists is None:
        session.add(Suppression(channel=message.channel, address=address, reason=reason, detail=detail,
                                customer_id=message.customer_id, message_id=message.id, at=at))
        session.flush()


def suppress_address(session: Session, channel: str, address: str, reason: str, *, detail: str | None = None,
                     customer_id: int | None = None, at: datetime | None = None) -> Suppression:
    """Put an address on the suppression list (a complaint from a provider's report, a manual entry)."""
    address = guardrails.normalize_address(channel, address) or ""
    row = session.scalar(sa.select(Suppression).where(Suppression.channel == channel, Suppression.address == address,
                                                      Suppression.reason == reason))
    if row is None:
        row = Suppression(channel=channel, address=address, reason=reason, detail=detail, customer_id=customer_id,
                          at=at or utcnow())
        session.add(row)
        session.flush()
    return row
