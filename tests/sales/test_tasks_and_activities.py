"""Tasks with reminders on the jobs queue, activities that record first contact, and the forecast."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from clm.jobs.models import Job
from clm.jobs.runner import Registry, run_due
from clm.lib.errors import FieldError
from clm.outbox.models import OutboxEvent
from clm.sales import jobs as sales_jobs
from clm.sales.activities import ActivityIn, list_activities, log_activity
from clm.sales.forecast import forecast
from clm.sales.leads import LeadIn, capture_lead
from clm.sales.opportunities import DealIn, OpportunityIn, convert_lead, create_opportunity, lose, win
from clm.sales.tasks import TaskIn, TaskUpdate, create_task, list_tasks, update_task
from tests.customers.shop import T0


@pytest.fixture
def lead(db):
    return capture_lead(db, LeadIn(phone="0904555666", name="Hồ Thị Mai")).lead


def reminders(db) -> list[dict]:
    return [row.payload for row in db.scalars(sa.select(OutboxEvent).where(OutboxEvent.topic == "task.reminder"))]


def run_jobs(session_factory, settings, now: datetime) -> int:
    registry = Registry()
    sales_jobs.register(registry, settings)
    return run_due(session_factory, registry, "test-worker", now=now)


def test_a_task_reminds_its_assignee_once_when_due(db, session_factory, settings, lead, seller):
    task = create_task(db, TaskIn(subject="Gọi lại báo giá", due_at=T0 + timedelta(days=1),
                                  remind_at=T0 + timedelta(hours=20), assignee_id=seller.id, lead_id=lead.id), now=T0)
    db.commit()
    assert task.customer_id == lead.customer_id
    assert run_jobs(session_factory, settings, T0 + timedelta(hours=19)) == 0
    assert run_jobs(session_factory, settings, T0 + timedelta(hours=20)) == 1
    db.expire_all()
    assert [r["task_id"] for r in reminders(db)] == [task.id]
    assert run_jobs(session_factory, settings, T0 + timedelta(hours=30)) == 0


def test_a_moved_reminder_fires_at_the_new_time_only(db, session_factory, settings, lead):
    task = create_task(db, TaskIn(subject="Gửi hợp đồng", due_at=T0 + timedelta(days=2),
                                  remind_at=T0 + timedelta(hours=1), lead_id=lead.id), now=T0)
    update_task(db, task.id, TaskUpdate(remind_at=T0 + timedelta(hours=5)), now=T0)
    db.commit()
    run_jobs(session_factory, settings, T0 + timedelta(hours=2))
    db.expire_all()
    assert reminders(db) == []
    run_jobs(session_factory, settings, T0 + timedelta(hours=6))
    db.expire_all()
    assert len(reminders(db)) == 1


def test_a_done_task_is_not_reminded(db, session_factory, settings, lead):
    task = create_task(db, TaskIn(subject="Demo", due_at=T0 + timedelta(days=1), remind_at=T0 + timedelta(hours=1),
                                  lead_id=lead.id), now=T0)
    update_task(db, task.id, TaskUpdate(done=True), now=T0)
    db.commit()
    run_jobs(session_factory, settings, T0 + timedelta(hours=2))
    db.expire_all()
    assert reminders(db) == [] and list_tasks(db, lead_id=lead.id) == []
    assert db.scalar(sa.select(Job.state).where(Job.kind == "tasks.remind")) == "completed"


def test_a_task_about_another_customers_lead_is_refused(db, lead, shop):
    other = shop.customer("Khác", email="khac@example.vn")
    with pytest.raises(FieldError) as exc:
        create_task(db, TaskIn(subject="x", due_at=T0, customer_id=other.id, lead_id=lead.id))
    assert exc.value.field == "lead_id"


def test_a_call_logged_on_a_new_lead_is_its_first_contact(db, lead, seller):
    log_activity(db, ActivityIn(kind="call", subject="Gọi tư vấn", lead_id=lead.id, occurred_at=T0), user_id=seller.id)
    assert lead.status == "contacted" and lead.contacted_at == T0
    log_activity(db, ActivityIn(kind="note", subject="Khách hẹn tuần sau", customer_id=lead.customer_id))
    assert [a.kind for a in list_activities(db, customer_id=lead.customer_id)] == ["note", "call"]


def test_an_activity_must_say_who_it_was_with(db):
    with pytest.raises(FieldError) as exc:
        log_activity(db, ActivityIn(kind="meeting", subject="?"))
    assert exc.value.field == "customer_id"


def test_the_forecast_weighs_open_deals_by_close_month_and_counts_won_and_lost(db, shop):
    def deal(i, value, stage="new", close=None):
        customer = shop.customer(f"K{i}", email=f"f{i}@example.vn")
        return create_opportunity(db, OpportunityIn(customer_id=customer.id, value=value, stage=stage,
                                                    expected_close_date=close))

    deal(1, 10_000_000, "proposal", date(2025, 4, 10))  # 50 %
    deal(2, 4_000_000, "negotiation", date(2025, 4, 28))  # 75 %
    deal(3, 8_000_000, "new", date(2025, 5, 2))  # 10 %
    deal(4, 1_000_000)  # no close date
    win(db, deal(5, 6_000_000).id, now=datetime.fromisoformat("2025-03-31T18:00:00+00:00"))  # 1 April in Hà Nội
    lose(db, deal(6, 2_000_000).id, reason="Hết ngân sách", now=datetime.fromisoformat("2025-04-02T03:00:00+00:00"))
    result = forecast(db)
    months = {m["month"]: m for m in result["months"]}
    assert months["2025-04"]["weighted_value"] == 5_000_000 + 3_000_000
    assert months["2025-04"]["open_count"] == 2 and months["2025-05"]["weighted_value"] == 800_000
    assert (months["2025-04"]["won_value"], months["2025-04"]["lost_value"]) == (6_000_000, 2_000_000)
    assert months["2025-04"]["win_rate"] == 0.5
    assert result["unscheduled"] == {"open_count": 1, "open_value": 1_000_000, "weighted_value": 100_000}
    assert [m["month"] for m in forecast(db, since=date(2025, 5, 1))["months"]] == ["2025-05"]


def test_a_converted_lead_with_a_deal_appears_in_the_forecast(db, lead):
    convert_lead(db, lead.id, DealIn(value=3_000_000, stage="negotiation", expected_close_date=date(2025, 6, 1)))
    [june] = forecast(db)["months"]
    assert june["month"] == "2025-06" and june["weighted_value"] == 2_250_000
