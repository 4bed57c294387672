"""What the sales API answers: leads, opportunities, pipelines, activities, tasks."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ScoreOut(BaseModel):
    value: float | None = Field(description="Probability of winning, 0 to 1 (null: not scored yet).")
    kind: str | None = Field(description="learned (from the shop's won and lost deals) or prior (too few yet).")
    note: dict[str, str] | None = Field(description="Why the score is a prior, in vi and en.")
    reasons: list[dict[str, Any]] = Field(description="Top contributions: feature, value, contribution, vi, en.")
    scored_at: datetime | None


class LeadOut(_Out):
    id: int
    code: str
    customer_id: int
    source: str
    campaign: str | None
    utm: dict[str, str]
    status: str
    unqualified_reason: str | None
    owner_id: int | None
    priority: str
    classification: str | None
    classification_manual: bool
    score: ScoreOut
    message: str | None
    details: dict[str, Any]
    contacted_at: datetime | None
    converted_at: datetime | None
    opportunity_id: int | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, lead, opportunity_id: int | None = None) -> LeadOut:
        detail = lead.score_detail or {}
        return cls.model_validate({
            **{k: getattr(lead, k) for k in cls.model_fields if k not in ("score", "opportunity_id")},
            "score": ScoreOut(value=lead.score, kind=lead.score_kind, note=detail.get("note"),
                              reasons=detail.get("reasons", []), scored_at=lead.scored_at),
            "opportunity_id": opportunity_id})


class LeadPage(BaseModel):
    data: list[LeadOut]
    next: str | None


class CapturedOut(BaseModel):
    created: bool = Field(description="False: the same submission (external id) or the customer's open lead.")
    lead: LeadOut


class StageOut(_Out):
    id: int
    key: str
    name: dict[str, str]
    position: int
    probability: int
    kind: str


class PipelineOut(_Out):
    id: int
    name: str
    is_default: bool
    stages: list[StageOut]


class PipelineList(BaseModel):
    data: list[PipelineOut]


class OpportunityOut(_Out):
    id: int
    code: str
    customer_id: int
    lead_id: int | None
    pipeline_id: int
    stage_id: int
    stage: str | None = None
    title: str
    value: int = Field(description="Minor units of `currency` (VND: dong).")
    currency: str
    products: list[dict[str, Any]]
    expected_close_date: date | None
    priority: str
    owner_id: int | None
    status: str
    close_reason: str | None
    closed_at: datetime | None
    order_id: int | None
    stage_changed_at: datetime
    created_at: datetime
    updated_at: datetime


class OpportunityPage(BaseModel):
    data: list[OpportunityOut]
    next: str | None


class ColumnOut(BaseModel):
    stage: StageOut
    count: int
    value: int
    weighted: int
    cards: list[OpportunityOut]


class BoardOut(BaseModel):
    pipeline: PipelineOut
    columns: list[ColumnOut]


class ActivityOut(_Out):
    id: int
    customer_id: int
    lead_id: int | None
    opportunity_id: int | None
    kind: str
    subject: str
    body: str | None
    user_id: int | None
    occurred_at: datetime


class ActivityList(BaseModel):
    data: list[ActivityOut]


class TaskOut(_Out):
    id: int
    subject: str
    notes: str | None
    due_at: datetime
    remind_at: datetime | None
    reminded_at: datetime | None
    assignee_id: int | None
    customer_id: int | None
    lead_id: int | None
    opportunity_id: int | None
    priority: str
    done_at: datetime | None
    created_at: datetime


class TaskList(BaseModel):
    data: list[TaskOut]
