"""The desk's tasks: the shared task table of clm.sales.tasks (reminders on the jobs queue), with the
ticket they belong to. A missed call makes a call-back task; "my tasks" lists today's and overdue ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.lib.clock import utcnow
from clm.lib.errors import FieldError
from clm.sales.models import Task
from clm.sales.tasks import TaskIn, create_task
from clm.service.models import Ticket
from clm.service.tickets import _customer, get_ticket

CALL_BACK_WITHIN = timedelta(hours=1)  # a missed call is due for a call back within the hour
REMIND_BEFORE = timedelta(minutes=10)


def task_for_ticket(session: Session, data: TaskIn, ticket_id: int | None = None, *, by: int | None = None,
                    now: datetime | None = None) -> Task:
    """A task (clm.sales.tasks) tied to a ticket: its customer is the ticket's."""
    now = now or utcnow()
    if ticket_id is not None:
        ticket = get_ticket(session, ticket_id)
        if data.customer_id is not None and data.customer_id != ticket.customer_id:
            raise FieldError("customer_id", f"ticket {ticket.number} is customer {ticket.customer_id}'s")
        data = data.model_copy(update={"customer_id": ticket.customer_id})
    task = create_task(session, data, created_by=by, now=now)
    task.ticket_id = ticket_id
    session.flush()
    return task


def missed_call_task(session: Session, customer_id: int, *, phone: str | None, at: datetime,
                     assignee_id: int | None = None, ticket_id: int | None = None,
                     now: datetime | None = None) -> Task:
    """A call-back task for a missed call, due within the hour, reminding the assignee shortly before.
    One per customer and call time: the same missed call reported twice makes one task."""
    now = now or utcnow()
    customer = _customer(session, customer_id)
    subject = f"Gọi lại / Call back {phone or ''}".strip()
    known = session.scalar(sa.select(Task).where(Task.customer_id == customer.id, Task.subject == subject,
                                                 Task.created_at == at))
    if known is not None:
        return known
    due = at + CALL_BACK_WITHIN
    task = create_task(session, TaskIn(subject=subject, due_at=due, remind_at=max(due - REMIND_BEFORE, at),
                                       assignee_id=assignee_id, customer_id=customer.id, priority="high",
                                       notes=f"missed call at {at.isoformat()}"), now=at)
    task.ticket_id = ticket_id
    session.flush()
    return task


@dataclass(frozen=True)
class MyTasks:
    overdue: list[Task]
    today: list[Task]


def my_tasks(session: Session, user_id: int, *, timezone: str = "Asia/Ho_Chi_Minh",
             now: datetime | None = None, limit: int = 200) -> MyTasks:
    """The user's open tasks: overdue (due before now) and the rest due today (business time zone)."""
    now = now or utcnow()
    tz = ZoneInfo(timezone)
    end_of_day = datetime.combine(now.astimezone(tz).date() + timedelta(days=1), time(0), tz)
    rows = list(session.scalars(sa.select(Task).where(Task.assignee_id == user_id, Task.done_at.is_(None),
                                                      Task.due_at < end_of_day)
                                .order_by(Task.due_at, Task.id).limit(limit)))
    return MyTasks([t for t in rows if t.due_at < now], [t for t in rows if t.due_at >= now])


def tasks_of_ticket(session: Session, ticket_id: int) -> list[Task]:
    return list(session.scalars(sa.select(Task).where(Task.ticket_id == ticket_id).order_by(Task.due_at, Task.id)))


def ticket_of_task(session: Session, task: Task) -> Ticket | None:
    return session.get(Ticket, task.ticket_id) if task.ticket_id else None
