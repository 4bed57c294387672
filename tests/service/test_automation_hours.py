"""Elapsed triggers counting business hours (the default calendar, as SLA clocks do): across a weekend, a
public holiday, Tết and a day the business closes; wall-clock triggers unchanged (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from clm.jobs.models import Job
from clm.lib.errors import FieldError
from clm.service import automation
from clm.service.automation import TriggerIn, fire_elapsed, save_trigger
from clm.service.automation_steps import changed_since, react
from clm.service.sla import CalendarIn, save_calendar
from clm.service.tickets import TicketIn, open_ticket

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=VN).astimezone(UTC)


def _trigger(db, *, business_hours: bool, name: str = "nhắc sau 4 giờ"):
    return save_trigger(db, TriggerIn(name=name, event="elapsed", minutes=4 * 60, since="created",
                                      business_hours=business_hours,
                                      actions=[{"type": "tag", "add": ["chờ lâu"]}]), now=local(2025, 1, 1, 8))


def _job_of(db, trigger, ticket) -> Job:
    return db.scalars(sa.select(Job).where(Job.kind == automation.ELAPSED_KIND,
                                           Job.args["trigger_id"].as_integer() == trigger.id,
                                           Job.args["ticket_id"].as_integer() == ticket.id)).one()


def _open(db, shop, settings, at: datetime):
    customer = shop.customer(f"Khách {at:%Y%m%d%H%M}")
    ticket = open_ticket(db, TicketIn(customer_id=customer.id, subject="Hỏi đơn hàng", route=False), now=at)
    react(db, changed_since(db, 0), [], settings, at)  # the worker step: the created row queues the elapsed jobs
    db.flush()
    return ticket


@pytest.mark.parametrize(("opened", "due"), [
    (local(2025, 3, 7, 15), local(2025, 3, 10, 10)),  # Friday 15:00: 2 hours on Friday, 2 on Monday
    (local(2025, 4, 4, 15), local(2025, 4, 8, 10)),  # Monday 7 April is Hùng Kings' day: Tuesday
    (local(2025, 1, 24, 15), local(2025, 2, 3, 10)),  # Tết: 27 January to 1 February closed
    (local(2025, 3, 8, 9), local(2025, 3, 10, 12)),  # opened on a Saturday: counting starts on Monday 08:00
])
def test_a_business_hours_trigger_waits_for_open_time_only(db, shop, settings, opened, due):
    trigger = _trigger(db, business_hours=True)
    ticket = _open(db, shop, settings, opened)
    job = _job_of(db, trigger, ticket)
    assert job.scheduled_at == due
    anchor = job.args["anchor"]
    assert fire_elapsed(db, trigger.id, ticket.id, anchor, opened + timedelta(hours=4)) is None  # wall clock: not yet
    assert fire_elapsed(db, trigger.id, ticket.id, anchor, due - timedelta(minutes=1)) is None
    assert fire_elapsed(db, trigger.id, ticket.id, anchor, due) is not None
    db.expire_all()
    assert ticket.tags == ["chờ lâu"]


def test_a_day_the_business_closes_is_skipped_and_a_wall_clock_trigger_counts_every_hour(db, shop, settings):
    save_calendar(db, CalendarIn(name="Cửa hàng", closed_days=["2025-03-10"], is_default=True))
    counted = _trigger(db, business_hours=True)
    wall = _trigger(db, business_hours=False, name="nhắc sau 4 giờ (đồng hồ)")
    opened = local(2025, 3, 7, 15)
    ticket = _open(db, shop, settings, opened)
    assert _job_of(db, counted, ticket).scheduled_at == local(2025, 3, 11, 10)  # Monday closed: Tuesday
    assert _job_of(db, wall, ticket).scheduled_at == local(2025, 3, 7, 19)


def test_a_new_business_hours_trigger_schedules_the_tickets_already_open(db, shop):
    opened = local(2025, 3, 7, 15)
    ticket = open_ticket(db, TicketIn(customer_id=shop.customer("Lê Văn Cường").id, subject="Bảo hành", route=False),
                         now=opened)
    trigger = _trigger(db, business_hours=True)
    assert _job_of(db, trigger, ticket).scheduled_at == local(2025, 3, 10, 10)
    assert trigger.business_hours is True


def test_only_elapsed_triggers_count_business_hours(db):
    with pytest.raises(FieldError) as caught:
        save_trigger(db, TriggerIn(name="x", event="created", business_hours=True,
                                   actions=[{"type": "tag", "add": ["a"]}]))
    assert caught.value.field == "business_hours"


def test_the_api_takes_and_shows_the_option(client, api_key_for):
    headers = api_key_for("service:manage", "service:read")
    r = client.post("/api/v1/service/triggers", headers=headers, json={
        "name": "chờ khách 2 ngày làm việc", "event": "elapsed", "minutes": 2 * 9 * 60, "since": "status_changed",
        "business_hours": True, "actions": [{"type": "set_status", "status": "solved"}]})
    assert r.status_code == 201 and r.json()["business_hours"] is True
    r = client.post("/api/v1/service/triggers", headers=headers, json={
        "name": "tạo", "event": "created", "business_hours": True, "actions": [{"type": "tag", "add": ["a"]}]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "business_hours"
