"""Broadcasts: a template sent to a segment now or later through the outbox, cancelled, test-sent, reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from clm.channels import broadcasts, testsend
from clm.channels.models import Broadcast, Message
from clm.channels.sending import send_handler
from clm.channels.tracking import Links
from clm.commerce.models import Order
from clm.jobs.models import Job
from clm.jobs.runner import Registry, run_due
from clm.lib.errors import FieldError
from clm.segments.service import change_list, save_segment

NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội, outside quiet hours


def registry_for(settings) -> Registry:
    registry = Registry()
    registry.register("channels.send", send_handler(settings))
    broadcasts.register(registry, settings)
    testsend.register(registry, settings)
    return registry


@pytest.fixture(autouse=True)
def clock():
    """The clock stands still at NOW (handlers read it); `clock.move_to(...)` is the passing of time."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def work(session_factory, settings) -> int:
    """Run the worker's job step until nothing is due now; returns how many jobs ran."""
    registry, ran = registry_for(settings), 0
    while (n := run_due(session_factory, registry, "w")):
        ran += n
    return ran


@pytest.fixture
def audience(db, make_customer):
    """A static segment of three customers: two with email consent, one without."""
    people = [make_customer("an@example.vn"), make_customer("binh@example.vn"),
              make_customer("chi@example.vn", consent=())]
    segment = save_segment(db, name="Khách Hà Nội", kind="static", now=NOW)
    change_list(db, segment.id, add=[c.id for c in people], now=NOW)
    db.commit()
    return segment, people


def draft(db, settings, segment, **kw) -> Broadcast:
    b = broadcasts.create_broadcast(db, name="Tết sale", template_key="welcome", segment_id=segment.id,
                                    settings=settings, now=NOW, **kw)
    db.commit()
    return b


def fresh(db, broadcast: Broadcast) -> Broadcast:
    db.expire_all()
    return db.get(Broadcast, broadcast.id)


def test_sending_now_mails_every_consenting_member_once_and_the_report_counts_them(
        db, session_factory, channel_settings, smtp, audience, welcome, clock):
    sink, _ = smtp
    segment, people = audience
    b = draft(db, channel_settings, segment)
    broadcasts.schedule(db, b.id, now=NOW)
    db.commit()
    assert fresh(db, b).status == "scheduled"

    work(session_factory, channel_settings)

    assert sorted(m["To"] for m in sink.messages) == ["an@example.vn", "binh@example.vn"]
    b = fresh(db, b)
    assert b.status == "sending" and b.recipients == 3 and b.queued_at is not None
    statuses = dict(db.execute(sa.select(Message.customer_id, Message.status).where(Message.broadcast_id == b.id)).all())
    assert statuses == {people[0].id: "sent", people[1].id: "sent", people[2].id: "suppressed"}
    report = broadcasts.report(db, b.id)
    assert (report.recipients, report.sent, report.suppressed, report.failed, report.waiting) == (3, 2, 1, 0, 0)

    clock.move_to(NOW + timedelta(minutes=2))
    work(session_factory, channel_settings)  # the finish check
    assert fresh(db, b).status == "sent"
    assert len(sink.messages) == 2


def test_a_broadcast_for_later_waits_for_its_time(db, session_factory, channel_settings, smtp, audience, welcome,
                                                  clock):
    sink, _ = smtp
    segment, _ = audience
    b = draft(db, channel_settings, segment)
    later = NOW + timedelta(hours=3)
    broadcasts.schedule(db, b.id, later, now=NOW)
    db.commit()
    job = db.get(Job, fresh(db, b).job_id)
    assert job.kind == "broadcasts.send" and job.scheduled_at == later

    clock.move_to(NOW + timedelta(hours=2))
    work(session_factory, channel_settings)
    assert sink.messages == [] and fresh(db, b).status == "scheduled"
    clock.move_to(later)
    work(session_factory, channel_settings)
    assert len(sink.messages) == 2 and fresh(db, b).status == "sending"


def test_rescheduling_moves_the_job_and_unscheduling_makes_it_a_draft_again(db, channel_settings, audience, welcome):
    segment, _ = audience
    b = draft(db, channel_settings, segment)
    first = broadcasts.schedule(db, b.id, NOW + timedelta(days=1), now=NOW).job_id
    second = broadcasts.schedule(db, b.id, NOW + timedelta(days=2), now=NOW).job_id
    db.commit()
    assert db.get(Job, first).state == "cancelled" and db.get(Job, second).state == "available"
    broadcasts.unschedule(db, b.id, now=NOW)
    db.commit()
    assert fresh(db, b).status == "draft" and db.get(Job, second).state == "cancelled"


def test_cancelling_a_scheduled_broadcast_sends_nothing(db, session_factory, channel_settings, smtp, audience,
                                                        welcome, clock):
    sink, _ = smtp
    segment, _ = audience
    b = draft(db, channel_settings, segment)
    broadcasts.schedule(db, b.id, NOW + timedelta(hours=1), now=NOW)
    broadcasts.cancel(db, b.id, now=NOW)
    db.commit()
    clock.move_to(NOW + timedelta(hours=2))
    work(session_factory, channel_settings)
    assert sink.messages == []
    assert fresh(db, b).status == "cancelled"
    with pytest.raises(FieldError) as err:
        broadcasts.schedule(db, b.id, now=NOW)
    assert err.value.field == "status"


def test_cancelling_while_sending_suppresses_what_is_still_waiting(db, session_factory, channel_settings, smtp,
                                                                   audience, welcome):
    sink, _ = smtp
    segment, _ = audience
    b = draft(db, channel_settings, segment)
    broadcasts.schedule(db, b.id, now=NOW)
    db.commit()
    registry = registry_for(channel_settings)
    run_due(session_factory, registry, "w", limit=1)  # only the broadcast job: messages queued, not sent
    assert fresh(db, b).status == "sending" and sink.messages == []

    broadcasts.cancel(db, b.id, now=NOW)
    db.commit()
    work(session_factory, channel_settings)

    assert sink.messages == []
    reasons = set(db.scalars(sa.select(Message.status_reason).where(Message.broadcast_id == b.id,
                                                                    Message.status == "suppressed")))
    assert broadcasts.CANCELLED_REASON in reasons
    assert fresh(db, b).status_reason == "cancelled; 2 waiting messages were not sent"


def test_running_the_send_job_again_after_a_crash_queues_nobody_twice(db, session_factory, channel_settings, smtp,
                                                                       audience, welcome):
    segment, _ = audience
    b = draft(db, channel_settings, segment)
    broadcasts.schedule(db, b.id, now=NOW)
    db.commit()

    class Died(Exception):
        pass

    def die_after_first_chunk():
        raise Died()

    with session_factory() as s, pytest.raises(Died):
        broadcasts.run_send(s, b.id, settings=channel_settings, now=NOW, chunk=1, heartbeat=die_after_first_chunk)
    assert db.scalar(sa.select(sa.func.count()).select_from(Message).where(Message.broadcast_id == b.id)) == 0

    with session_factory() as s:
        broadcasts.run_send(s, b.id, settings=channel_settings, now=NOW, chunk=2)  # queued two, then "dies"
        s.execute(sa.update(Broadcast).where(Broadcast.id == b.id).values(queued_at=None))
        s.commit()
    with session_factory() as s:
        assert broadcasts.run_send(s, b.id, settings=channel_settings, now=NOW, chunk=2) == "queued"
    keys = list(db.scalars(sa.select(Message.idempotency_key).where(Message.broadcast_id == b.id)))
    assert len(keys) == len(set(keys)) == 3
    assert fresh(db, b).recipients == 3


def test_customers_who_left_the_segment_before_the_send_get_nothing(db, session_factory, channel_settings, smtp,
                                                                    audience, welcome):
    sink, _ = smtp
    segment, people = audience
    b = draft(db, channel_settings, segment)
    broadcasts.schedule(db, b.id, now=NOW)
    change_list(db, segment.id, remove=[people[1].id], now=NOW)
    db.commit()
    work(session_factory, channel_settings)
    assert [m["To"] for m in sink.messages] == ["an@example.vn"]


def test_bad_drafts_are_refused_naming_the_field(db, channel_settings, audience, welcome):
    segment, _ = audience
    cases = [({"template_key": "nope"}, "template_key"), ({"segment_id": 999_999}, "segment_id"),
             ({"name": "  "}, "name"), ({"attribution_days": 0}, "attribution_days"),
             ({"purpose": "spam"}, "purpose")]
    for change, field in cases:
        args = {"name": "Tết", "template_key": "welcome", "segment_id": segment.id, **change}
        with pytest.raises(FieldError) as err:
            broadcasts.create_broadcast(db, settings=channel_settings, **args)
        assert err.value.field == field
    b = draft(db, channel_settings, segment)
    with pytest.raises(FieldError) as err:
        broadcasts.schedule(db, b.id, NOW - timedelta(hours=1), now=NOW)
    assert err.value.field == "send_at"


def test_the_attribution_window_defaults_to_the_setting(db, channel_settings, audience, welcome):
    segment, _ = audience
    settings = channel_settings.model_copy(update={"broadcast_attribution_days": 3})
    assert draft(db, settings, segment).attribution_days == 3
    assert draft(db, settings, segment, attribution_days=10).attribution_days == 10


def _order(db, customer, external_id, total, placed_at, refunded=0):
    db.add(Order(external_id=external_id, customer_id=customer.id, status="completed", currency="VND", total=total,
                 refunded=refunded, placed_at=placed_at, properties={}))
    db.flush()


def test_the_report_counts_engagement_from_history_and_orders_inside_the_window(
        db, session_factory, channel_settings, smtp, audience, welcome, client):
    segment, (an, binh, chi) = audience
    b = draft(db, channel_settings, segment, attribution_days=7)
    broadcasts.schedule(db, b.id, now=NOW)
    db.commit()
    work(session_factory, channel_settings)
    to_an = db.scalar(sa.select(Message).where(Message.broadcast_id == b.id, Message.customer_id == an.id))
    links = Links(channel_settings, to_an.id)
    client.app.state.settings = channel_settings
    assert client.get(links.open_pixel().replace("https://shop.example.vn", "")).status_code == 200
    click = links.click("https://shop.example.vn/sale").replace("https://shop.example.vn", "")
    assert client.get(click, follow_redirects=False).status_code == 302

    sent_at = NOW
    _order(db, an, "DH-1", 500_000, sent_at + timedelta(days=2), refunded=100_000)  # counted, net 400,000
    _order(db, an, "DH-2", 300_000, sent_at - timedelta(hours=1))  # before the message: not counted
    _order(db, binh, "DH-3", 200_000, sent_at + timedelta(days=8))  # after the window: not counted
    _order(db, chi, "DH-4", 900_000, sent_at + timedelta(days=1))  # never got it (no consent): not counted
    db.commit()

    report = broadcasts.report(db, b.id)
    assert (report.sent, report.opened, report.clicked, report.delivered) == (2, 1, 1, 1)
    assert (report.orders, report.buyers, report.revenue) == (1, 1, {"VND": 400_000})
    assert report.window_ends == sent_at + timedelta(days=7)
    assert report.daily == [("2026-03-02", 2, 1, 1)]


def test_a_test_send_renders_for_a_member_and_reaches_the_staff_address_marked_as_a_test(
        db, session_factory, channel_settings, smtp, audience, welcome):
    sink, _ = smtp
    segment, people = audience
    b = draft(db, channel_settings, segment)
    content = testsend.render_test(db, template_key=b.template_key, segment_id=segment.id, settings=channel_settings)
    job = testsend.queue_test(db, content, "Lan@Shop.vn", settings=channel_settings, now=NOW)
    db.commit()
    work(session_factory, channel_settings)
    [mail] = sink.messages
    assert mail["To"] == "Lan@shop.vn" and mail["Subject"] == "[Thử] Chào An"
    assert "List-Unsubscribe" not in mail
    db.expire_all()
    assert testsend.state_of_test(db, job.id) == ("completed", None)
    assert db.scalar(sa.select(sa.func.count()).select_from(Message)) == 0  # no customer message, no cap


def test_a_test_send_to_an_unconfigured_channel_fails_with_the_setting_to_add(db, session_factory, channel_settings,
                                                                              audience):
    job = testsend.queue_test(db, testsend.check_content("sms", "en"), "0912 345 678", settings=channel_settings,
                              now=NOW)
    db.commit()
    assert job.args["to"] == "+84912345678"
    work(session_factory, channel_settings)
    db.expire_all()
    state, error = testsend.state_of_test(db, job.id)
    assert state == "dead" and "CLM_ESMS_API_KEY" in error


def test_test_sends_refuse_a_bad_address_or_a_template_that_does_not_render(db, channel_settings, audience):
    from clm.channels.templates import create_template

    with pytest.raises(FieldError) as err:
        testsend.queue_test(db, testsend.check_content("email", "vi"), "not an email", settings=channel_settings)
    assert err.value.field == "to"
    create_template(db, key="broken", channel="email", variants={"vi": {"subject": "{{ order.id }}", "text": "x"}})
    with pytest.raises(FieldError) as err:
        testsend.render_test(db, template_key="broken", settings=channel_settings)
    assert err.value.field == "template_key" and "'order' is undefined" in err.value.message
