"""What the service desk API answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class TicketOut(_Out):
    id: int
    number: str
    customer_id: int
    subject: str
    status: str
    priority: str
    vip: bool
    type: str | None
    tags: list[str]
    fields: dict[str, Any]
    channel: str
    inbox_id: int | None
    language: str | None
    assignee_id: int | None
    team_id: int | None
    assignment_reason: str | None
    assigned_at: datetime | None
    order_id: int | None
    merged_into_id: int | None
    first_response_at: datetime | None
    last_customer_message_at: datetime | None
    last_agent_reply_at: datetime | None
    solved_at: datetime | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TicketPage(BaseModel):
    data: list[TicketOut]
    next: int | None


class MessageOut(_Out):
    id: int
    conversation_id: int
    ticket_id: int
    customer_id: int
    direction: str
    author_id: int | None
    body: str
    external_id: str | None
    attachments: list[dict[str, Any]]
    created_at: datetime


class NoteOut(_Out):
    id: int
    ticket_id: int
    author_id: int | None
    body: str
    mentions: list[int]
    created_at: datetime


class ChangeOut(_Out):
    id: int
    user_id: int | None
    actor: str
    field: str
    old: Any
    new: Any
    reason: str | None
    at: datetime


class TimerOut(_Out):
    id: int
    metric: str
    state: str
    target_minutes: int
    started_at: datetime
    due_at: datetime | None
    warned_at: datetime | None
    breached_at: datetime | None
    met_at: datetime | None
    explanation: dict[str, Any]


class TicketDetail(BaseModel):
    ticket: TicketOut
    messages: list[MessageOut]
    notes: list[NoteOut]
    sla: list[TimerOut]
    changes: list[ChangeOut]


class ReceivedOut(BaseModel):
    created: bool
    ticket: TicketOut
    message: MessageOut


class InboxOut(_Out):
    id: int
    name: str
    channel: str
    address: str | None
    language: str | None
    active: bool


class AgentOut(_Out):
    user_id: int
    name: str
    email: str
    availability: str
    capacity: int
    load: int
    languages: list[str]
    teams: list[int]
    last_assigned_at: datetime | None


class TeamOut(BaseModel):
    id: int
    name: str
    members: list[int]


class RuleOut(_Out):
    id: int
    position: int
    team_id: int
    channel: str | None
    language: str | None
    tag: str | None
    tier: str | None
    segment_id: int | None
    active: bool


class FieldOut(_Out):
    id: int
    key: str
    label: dict[str, str]
    kind: str
    choices: list[str]
    required: bool
    active: bool


class CalendarOut(_Out):
    id: int
    name: str
    timezone: str
    hours: dict[str, list[list[str]]]
    holiday_country: str | None
    closed_days: list[str]
    is_default: bool


class PolicyOut(_Out):
    id: int
    name: str
    position: int
    priority: str | None
    channel: str | None
    tier: str | None
    first_response_minutes: int | None
    next_response_minutes: int | None
    resolution_minutes: int | None
    warn_before_minutes: int
    escalation: dict[str, bool]
    calendar_id: int | None
    active: bool


class TaskOut(_Out):
    id: int
    subject: str
    due_at: datetime
    remind_at: datetime | None
    assignee_id: int | None
    customer_id: int | None
    ticket_id: int | None
    priority: str
    done_at: datetime | None


class MyTasksOut(BaseModel):
    overdue: list[TaskOut]
    today: list[TaskOut]
