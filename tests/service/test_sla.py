"""SLA clocks: deadlines in business hours stored with their explanation, pauses read from the status
history, warnings and breaches on the jobs queue with their escalation recorded."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from clm.jobs.runner import Registry, run_due
from clm.lib.errors import FieldError
from clm.outbox.models import OutboxEvent
from clm.service import audit
from clm.service import jobs as service_jobs
from clm.service.conversations import InboundIn, ReplyIn, receive, reply
from clm.service.models import SlaTimer, Ticket
from clm.service.sla import CalendarIn, Escalation, PolicyIn, save_calendar, save_policy, timers
from clm.service.tickets import TicketIn, TicketUpdate, open_ticket, update_ticket

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=VN)


@pytest.fixture
def calendar(db):
    return save_calendar(db, CalendarIn(name="Văn phòng", is_default=True))


def timer(db, ticket, metric) -> SlaTimer:
    return next(t for t in timers(db, ticket.id) if t.metric == metric)


def test_a_two_hour_target_opened_friday_at_four_is_due_monday_at_nine_and_explained(db, shop, calendar):
    save_policy(db, PolicyIn(name="Chuẩn", first_response_minutes=120, resolution_minutes=16 * 60))
    opened_at = local(2025, 3, 7, 16, 0)
    ticket = open_ticket(db, TicketIn(customer_id=shop.customer("An").id, subject="x", route=False),
                         now=opened_at)
    first = timer(db, ticket, "first_response")
    assert first.due_at == local(2025, 3, 10, 9, 0)
    assert first.explanation["target_minutes"] == 120 and first.explanation["policy"] == "Chuẩn"
    assert "due Mon 2025-03-10 09:00" in first.explanation["text"]
    assert timer(db, ticket, "resolution").due_at == local(2025, 3, 11, 14, 0)  # 1 h Fri, 9 h Mon, 6 h Tue


def test_the_same_target_is_due_tuesday_when_monday_is_a_holiday(db, shop):
    save_calendar(db, CalendarIn(name="Có ngày nghỉ", closed_days=["2025-03-10"], is_default=True))
    save_policy(db, PolicyIn(name="Chuẩn", first_response_minutes=120))
    ticket = open_ticket(db, TicketIn(customer_id=shop.customer("An").id, subject="x", route=False),
                         now=local(2025, 3, 7, 16, 0))
    first = timer(db, ticket, "first_response")
    assert first.due_at == local(2025, 3, 11, 9, 0)
    assert first.explanation["skipped"] == [{"day": "2025-03-10", "reason": "closed by the business"}]


def test_policies_match_priority_channel_and_tier_in_order(db, shop, calendar):
    from clm.loyalty.models import Member

    save_policy(db, PolicyIn(name="Vàng", position=0, tier="gold", first_response_minutes=15))
    save_policy(db, PolicyIn(name="Khẩn Zalo", position=1, priority="urgent", channel="zalo",
                             first_response_minutes=30))
    save_policy(db, PolicyIn(name="Mặc định", position=9, first_response_minutes=240))
    gold = shop.customer("Vàng")
    db.add(Member(customer_id=gold.id, tier="gold"))
    db.flush()
    at = local(2025, 3, 11, 9, 0)
    cases = [(gold.id, "normal", "email", "Vàng"), (shop.customer("b").id, "urgent", "zalo", "Khẩn Zalo"),
             (shop.customer("c").id, "urgent", "email", "Mặc định")]
    for customer_id, priority, channel, expected in cases:
        ticket = open_ticket(db, TicketIn(customer_id=customer_id, subject="x", priority=priority, channel=channel,
                                          route=False), now=at)
        assert timer(db, ticket, "first_response").explanation["policy"] == expected


def test_pending_the_customer_pauses_the_clock_and_the_deadline_is_computed_again(db, shop, calendar):
    save_policy(db, PolicyIn(name="Chuẩn", resolution_minutes=8 * 60))
    ticket = open_ticket(db, TicketIn(customer_id=shop.customer("An").id, subject="x", route=False),
                         now=local(2025, 3, 10, 9, 0))
    assert timer(db, ticket, "resolution").due_at == local(2025, 3, 10, 17, 0)
    update_ticket(db, ticket.id, TicketUpdate(status="pending_customer"), now=local(2025, 3, 10, 10, 0))
    paused = timer(db, ticket, "resolution")
    assert paused.state == "paused" and paused.due_at is None
    update_ticket(db, ticket.id, TicketUpdate(status="open"), now=local(2025, 3, 11, 9, 0))
    resumed = timer(db, ticket, "resolution")
    # 60 business minutes used before the pause; 420 left from Tuesday 09:00.
    assert resumed.state == "running" and resumed.due_at == local(2025, 3, 11, 16, 0)
    assert resumed.explanation["used_minutes"] == 60
    assert len(resumed.explanation["pauses"]) == 1
    assert datetime.fromisoformat(resumed.explanation["pauses"][0]["from"]) == local(2025, 3, 10, 10, 0)


def test_replies_meet_response_clocks_and_a_customer_answer_starts_the_next_one(db, shop, zalo, make_agent, calendar):
    save_policy(db, PolicyIn(name="Chuẩn", first_response_minutes=60, next_response_minutes=30))
    agent = make_agent("Lan")
    customer = shop.customer("An")
    ticket = receive(db, InboundIn(inbox_id=zalo.id, customer_id=customer.id, body="hỏi"),
                     now=local(2025, 3, 10, 9, 0)).ticket
    reply(db, ticket.id, ReplyIn(body="dạ"), by=agent.id, now=local(2025, 3, 10, 9, 20))
    assert timer(db, ticket, "first_response").state == "met"
    receive(db, InboundIn(inbox_id=zalo.id, customer_id=customer.id, body="thêm"), now=local(2025, 3, 10, 9, 40))
    following = timer(db, ticket, "next_response")
    assert following.state == "running" and following.due_at == local(2025, 3, 10, 10, 10)
    reply(db, ticket.id, ReplyIn(body="vâng"), by=agent.id, now=local(2025, 3, 10, 9, 50))
    assert timer(db, ticket, "next_response").state == "met"


def run_jobs(session_factory, settings, now: datetime) -> int:
    registry = Registry()
    service_jobs.register(registry, settings)
    return run_due(session_factory, registry, "test-worker", now=now)


def test_a_warning_then_a_breach_escalate_as_the_policy_says(db, session_factory, settings, shop, make_agent,
                                                               calendar):
    save_policy(db, PolicyIn(name="Chuẩn", first_response_minutes=60, warn_before_minutes=15,
                             escalation=Escalation(notify=True, raise_priority=True, reassign=True)))
    lan = make_agent("Lan")
    ticket = open_ticket(db, TicketIn(customer_id=shop.customer("An").id, subject="x"), now=local(2025, 3, 10, 9, 0))
    assert ticket.assignee_id == lan.id
    minh = make_agent("Minh")
    db.commit()
    assert run_jobs(session_factory, settings, local(2025, 3, 10, 9, 40)) == 0
    assert run_jobs(session_factory, settings, local(2025, 3, 10, 9, 45)) == 1
    assert run_jobs(session_factory, settings, local(2025, 3, 10, 10, 0)) == 1
    db.expire_all()
    ticket = db.get(Ticket, ticket.id)
    topics = list(db.scalars(sa.select(OutboxEvent.topic).where(OutboxEvent.topic.like("service.sla%"))
                             .order_by(OutboxEvent.id)))
    assert topics == ["service.sla_warning", "service.sla_breached"]
    assert ticket.priority == "high" and ticket.assignee_id == minh.id
    assert ticket.assignment_reason.startswith("escalation: first response breached; least load")
    fields = [(c.field, c.new, c.actor) for c in audit.history(db, ticket.id) if c.actor == "sla"]
    assert fields == [("sla.first_response", "warned", "sla"), ("sla.first_response", "breached", "sla"),
                      ("priority", "high", "sla")]
    assert run_jobs(session_factory, settings, local(2025, 3, 11, 10, 0)) == 0  # once only


def test_an_answered_ticket_is_not_breached(db, session_factory, settings, shop, make_agent, calendar):
    save_policy(db, PolicyIn(name="Chuẩn", first_response_minutes=60, warn_before_minutes=0))
    agent = make_agent("Lan")
    ticket = open_ticket(db, TicketIn(customer_id=shop.customer("An").id, subject="x"), now=local(2025, 3, 10, 9, 0))
    reply(db, ticket.id, ReplyIn(body="dạ"), by=agent.id, now=local(2025, 3, 10, 9, 30))
    db.commit()
    run_jobs(session_factory, settings, local(2025, 3, 10, 11, 0))
    db.expire_all()
    assert timer(db, ticket, "first_response").state == "met"
    assert db.scalar(sa.select(sa.func.count()).select_from(OutboxEvent)
                     .where(OutboxEvent.topic == "service.sla_breached")) == 0


def test_a_policy_needs_a_target_and_a_calendar_needs_sane_hours(db):
    with pytest.raises(FieldError) as err:
        save_policy(db, PolicyIn(name="rỗng"))
    assert err.value.field == "first_response_minutes"
    with pytest.raises(FieldError) as err:
        save_calendar(db, CalendarIn(name="x", hours={"mon": [["18:00", "08:00"]]}))
    assert err.value.field == "hours.mon[0]"
