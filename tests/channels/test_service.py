"""enqueue_message / enqueue_many: idempotent, rendered at once, guarded, and queued with their job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from clm.channels import guardrails
from clm.channels.models import Message, MessageEvent
from clm.channels.service import count_by_status, enqueue_many, enqueue_message, list_messages
from clm.channels.templates import create_template
from clm.customers.consent import record_consent
from clm.customers.models import Identity
from clm.jobs.models import Job
from clm.lib.errors import FieldError, NotFound

# 10:00 in Hồ Chí Minh City (UTC+7): outside the default quiet hours.
MORNING = datetime(2025, 3, 3, 3, 0, tzinfo=UTC)


@pytest.fixture
def quiet(channel_settings):
    return channel_settings.model_copy(update={"quiet_hours": "21:00-08:00"})


def queue(db, customer, settings, key="k", **kw):
    values = dict(customer_id=customer.id, channel="email", template_key="welcome", idempotency_key=key,
                  settings=settings, now=MORNING)
    values.update(kw)
    return enqueue_message(db, **values)


def jobs(db) -> list[Job]:
    return list(db.scalars(sa.select(Job).order_by(Job.id)))


def test_the_same_idempotency_key_returns_the_first_message_and_queues_one_job(db, channel_settings, make_customer,
                                                                             welcome):
    customer = make_customer()
    first = queue(db, customer, channel_settings)
    again = queue(db, customer, channel_settings, context={"changed": True})
    assert again.id == first.id
    assert db.scalar(sa.select(sa.func.count()).select_from(Message)) == 1
    [job] = jobs(db)
    assert (job.kind, job.args, job.unique_key) == ("channels.send", {"message_id": first.id},
                                                   f"channels.send:{first.id}")
    assert first.status == "queued" and first.template_version == 1 and first.subject == "Chào An"
    assert first.address == customer.email


def test_a_template_that_fails_to_render_gives_a_failed_message_with_the_reason_and_no_job(db, channel_settings,
                                                                                        make_customer):
    create_template(db, key="needs-order", channel="email",
                    variants={"vi": {"subject": "Đơn {{ order.id }}", "text": "x"}})
    customer = make_customer()
    message = queue(db, customer, channel_settings, template_key="needs-order")
    assert message.status == "failed"
    assert message.status_reason == "template needs-order v1: vi.subject: 'order' is undefined"
    missing = queue(db, customer, channel_settings, key="k2", template_key="nope")
    assert (missing.status, missing.status_reason) == ("failed", "template 'nope' does not exist")
    assert jobs(db) == []


def test_a_customer_without_the_address_the_channel_needs_is_suppressed_with_why(db, channel_settings, make_customer,
                                                                               welcome):
    customer = make_customer(None)
    message = queue(db, customer, channel_settings)
    assert (message.status, message.status_reason) == ("suppressed", "the customer has no email address for email")
    create_template(db, key="sms-hi", channel="sms", variants={"vi": {"text": "Chào"}})
    sms = queue(db, customer, channel_settings, key="s", channel="sms", template_key="sms-hi", purpose="transactional")
    assert sms.status_reason == "the customer has no phone number for sms"
    assert jobs(db) == []


def test_marketing_needs_consent_and_transactional_does_not(db, channel_settings, make_customer, welcome):
    customer = make_customer(consent=())
    marketing = queue(db, customer, channel_settings)
    assert (marketing.status, marketing.status_reason) == ("suppressed", "no consent recorded for email marketing")
    receipt = queue(db, customer, channel_settings, key="r", purpose="transactional")
    assert receipt.status == "queued"
    record_consent(db, customer.id, channel="email", purpose="transactional", granted=False, source="call")
    refused = queue(db, customer, channel_settings, key="r2", purpose="transactional")
    assert refused.status_reason == "the customer refused email transactional messages"


def test_quiet_hours_defer_marketing_to_their_end_but_not_transactional(db, quiet, make_customer, welcome):
    customer = make_customer()
    night = datetime(2025, 3, 3, 15, 30, tzinfo=UTC)  # 22:30 local
    message = queue(db, customer, quiet, now=night)
    assert message.status == "deferred"
    assert message.deferred_until == datetime(2025, 3, 4, 1, 0, tzinfo=UTC)  # 08:00 local next morning
    assert message.status_reason == "quiet hours 21:00-08:00"
    assert jobs(db)[0].scheduled_at == message.deferred_until
    receipt = queue(db, customer, quiet, key="r", purpose="transactional", now=night)
    assert receipt.status == "queued" and jobs(db)[1].scheduled_at == night


@pytest.mark.parametrize("local,expected", [
    ("20:59", None), ("21:00", "08:00+1"), ("23:59", "08:00+1"), ("00:00", "08:00"), ("07:59", "08:00"), ("08:00", None),
])
def test_quiet_hours_spanning_midnight(local, expected):
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    hour, minute = map(int, local.split(":"))
    when = datetime(2025, 3, 3, hour, minute, tzinfo=tz).astimezone(UTC)
    until = guardrails.quiet_until(when, "21:00-08:00", "Asia/Ho_Chi_Minh")
    if expected is None:
        assert until is None
    else:
        day = 4 if expected.endswith("+1") else 3
        assert until == datetime(2025, 3, day, 8, 0, tzinfo=tz)


def test_send_at_in_the_future_schedules_the_job_then(db, channel_settings, make_customer, welcome):
    customer = make_customer()
    later = MORNING + timedelta(days=2)
    message = queue(db, customer, channel_settings, send_at=later)
    assert message.status == "queued" and jobs(db)[0].scheduled_at == later


def test_the_frequency_cap_defers_the_fourth_marketing_message_until_the_oldest_leaves_the_window(
        db, channel_settings, make_customer, welcome):
    customer = make_customer()
    sent_times = [MORNING - timedelta(days=d) for d in (6, 3, 1)]
    for i, at in enumerate(sent_times):
        m = queue(db, customer, channel_settings, key=f"old{i}")
        m.status, m.sent_at = "sent", at
    db.flush()
    fourth = queue(db, customer, channel_settings, key="new")
    assert fourth.status == "deferred"
    assert fourth.deferred_until == sent_times[0] + timedelta(days=7)
    assert fourth.status_reason == "frequency cap: 3 marketing messages in 7 days"
    receipt = queue(db, customer, channel_settings, key="receipt", purpose="transactional")
    assert receipt.status == "queued"


def test_bad_calls_raise_naming_the_field(db, channel_settings, make_customer, welcome):
    customer = make_customer()
    with pytest.raises(FieldError, match="channel"):
        queue(db, customer, channel_settings, channel="fax")
    with pytest.raises(FieldError, match="purpose"):
        queue(db, customer, channel_settings, purpose="spam")
    with pytest.raises(FieldError, match="idempotency_key"):
        queue(db, customer, channel_settings, key="")
    with pytest.raises(NotFound):
        enqueue_message(db, customer_id=987654, channel="email", template_key="welcome", idempotency_key="x",
                        settings=channel_settings)


def test_every_status_is_kept_in_the_history(db, channel_settings, make_customer, welcome):
    message = queue(db, make_customer(), channel_settings)
    assert list(db.scalars(sa.select(MessageEvent.status).where(MessageEvent.message_id == message.id))) == ["queued"]


def test_enqueue_many_queues_a_broadcast_in_bulk_with_the_same_guardrails(db, channel_settings, make_customer,
                                                                          welcome):
    ok = [make_customer() for _ in range(5)]
    no_consent = make_customer(consent=())
    no_email = make_customer(None)
    english = make_customer(traits={"language": "en"})
    ids = [c.id for c in (*ok, no_consent, no_email, english)]
    counts = enqueue_many(db, customer_ids=ids, channel="email", template_key="welcome", idempotency_prefix="b1",
                          broadcast_id=1, settings=channel_settings, now=MORNING, chunk=3)
    assert counts == {"queued": 6, "suppressed": 2}
    rows = {m.customer_id: m for m in db.scalars(sa.select(Message))}
    assert rows[no_consent.id].status_reason == "no consent recorded for email marketing"
    assert rows[english.id].subject == "Hello An" and rows[ok[0].id].subject == "Chào An"
    assert "/t/o/" in rows[ok[0].id].html and rows[ok[0].id].idempotency_key == f"b1:{ok[0].id}"
    assert len(jobs(db)) == 6
    again = enqueue_many(db, customer_ids=ids, channel="email", template_key="welcome", idempotency_prefix="b1",
                         broadcast_id=1, settings=channel_settings, now=MORNING)
    assert again == {"existing": 8}
    assert count_by_status(db, broadcast_id=1) == {"queued": 6, "suppressed": 2}
    assert len(jobs(db)) == 6


@pytest.mark.parametrize("days_ago", [(6, 3, 1), (6, 5, 3, 1), (8, 2), (6, 6, 2, 1, 1)])
def test_enqueue_many_defers_at_the_cap_exactly_as_one_message_would(db, channel_settings, make_customer, welcome,
                                                                     days_ago):
    customer, alone = make_customer(), make_customer()
    for c in (customer, alone):
        for i, d in enumerate(days_ago):
            m = queue(db, c, channel_settings, key=f"old{c.id}:{i}")
            m.status, m.sent_at = "sent", MORNING - timedelta(days=d, minutes=i)
    db.flush()
    expected = guardrails.cap_until(db, alone.id, MORNING, 3, 7)
    enqueue_many(db, customer_ids=[customer.id], channel="email", template_key="welcome", idempotency_prefix="cap",
                 settings=channel_settings, now=MORNING)
    bulk = db.scalar(sa.select(Message).where(Message.idempotency_key == f"cap:{customer.id}"))
    one = queue(db, alone, channel_settings, key="one")
    assert bulk.deferred_until == one.deferred_until == expected
    assert bulk.status == one.status == ("deferred" if expected else "queued")


def test_enqueue_many_suppresses_an_address_on_the_suppression_list(db, channel_settings, make_customer, welcome):
    from clm.channels.sending import suppress_address

    kept, complained = make_customer(), make_customer("Phan.Thi@Example.vn")
    suppress_address(db, "email", "phan.thi@example.vn", "complaint")
    counts = enqueue_many(db, customer_ids=[kept.id, complained.id], channel="email", template_key="welcome",
                          idempotency_prefix="s", settings=channel_settings, now=MORNING)
    assert counts == {"queued": 1, "suppressed": 1}
    row = db.scalar(sa.select(Message).where(Message.customer_id == complained.id))
    assert row.status_reason == "the address is on the suppression list (complaint)"


def test_enqueue_many_defers_the_whole_broadcast_in_quiet_hours(db, quiet, make_customer, welcome):
    ids = [make_customer().id for _ in range(3)]
    night = datetime(2025, 3, 3, 15, 30, tzinfo=UTC)
    assert enqueue_many(db, customer_ids=ids, channel="email", template_key="welcome", idempotency_prefix="n",
                        settings=quiet, now=night) == {"deferred": 3}
    assert {j.scheduled_at for j in jobs(db)} == {datetime(2025, 3, 4, 1, 0, tzinfo=UTC)}


def test_messenger_messages_go_to_the_customers_page_scoped_id(db, channel_settings, make_customer):
    create_template(db, key="m", channel="messenger", variants={"vi": {"text": "Chào {{ customer.given_name }}"}})
    customer = make_customer(consent=("messenger",))
    db.add(Identity(customer_id=customer.id, kind="facebook", value="psid-123"))
    db.flush()
    message = queue(db, customer, channel_settings, channel="messenger", template_key="m")
    assert (message.status, message.address, message.text) == ("queued", "psid-123", "Chào An")


def test_listing_messages_by_customer_and_status_pages_newest_first(db, channel_settings, make_customer, welcome):
    a, b = make_customer(), make_customer(consent=())
    for i in range(3):
        queue(db, a, channel_settings, key=f"a{i}", now=MORNING + timedelta(minutes=i))
    queue(db, b, channel_settings, key="b")
    first, cursor = list_messages(db, customer_id=a.id, limit=2)
    assert [m.idempotency_key for m in first] == ["a2", "a1"]
    rest, end = list_messages(db, customer_id=a.id, limit=2, after=cursor)
    assert [m.idempotency_key for m in rest] == ["a0"] and end is None
    assert [m.idempotency_key for m in list_messages(db, status="suppressed")[0]] == ["b"]
