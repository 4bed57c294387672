"""The sales pipeline's tables: leads, pipelines and stages, opportunities, activities, tasks, scores.

A lead and an opportunity hold only sales facts; who the person is, what they did and bought stay on
the customer (clm.customers), so a conversion copies nothing and a merge moves everything.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clm.db.base import Base, BigId, Json, UTCDateTime
from clm.lib.clock import utcnow

SOURCES = ("web_form", "facebook_lead_ads", "zalo", "referral", "event", "import", "manual")
LEAD_STATUSES = ("new", "contacted", "qualified", "unqualified", "converted")
OPEN_LEAD_STATUSES = ("new", "contacted", "qualified")
PRIORITIES = ("low", "high", "very_high", "urgent")
CLASSIFICATIONS = ("target", "potential", "low_potential")
STAGE_KINDS = ("open", "won", "lost")
OPPORTUNITY_STATUSES = ("open", "won", "lost")
ACTIVITY_KINDS = ("call", "meeting", "note")
MAX_ID = 2**63 - 1  # ids and amounts in request bodies stay within BIGINT


class CodeSequence(Base):
    """Counters behind readable codes (LD-000123, OP-000045): one row per kind, bumped under its row lock,
    so codes never repeat, even after an erasure deletes the newest row."""

    __tablename__ = "code_sequences"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    value: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (
        sa.UniqueConstraint("source", "external_id", name="uq_leads_source_external_id"),
        sa.Index("ix_leads_status_created", "status", "created_at"),
        sa.Index("ix_leads_owner_status", "owner_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(sa.String(24))
    # The provider's id of the submission (Facebook leadgen id, Zalo event, import row key): a repeated
    # webhook finds its lead instead of making another.
    external_id: Mapped[str | None] = mapped_column(sa.String(255))
    campaign: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    utm: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    status: Mapped[str] = mapped_column(sa.String(16), default="new")
    unqualified_reason: Mapped[str | None] = mapped_column(sa.String(255))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    priority: Mapped[str] = mapped_column(sa.String(16), default="low")
    classification: Mapped[str | None] = mapped_column(sa.String(16))
    classification_manual: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    score: Mapped[float | None] = mapped_column(sa.Float)
    score_kind: Mapped[str | None] = mapped_column(sa.String(16))  # learned | prior
    # {"model_id", "note": {vi, en} | None, "reasons": [{feature, value, contribution, vi, en}]}
    score_detail: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message: Mapped[str | None] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    contacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # {"rule_id", "rule", "method", "user_id", "at", "vi", "en"}: who got the lead and why
    assignment: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    first_contact_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_contact_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The business's rule points (clm.sales.points), kept beside the learned score to compare them.
    rule_points: Mapped[float | None] = mapped_column(sa.Float)
    rule_points_detail: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Pipeline(Base):
    __tablename__ = "pipelines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    is_default: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PipelineStage(Base):
    """One stage of a pipeline: its place, its win probability (0-100) and whether it closes the deal."""

    __tablename__ = "pipeline_stages"
    __table_args__ = (sa.UniqueConstraint("pipeline_id", "key", name="uq_pipeline_stages_pipeline_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(sa.ForeignKey("pipelines.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(sa.String(32))
    name: Mapped[dict[str, str]] = mapped_column(Json, default=dict)  # {"vi": ..., "en": ...}
    position: Mapped[int] = mapped_column(sa.Integer)
    probability: Mapped[int] = mapped_column(sa.Integer)
    kind: Mapped[str] = mapped_column(sa.String(8), default="open")


class Opportunity(Base):
    __tablename__ = "opportunities"
    __table_args__ = (
        sa.Index("ix_opportunities_status_close", "status", "expected_close_date"),
        sa.Index("ix_opportunities_pipeline_stage", "pipeline_id", "stage_id"),
        # A board column's newest cards without sorting the whole column (50,000 won deals in one), and its
        # count and value from the index alone (covering).
        sa.Index("ix_opportunities_board", "pipeline_id", "stage_id", "stage_changed_at", "id", "value"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    lead_id: Mapped[int | None] = mapped_column(sa.ForeignKey("leads.id", ondelete="SET NULL"), unique=True)
    pipeline_id: Mapped[int] = mapped_column(sa.ForeignKey("pipelines.id"))
    stage_id: Mapped[int] = mapped_column(sa.ForeignKey("pipeline_stages.id"))
    title: Mapped[str] = mapped_column(sa.String(255))
    value: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # minor units of `currency` (VND: dong)
    currency: Mapped[str] = mapped_column(sa.String(3), default="VND")
    products: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    expected_close_date: Mapped[date | None] = mapped_column(sa.Date)
    priority: Mapped[str] = mapped_column(sa.String(16), default="low")
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(sa.String(8), default="open")
    close_reason: Mapped[str | None] = mapped_column(sa.String(255))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id", ondelete="SET NULL"))
    stage_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OpportunityStageChange(Base):
    """Every stage an opportunity entered, when and by whom: time in stage and conversion reports read it."""

    __tablename__ = "opportunity_stage_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(sa.ForeignKey("opportunities.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    from_stage_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pipeline_stages.id", ondelete="SET NULL"))
    to_stage_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pipeline_stages.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Activity(Base):
    """A call, meeting or note with a customer, optionally about one lead or opportunity."""

    __tablename__ = "activities"
    __table_args__ = (sa.Index("ix_activities_customer_time", "customer_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"))
    lead_id: Mapped[int | None] = mapped_column(sa.ForeignKey("leads.id", ondelete="SET NULL"), index=True)
    opportunity_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("opportunities.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    subject: Mapped[str] = mapped_column(sa.String(255))
    body: Mapped[str | None] = mapped_column(sa.Text)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Task(Base):
    """Something a staff member must do by a time; shared by sales and (later) the service desk.

    Related rows are optional columns, not a polymorphic pair, so each keeps its foreign key; a new
    capability adds its own nullable column (ticket_id).
    """

    __tablename__ = "tasks"
    __table_args__ = (sa.Index("ix_tasks_assignee_open", "assignee_id", "done_at", "due_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subject: Mapped[str] = mapped_column(sa.String(255))
    notes: Mapped[str | None] = mapped_column(sa.Text)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    lead_id: Mapped[int | None] = mapped_column(sa.ForeignKey("leads.id", ondelete="SET NULL"), index=True)
    opportunity_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("opportunities.id", ondelete="CASCADE"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("service_tickets.id", ondelete="SET NULL"), index=True)  # the service desk's
    priority: Mapped[str] = mapped_column(sa.String(16), default="low")
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class LeadScoreModel(Base):
    """A fitted (or prior) lead-scoring model: features, standardisation, coefficients, evaluation."""

    __tablename__ = "lead_score_models"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # learned | prior
    won: Mapped[int] = mapped_column(sa.Integer, default=0)
    lost: Mapped[int] = mapped_column(sa.Integer, default=0)
    auc: Mapped[float | None] = mapped_column(sa.Float)
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    trained_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


ASSIGNMENT_METHODS = ("round_robin", "least_load")


class LeadForm(Base):
    """A web form the shop embeds: what it asks, its title and thank-you text, the campaign and owner its
    leads get. The public form (/forms/lead?form=KEY) reads it; an unknown key is the plain default form."""

    __tablename__ = "lead_forms"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    fields: Mapped[list[str]] = mapped_column(Json, default=list)  # of name, phone, email, city, message
    campaign: Mapped[str | None] = mapped_column(sa.String(255))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    thank_you: Mapped[str | None] = mapped_column(sa.String(1000))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AssignmentRule(Base):
    """Who gets a new lead: the first active rule (by position) whose conditions the lead meets hands it to
    one of `user_ids`, in turn (`next_index`, bumped under the rule's row lock) or to the one with the
    fewest open leads. Empty conditions match every lead."""

    __tablename__ = "lead_assignment_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    position: Mapped[int] = mapped_column(sa.Integer, default=0)
    method: Mapped[str] = mapped_column(sa.String(16), default="round_robin")
    sources: Mapped[list[str]] = mapped_column(Json, default=list)
    provinces: Mapped[list[str]] = mapped_column(Json, default=list)  # folded city names
    product_lines: Mapped[list[str]] = mapped_column(Json, default=list)  # matched against details.product_line
    user_ids: Mapped[list[int]] = mapped_column(Json, default=list)
    next_index: Mapped[int] = mapped_column(sa.Integer, default=0)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class StaffNotification(Base):
    """Something a staff member should see (a task's reminder, a lead waiting past its first-contact SLA),
    shown in the dashboard; `key` makes a repeated job notify once."""

    __tablename__ = "staff_notifications"
    __table_args__ = (sa.Index("ix_staff_notifications_user_read", "user_id", "read_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    text: Mapped[dict[str, str]] = mapped_column(Json, default=dict)  # {"vi": ..., "en": ...}
    link: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PointRule(Base):
    """Hand-set lead scoring: a segment rule tree worth `points` (negative allowed); with `half_life_days`
    the points halve every that many days since the customer last did the events the tree names."""

    __tablename__ = "lead_point_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    rule: Mapped[dict[str, Any]] = mapped_column(Json)
    points: Mapped[int] = mapped_column(sa.Integer)
    half_life_days: Mapped[int | None] = mapped_column(sa.Integer)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
