"""The send job: real SMTP delivery, retries, permanent failures, bounces, and guardrails at send time."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from clm.channels.adapters.base import Outgoing, PermanentError, SendResult, TransientError
from clm.channels.models import Message, MessageEvent, Suppression
from clm.channels.sending import send_handler
from clm.channels.service import enqueue_message
from clm.customers.consent import record_consent
from clm.jobs.models import Job
from clm.jobs.runner import Registry, run_due


def registry_for(settings, adapters=None) -> Registry:
    registry = Registry()
    registry.register("channels.send", send_handler(settings, adapters))
    return registry


def fresh(db, message: Message) -> Message:
    db.expire_all()
    return db.get(Message, message.id)


class Scripted:
    """An adapter that answers from a script (results or errors) and keeps what it was given."""

    channel = "email"
    idempotent = False

    def __init__(self, *answers):
        self.answers = list(answers)
        self.sent: list[Outgoing] = []

    def send(self, message: Outgoing) -> SendResult:
        self.sent.append(message)
        answer = self.answers.pop(0) if self.answers else SendResult(provider_id=f"p-{message.message_id}")
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_a_queued_email_reaches_the_smtp_server_once_with_its_unsubscribe_headers(
        db, session_factory, channel_settings, smtp, make_customer, welcome):
    sink, _ = smtp
    customer = make_customer("an@example.vn")
    message = enqueue_message(db, customer_id=customer.id, channel="email", template_key="welcome",
                              idempotency_key="welcome:1", settings=channel_settings)
    db.commit()
    registry = registry_for(channel_settings)
    assert run_due(session_factory, registry, "w") == 1
    assert run_due(session_factory, registry, "w") == 0
    assert len(sink.messages) == 1
    mail = sink.messages[0]
    assert mail["To"] == "an@example.vn"
    assert mail["Subject"] == "Chào An"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["List-Unsubscribe"].startswith("<https://shop.example.vn/t/u/")
    assert mail.get_body(("plain",)).get_content().strip() == "Xin chào Nguyễn Văn An!"
    html = mail.get_body(("html",)).get_content()
    assert "https://shop.example.vn/t/c/" in html and "/t/o/" in html
    row = fresh(db, message)
    assert row.status == "sent"
    assert row.provider_id == mail["Message-ID"]
    assert row.attempts == 1
    statuses = list(db.scalars(sa.select(MessageEvent.status).where(MessageEvent.message_id == message.id)
                               .order_by(MessageEvent.id)))
    assert statuses == ["queued", "sending", "sent"]


def test_a_transient_error_puts_the_message_back_and_the_queue_retries_it_after_the_backoff(
        db, session_factory, channel_settings, make_customer, welcome):
    customer = make_customer()
    message = enqueue_message(db, customer_id=customer.id, channel="email", template_key="welcome",
                              idempotency_key="k", settings=channel_settings)
    db.commit()
    adapter = Scripted(TransientError("connection refused"))
    registry = registry_for(channel_settings, {"email": adapter})
    run_due(session_factory, registry, "w", rng=random.Random(1))
    row = fresh(db, message)
    assert row.status == "queued"
    assert "attempt 1 failed, retrying: connection refused" == row.status_reason
    job = db.scalar(sa.select(Job))
    assert job.state == "retryable"
    run_due(session_factory, registry, "w", now=job.scheduled_at + timedelta(seconds=1))
    row = fresh(db, message)
    assert row.status == "sent" and row.attempts == 2
    assert len(adapter.sent) == 2 and adapter.sent[0].idempotency_key == adapter.sent[1].idempotency_key


def test_transient_errors_become_a_failure_when_the_attempts_run_out(db, session_factory, channel_settings,
                                                                     make_customer, welcome):
    settings = channel_settings.model_copy(update={"send_max_attempts": 2})
    customer = make_customer()
    message = enqueue_message(db, customer_id=customer.id, channel="email", template_key="welcome",
                              idempotency_key="k", settings=settings)
    db.commit()
    registry = registry_for(settings, {"email": Scripted(TransientError("timeout", 421), TransientError("timeout", 421))})
    now = datetime.now(UTC)
    for _ in range(2):
        run_due(session_factory, registry, "w", now=now)
        now += timedelta(days=1)
    row = fresh(db, message)
    assert row.status == "failed"
    assert row.status_reason == "gave up after 2 attempts: [421] timeout"
    assert db.scalar(sa.select(Job.state)) == "completed"


def test_a_permanent_error_fails_the_message_with_the_providers_code_and_is_not_retried(
        db, session_factory, channel_settings, make_customer, welcome):
    customer = make_customer()
    message = enqueue_message(db, customer_id=customer.id, channel="email", template_key="welcome",
                              idempotency_key="k", settings=channel_settings)
    db.commit()
    adapter = Scripted(PermanentError("message rejected as spam", 554))
    run_due(session_factory, registry_for(channel_settings, {"email": adapter}), "w")
    row = fresh(db, message)
    assert (row.status, row.status_reason) == ("failed", "[554] message rejected as spam")
    assert db.scalar(sa.select(Job.state)) == "completed"
    assert len(adapter.sent) == 1


def test_a_hard_bounce_from_the_smtp_server_suppresses_the_address_even_for_transactional_mail(
        db, session_factory, channel_settings, smtp, make_customer, welcome):
    sink, _ = smtp
    sink.refuse["ghost@example.vn"] = "550 5.1.1 no such user"
    customer = make_customer("Ghost@Example.vn")
    first = enqueue_message(db, customer_id=customer.id, channel="email", template_key="welcome",
                            idempotency_key="a", settings=channel_settings)
    db.commit()
    run_due(session_factory, registry_for(channel_settings), "w")
    row = fresh(db, first)
    assert row.status == "bounced"
    assert "550" in row.status_reason
    suppression = db.scalar(sa.select(Suppression))
    assert (suppression.channel, suppression.address, suppression.reason) == ("email", "ghost@example.vn", "hard_bounce")
    receipt = enqueue_message(db, customer_id=customer.id, channel="email", template_key="welcome",
                              purpose="transactional", idempotency_key="b", settings=channel_settings)
    assert receipt.status == "suppressed"
    assert "hard_bounce" in receipt.status_reason
    assert sink.messages == []


def test_withdrawing_consent_stops_a_message_that_is_still_queued(db, session_factory, channel_settings, smtp,
                                                                  make_customer, welcome):
    sink, _ = smtp
    customer = make_customer()
    message = enqueue_message(db, customer_id=customer.id, channel="email", template_key="welcome",
                              idempotency_key="k", settings=channel_settings)
    record_consent(db, customer.id, channel="email", purpose="marketing", granted=False, source="phone call")
    db.commit()
    run_due(session_factory, registry_for(channel_settings), "w")
    row = fresh(db, message)
    assert row.status == "suppressed"
    assert row.status_reason == "consent for email marketing was withdrawn"
    assert sink.messages == []


def test_a_channel_without_a_provider_fails_with_the_setting_to_add(db, session_factory, channel_settings,
                                                                     make_customer, welcome):
    customer = make_customer()
    message = enqueue_message(db, customer_id=customer.id, channel="email", template_key="welcome",
                              idempotency_key="k", settings=channel_settings)
    db.commit()
    run_due(session_factory, registry_for(channel_settings, {}), "w")
    row = fresh(db, message)
    assert row.status == "failed" and "CLM_SMTP_URL" in row.status_reason


@pytest.mark.parametrize("idempotent", [False, True])
def test_a_message_a_worker_died_inside_is_resent_only_when_the_provider_deduplicates(
        db, session_factory, channel_settings, make_customer, welcome, idempotent):
    customer = make_customer()
    message = enqueue_message(db, customer_id=customer.id, channel="email", template_key="welcome",
                              idempotency_key="k", settings=channel_settings)
    db.commit()

    class DiesInside(Scripted):
        def send(self, outgoing):
            super().send(outgoing)
            raise KeyboardInterrupt  # stands for SIGKILL: nothing after the send runs

    dying = DiesInside()
    with pytest.raises(KeyboardInterrupt):
        run_due(session_factory, registry_for(channel_settings, {"email": dying}), "w", lease_seconds=1)
    assert fresh(db, message).status == "sending"
    later = datetime.now(UTC) + timedelta(minutes=5)  # the dead worker's lease has expired
    survivor = Scripted()
    survivor.idempotent = idempotent
    run_due(session_factory, registry_for(channel_settings, {"email": survivor}), "w2", now=later)
    row = fresh(db, message)
    if idempotent:
        assert row.status == "sent" and row.attempts == 2
        assert [o.idempotency_key for o in survivor.sent] == ["k"]
    else:
        assert row.status == "failed" and row.status_reason.startswith("interrupted:")
        assert survivor.sent == []


def test_a_send_job_that_keeps_failing_leaves_the_message_failed_with_the_error(
        db, session_factory, channel_settings, make_customer, welcome):
    from clm.channels.sending import job_died

    settings = channel_settings.model_copy(update={"send_max_attempts": 1})
    customer = make_customer()
    message = enqueue_message(db, customer_id=customer.id, channel="email", template_key="welcome",
                              idempotency_key="k", settings=settings)
    db.commit()

    def crash(session, job):
        raise RuntimeError("database went away")

    registry = Registry()
    registry.register("channels.send", crash, on_dead=job_died)
    run_due(session_factory, registry, "w")
    row = fresh(db, message)
    assert row.status == "failed"
    assert row.status_reason == "the send job failed 1 times: RuntimeError: database went away"


def test_a_worker_that_dies_inside_the_last_attempt_leaves_the_message_failed_not_sending(
        db, session_factory, channel_settings, make_customer, welcome):
    from clm.channels.sending import job_died

    settings = channel_settings.model_copy(update={"send_max_attempts": 2})
    customer = make_customer()
    message = enqueue_message(db, customer_id=customer.id, channel="email", template_key="welcome",
                              idempotency_key="k", settings=settings)
    db.commit()

    class DiesInside(Scripted):
        idempotent = True  # so each attempt sends again (and dies again) until the attempts run out

        def send(self, outgoing):
            super().send(outgoing)
            raise KeyboardInterrupt  # stands for SIGKILL: nothing after the send runs

    def registry_with(adapter):
        registry = Registry()
        registry.register("channels.send", send_handler(settings, {"email": adapter}), on_dead=job_died)
        return registry

    dying, now = DiesInside(), datetime.now(UTC)
    for attempt in (1, 2):
        with pytest.raises(KeyboardInterrupt):
            run_due(session_factory, registry_with(dying), f"w{attempt}", now=now, lease_seconds=60)
        assert fresh(db, message).status == "sending"
        now += timedelta(minutes=5)  # that worker's lease expires
    survivor = Scripted()
    assert run_due(session_factory, registry_with(survivor), "w3", now=now) == 0  # nothing left to run
    job = db.scalar(sa.select(Job))
    assert job.state == "dead" and job.errors[-1]["error"].startswith("lease expired: worker w2")
    row = fresh(db, message)
    assert row.status == "failed"
    assert row.status_reason.startswith("interrupted: the worker stopped while handing the message to email")
    assert "no attempts left" in row.status_reason
    assert len(dying.sent) == 2 and survivor.sent == []


# --- a claimed batch sent together (send_many) ---------------------------------------------------------


def many_registry(settings, adapters) -> Registry:
    from clm.channels.sending import register

    registry = Registry()
    register(registry, settings, adapters)
    return registry


def queue_emails(db, settings, make_customer, n: int) -> list[Message]:
    messages = [enqueue_message(db, customer_id=make_customer().id, channel="email", template_key="welcome",
                                idempotency_key=f"b:{i}", settings=settings) for i in range(n)]
    db.commit()
    return messages


def test_a_batch_goes_to_the_smtp_server_once_each_and_every_job_completes(
        db, session_factory, channel_settings, smtp, make_customer, welcome):
    from clm.channels.adapters.registry import build_adapters

    sink, _ = smtp
    messages = queue_emails(db, channel_settings, make_customer, 6)
    assert run_due(session_factory, many_registry(channel_settings, build_adapters(channel_settings)), "w") == 6
    assert sorted(sink.by_message_id().values()) == [1] * 6
    db.expire_all()
    assert {fresh(db, m).status for m in messages} == {"sent"}
    assert {j.state for j in db.scalars(sa.select(Job))} == {"completed"}
    statuses = list(db.scalars(sa.select(MessageEvent.status).where(MessageEvent.message_id == messages[3].id)
                               .order_by(MessageEvent.id)))
    assert statuses == ["queued", "sending", "sent"]


def test_in_a_batch_each_outcome_lands_on_its_own_message_and_job(
        db, session_factory, channel_settings, make_customer, welcome):
    messages = queue_emails(db, channel_settings, make_customer, 5)
    record_consent(db, messages[4].customer_id, channel="email", purpose="marketing", granted=False, source="test")
    db.commit()
    adapter = Scripted(SendResult(provider_id="a"), TransientError("timeout"), PermanentError("no such user", 550),
                       SendResult(provider_id="d"))
    run_due(session_factory, many_registry(channel_settings, {"email": adapter}), "w", rng=random.Random(0))
    rows = [fresh(db, m) for m in messages]
    assert [r.status for r in rows] == ["sent", "queued", "failed", "sent", "suppressed"]
    assert rows[1].status_reason == "attempt 1 failed, retrying: timeout"
    assert rows[2].status_reason == "[550] no such user"
    jobs = {j.args["message_id"]: j for j in db.scalars(sa.select(Job))}
    assert jobs[rows[1].id].state == "retryable" and jobs[rows[1].id].errors[-1]["error"] == "timeout"
    assert {jobs[r.id].state for r in rows if r is not rows[1]} == {"completed"}
    assert len(adapter.sent) == 4  # the suppressed one was never handed over


@pytest.mark.parametrize("idempotent", [False, True])
def test_a_worker_dying_inside_a_batch_leaves_at_most_one_uncertain_message_that_nobody_deduplicates(
        db, session_factory, channel_settings, make_customer, welcome, idempotent):
    messages = queue_emails(db, channel_settings, make_customer, 5)

    class DiesOnThird(Scripted):
        def send(self, outgoing):
            if len(self.sent) == 2:
                self.sent.append(outgoing)
                raise KeyboardInterrupt  # stands for SIGKILL: nothing after the send runs
            return super().send(outgoing)

    dying = DiesOnThird()
    dying.idempotent = idempotent
    with pytest.raises(KeyboardInterrupt):
        run_due(session_factory, many_registry(channel_settings, {"email": dying}), "w", lease_seconds=60)
    statuses = [fresh(db, m).status for m in messages]
    if idempotent:  # claimed together: all five were `sending` when the worker died
        assert statuses == ["sending"] * 5
    else:  # one at a time: the two before were recorded, the two after never claimed
        assert statuses == ["sent", "sent", "sending", "queued", "queued"]

    survivor = Scripted()
    survivor.idempotent = idempotent
    later = datetime.now(UTC) + timedelta(minutes=5)
    run_due(session_factory, many_registry(channel_settings, {"email": survivor}), "w2", now=later)
    rows = [fresh(db, m) for m in messages]
    resent = [o.idempotency_key for o in survivor.sent]
    if idempotent:  # sent again with the same keys: the provider drops the duplicates
        assert [r.status for r in rows] == ["sent"] * 5 and resent == [f"b:{i}" for i in range(5)]
    else:
        assert [r.status for r in rows] == ["sent", "sent", "failed", "sent", "sent"]
        assert rows[2].status_reason.startswith("interrupted:")
        assert resent == ["b:3", "b:4"]  # nothing that may have arrived is sent twice
    assert {j.state for j in db.scalars(sa.select(Job))} == {"completed"}
