"""Tasks: something a staff member must do by a time, with an optional reminder on the jobs queue.

The table is shared: sales relates a task to a customer, lead or opportunity; the service desk will
add its ticket. A reminder is a `tasks.remind` job due at `remind_at`, keyed by task and time; moving
the reminder queues a new job and the old one, finding a different `remind_at`, does nothing. A
reminder marks the task reminded and announces `task.reminder` (outbox) for notifications to act on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.customers.models import Customer
from clm.jobs.queue import enqueue
from clm.lib.clock import as_utc, utcnow
from clm.lib.errors import FieldError, NotFound
from clm.outbox.service import emit
from clm.sales.models import MAX_ID, PRIORITIES, Lead, Opportunity, Task

REMIND_KIND = "tasks.remind"


class TaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str = Field(min_length=1, max_length=255)
    notes: str | None = Field(None, max_length=10_000)
    due_at: datetime
    remind_at: datetime | None = None
    assignee_id: int | None = Field(None, ge=1, le=MAX_ID)
    customer_id: int | None = Field(None, ge=1, le=MAX_ID)
    lead_id: int | None = Field(None, ge=1, le=MAX_ID)
    opportunity_id: int | None = Field(None, ge=1, le=MAX_ID)
    priority: Literal[PRIORITIES] = "low"  # type: ignore[valid-type]


class TaskUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str | None = Field(None, min_length=1, max_length=255)
    notes: str | None = Field(None, max_length=10_000)
    due_at: datetime | None = None
    remind_at: datetime | None = None
    assignee_id: int | None = Field(None, ge=1, le=MAX_ID)
    priority: Literal[PRIORITIES] | None = None  # type: ignore[valid-type]
    done: bool | None = None


def _related(session: Session, data: TaskIn) -> int | None:
    """The task's customer, checked against its lead and opportunity (they must agree)."""
    customer_id = data.customer_id
    for field, model, value in (("lead_id", Lead, data.lead_id), ("opportunity_id", Opportunity, data.opportunity_id)):
        if value is None:
            continue
        row = session.get(model, value)
        if row is None:
            raise FieldError(field, f"there is no {field[:-3]} {value}", "not_found")
        if customer_id is not None and row.customer_id != customer_id:
            raise FieldError(field, f"belongs to customer {row.customer_id}, not {customer_id}")
        customer_id = row.customer_id
    if customer_id is not None and session.get(Customer, customer_id) is None:
        raise FieldError("customer_id", f"there is no customer {customer_id}", "not_found")
    return customer_id


def _check_assignee(session: Session, assignee_id: int | None) -> None:
    if assignee_id is not None and session.get(User, assignee_id) is None:
        raise FieldError("assignee_id", f"no staff user has id {assignee_id}")


def _schedule(session: Session, task: Task, now: datetime) -> None:
    if task.remind_at is None or task.done_at is not None:
        return
    at = task.remind_at.isoformat()
    enqueue(session, REMIND_KIND, {"task_id": task.id, "remind_at": at}, run_at=max(task.remind_at, now),
            unique_key=f"{REMIND_KIND}:{task.id}:{at}", max_attempts=5)


def create_task(session: Session, data: TaskIn, *, created_by: int | None = None, now: datetime | None = None) -> Task:
    now = now or utcnow()
    customer_id = _related(session, data)
    _check_assignee(session, data.assignee_id)
    remind_at = as_utc(data.remind_at) if data.remind_at else None
    task = Task(subject=data.subject.strip(), notes=data.notes, due_at=as_utc(data.due_at), remind_at=remind_at,
                assignee_id=data.assignee_id, created_by_id=created_by, customer_id=customer_id,
                lead_id=data.lead_id, opportunity_id=data.opportunity_id, priority=data.priority,
                created_at=now, updated_at=now)
    session.add(task)
    session.flush()
    _schedule(session, task, now)
    return task


def get_task(session: Session, task_id: int, *, for_update: bool = False) -> Task:
    task = session.get(Task, task_id, with_for_update=for_update)
    if task is None:
        raise NotFound("task", task_id)
    return task


def update_task(session: Session, task_id: int, changes: TaskUpdate, now: datetime | None = None) -> Task:
    """Apply the sent fields; `done: true` completes the task (and drops its reminder), false reopens it."""
    now = now or utcnow()
    task = get_task(session, task_id, for_update=True)
    sent = changes.model_fields_set
    for field in ("subject", "notes", "priority"):
        if field in sent:
            if getattr(changes, field) is None and field != "notes":
                raise FieldError(field, "must not be empty")
            setattr(task, field, getattr(changes, field))
    if "assignee_id" in sent:
        _check_assignee(session, changes.assignee_id)
        task.assignee_id = changes.assignee_id
    if "due_at" in sent:
        if changes.due_at is None:
            raise FieldError("due_at", "a task needs a due time")
        task.due_at = as_utc(changes.due_at)
    if "done" in sent and changes.done is not None:
        task.done_at = (task.done_at or now) if changes.done else None
    if "remind_at" in sent:
        task.remind_at = as_utc(changes.remind_at) if changes.remind_at else None
        task.reminded_at = None
    task.updated_at = now
    session.flush()
    if "remind_at" in sent or ("done" in sent and changes.done is False):
        _schedule(session, task, now)
    return task


def list_tasks(session: Session, *, assignee_id: int | None = None, customer_id: int | None = None,
               lead_id: int | None = None, opportunity_id: int | None = None, open_only: bool = True,
               due_before: datetime | None = None, limit: int = 100) -> list[Task]:
    """Tasks matching every filter, soonest due first."""
    query = sa.select(Task)
    for column, value in ((Task.assignee_id, assignee_id), (Task.customer_id, customer_id), (Task.lead_id, lead_id),
                          (Task.opportunity_id, opportunity_id)):
        if value is not None:
            query = query.where(column == value)
    if open_only:
        query = query.where(Task.done_at.is_(None))
    if due_before is not None:
        query = query.where(Task.due_at < as_utc(due_before))
    return list(session.scalars(query.order_by(Task.due_at, Task.id).limit(limit)))


def send_reminder(session: Session, task_id: int, remind_at: str | None, now: datetime) -> bool:
    """The reminder job: announce the task once, unless it is done, gone or the reminder was moved."""
    task = session.get(Task, task_id, with_for_update=True)
    if task is None or task.done_at is not None or task.remind_at is None or task.reminded_at is not None:
        return False
    if remind_at is not None and task.remind_at.isoformat() != remind_at:
        return False
    task.reminded_at = now
    emit(session, "task.reminder", task.customer_id, {
        "task_id": task.id, "subject": task.subject, "assignee_id": task.assignee_id,
        "due_at": task.due_at.isoformat(), "lead_id": task.lead_id, "opportunity_id": task.opportunity_id})
    session.flush()
    return True
