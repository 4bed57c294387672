"""Tasks on the shared task table: tied to tickets, a call-back task for a missed call, "my tasks"."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from clm.sales.tasks import TaskIn, TaskUpdate, update_task
from clm.service.tasks import missed_call_task, my_tasks, task_for_ticket, tasks_of_ticket
from clm.service.tickets import TicketIn, open_ticket

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def test_a_missed_call_makes_one_call_back_task_due_within_the_hour(db, shop, make_agent):
    agent = make_agent("Lan")
    customer = shop.customer("Nguyễn Văn An", phone="0912345678")
    at = datetime(2025, 3, 10, 9, 0, tzinfo=VN)
    task = missed_call_task(db, customer.id, phone="+84912345678", at=at, assignee_id=agent.id)
    again = missed_call_task(db, customer.id, phone="+84912345678", at=at, assignee_id=agent.id)
    assert again.id == task.id
    assert task.due_at == at + timedelta(hours=1) and task.remind_at == at + timedelta(minutes=50)
    assert task.customer_id == customer.id and task.priority == "high" and "+84912345678" in task.subject


def test_my_tasks_are_overdue_ones_and_the_rest_of_today(db, shop, make_agent):
    lan, minh = make_agent("Lan"), make_agent("Minh")
    customer = shop.customer("Trần Thị Bình")
    ticket = open_ticket(db, TicketIn(customer_id=customer.id, subject="x", route=False))
    now = datetime(2025, 3, 10, 14, 0, tzinfo=VN)

    def task(subject, due, who=lan):
        return task_for_ticket(db, TaskIn(subject=subject, due_at=due, assignee_id=who.id), ticket.id, now=now)

    yesterday = task("hôm qua", now - timedelta(days=1))
    morning = task("sáng nay", now - timedelta(hours=3))
    evening = task("tối nay", now + timedelta(hours=8))  # 22:00 Hanoi time: still today
    task("ngày mai", now + timedelta(hours=11))  # 01:00 tomorrow
    task("của Minh", now, who=minh)
    done = task("xong rồi", now - timedelta(hours=1))
    update_task(db, done.id, TaskUpdate(done=True), now=now)
    mine = my_tasks(db, lan.id, now=now)
    assert [t.id for t in mine.overdue] == [yesterday.id, morning.id]
    assert [t.id for t in mine.today] == [evening.id]
    assert all(t.customer_id == customer.id for t in tasks_of_ticket(db, ticket.id))
