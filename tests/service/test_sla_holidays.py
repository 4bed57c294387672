"""SLA clocks over Vietnam's public holidays from the `holidays` library (not only days the business adds):
the issue's 2-hour target from Friday 16:00 with a public-holiday Monday, and a ticket opened before Tết and
paused over it (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from clm.service.models import SlaTimer
from clm.service.sla import CalendarIn, PolicyIn, save_calendar, save_policy, timers
from clm.service.tickets import TicketIn, TicketUpdate, open_ticket, update_ticket

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=VN)


def _first(db, ticket) -> SlaTimer:
    return next(t for t in timers(db, ticket.id) if t.metric == "first_response")


def test_a_two_hour_target_from_friday_four_pm_is_due_tuesday_when_monday_is_hung_kings_day(db, shop):
    save_calendar(db, CalendarIn(name="Văn phòng", is_default=True))  # VN holidays from the library
    save_policy(db, PolicyIn(name="Chuẩn", first_response_minutes=120))
    ticket = open_ticket(db, TicketIn(customer_id=shop.customer("An").id, subject="x", route=False),
                         now=local(2025, 4, 4, 16, 0))
    first = _first(db, ticket)
    assert first.due_at == local(2025, 4, 8, 9, 0)
    [skipped] = first.explanation["skipped"]
    assert skipped["day"] == "2025-04-07" and "Hung Kings" in skipped["reason"]


def test_tet_is_skipped_and_a_pause_over_it_moves_the_deadline_by_the_business_time_used(db, shop):
    save_calendar(db, CalendarIn(name="Văn phòng", is_default=True))
    save_policy(db, PolicyIn(name="Chuẩn", first_response_minutes=120, resolution_minutes=4 * 60))
    customer = shop.customer("Bình")
    ticket = open_ticket(db, TicketIn(customer_id=customer.id, subject="Đổi quà Tết", route=False),
                         now=local(2025, 1, 24, 16, 0))
    # Friday 24 January 16:00; 27 January - 1 February are Tết days off (Monday to Saturday): Monday 3 February
    assert _first(db, ticket).due_at == local(2025, 2, 3, 9, 0)
    resolution = next(t for t in timers(db, ticket.id) if t.metric == "resolution")
    assert resolution.due_at == local(2025, 2, 3, 11, 0)  # 1 h on Friday, 3 h from Monday's opening
    assert {s["day"] for s in resolution.explanation["skipped"]} >= {"2025-01-29", "2025-01-30", "2025-01-31"}
    # pending the customer from Friday 16:30 (30 business minutes used) to Monday 3 February 10:00: the clock
    # stood still; 3.5 business hours are left from 10:00
    update_ticket(db, ticket.id, TicketUpdate(status="pending_customer"), now=local(2025, 1, 24, 16, 30))
    assert next(t for t in timers(db, ticket.id) if t.metric == "resolution").state == "paused"
    update_ticket(db, ticket.id, TicketUpdate(status="open"), now=local(2025, 2, 3, 10, 0))
    db.expire_all()
    resolution = next(t for t in timers(db, ticket.id) if t.metric == "resolution")
    assert resolution.state == "running" and resolution.due_at == local(2025, 2, 3, 13, 30)
