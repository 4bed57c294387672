"""Opportunities: a deal with a customer, moving through a pipeline's stages to won or lost.

Converting a lead makes an opportunity on the lead's customer: the profile, its events, messages and
orders are the opportunity's history without copying anything. A won opportunity becomes an order
(clm.commerce `record_orders`, keyed by the opportunity so a retried win records it once), which
CLV, lifecycle stages and loyalty then see like any other order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.commerce.events import OrderData, ProductData
from clm.commerce.models import Order
from clm.commerce.service import record_orders
from clm.customers.models import Customer
from clm.lib import cursor
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound
from clm.lib.money import InvalidMoney, check_currency
from clm.outbox.service import emit
from clm.sales.codes import next_codes
from clm.sales.errors import SalesConflict
from clm.sales.leads import get_lead
from clm.sales.models import MAX_ID, PRIORITIES, Opportunity, OpportunityStageChange, Pipeline, PipelineStage
from clm.sales.pipelines import closing_stage, default_pipeline, get_pipeline, stage_by, stages_of

Priority = Literal[PRIORITIES]  # type: ignore[valid-type]


class ProductLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1, max_length=255)
    name: str | None = Field(None, max_length=512)
    quantity: int = Field(1, ge=1, le=1_000_000)
    price: int = Field(0, ge=0, le=10**15, description="Unit price in minor units (VND: dong).")


class DealIn(BaseModel):
    """What a new opportunity may say; anything left out comes from the lead or the default pipeline."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(None, max_length=255)
    pipeline_id: int | None = Field(None, ge=1, le=MAX_ID)
    stage: str | None = Field(None, description="Key or id of an open stage; default: the first.")
    value: int | None = Field(None, ge=0, le=MAX_ID, description="Minor units (VND: dong); default: the products' total.")
    currency: str = "VND"
    products: list[ProductLine] = Field(default_factory=list)
    expected_close_date: date | None = None
    priority: Priority | None = None
    owner_id: int | None = Field(None, ge=1, le=MAX_ID)


class OpportunityIn(DealIn):
    customer_id: int = Field(ge=1, le=MAX_ID)


class OpportunityUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(None, min_length=1, max_length=255)
    value: int | None = Field(None, ge=0, le=MAX_ID)
    products: list[ProductLine] | None = None
    expected_close_date: date | None = None
    priority: Priority | None = None
    owner_id: int | None = Field(None, ge=1, le=MAX_ID)


def get_opportunity(session: Session, opportunity_id: int, *, for_update: bool = False) -> Opportunity:
    opportunity = session.get(Opportunity, opportunity_id, with_for_update=for_update)
    if opportunity is None:
        raise NotFound("opportunity", opportunity_id)
    return opportunity


def _check_owner(session: Session, owner_id: int | None) -> None:
    if owner_id is not None and session.get(User, owner_id) is None:
        raise FieldError("owner_id", f"no staff user has id {owner_id}")


def _currency(value: str) -> str:
    try:
        return check_currency(value)
    except InvalidMoney as exc:
        raise FieldError("currency", str(exc)) from None


def _open(session: Session, customer_id: int, data: DealIn, *, lead_id: int | None, title: str, priority: str,
          owner_id: int | None, user_id: int | None, now: datetime) -> Opportunity:
    pipeline = get_pipeline(session, data.pipeline_id) if data.pipeline_id is not None else default_pipeline(session)
    if data.stage is not None:
        stage = stage_by(session, pipeline.id, data.stage)
        if stage.kind != "open":
            raise FieldError("stage", "a new opportunity starts in an open stage; win or lose it afterwards")
    else:
        stage = next(s for s in stages_of(session, pipeline.id) if s.kind == "open")
    _check_owner(session, owner_id)
    products = [p.model_dump() for p in data.products]
    value = data.value if data.value is not None else sum(p["quantity"] * p["price"] for p in products)
    opportunity = Opportunity(
        code=next_codes(session, "opportunity")[0], customer_id=customer_id, lead_id=lead_id, pipeline_id=pipeline.id,
        stage_id=stage.id, title=title[:255], value=value, currency=_currency(data.currency), products=products,
        expected_close_date=data.expected_close_date, priority=priority, owner_id=owner_id, status="open",
        stage_changed_at=now, created_at=now, updated_at=now)
    session.add(opportunity)
    session.flush()
    session.add(OpportunityStageChange(opportunity_id=opportunity.id, customer_id=customer_id, from_stage_id=None,
                                       to_stage_id=stage.id, user_id=user_id, changed_at=now))
    emit(session, "opportunity.created", customer_id, {"opportunity_id": opportunity.id, "code": opportunity.code,
                                                       "lead_id": lead_id, "stage": stage.key, "value": value})
    session.flush()
    return opportunity


def convert_lead(session: Session, lead_id: int, data: DealIn | None = None, *, user_id: int | None = None,
                 now: datetime | None = None) -> Opportunity:
    """Turn a lead into an opportunity on the same customer; the lead becomes `converted`."""
    now = now or utcnow()
    data = data or DealIn()
    lead = get_lead(session, lead_id, for_update=True)
    if lead.status == "converted":
        raise SalesConflict("already_converted", f"lead {lead.code} was converted already", "lead_id")
    if lead.status == "unqualified":
        raise SalesConflict("unqualified", f"lead {lead.code} is unqualified; requalify it before converting",
                            "status")
    customer = session.get(Customer, lead.customer_id)
    title = data.title or customer.full_name or customer.email or customer.phone or lead.code
    opportunity = _open(session, lead.customer_id, data, lead_id=lead.id, title=title,
                        priority=data.priority or lead.priority,
                        owner_id=data.owner_id if data.owner_id is not None else lead.owner_id,
                        user_id=user_id, now=now)
    before = lead.status
    lead.status, lead.converted_at, lead.status_changed_at, lead.updated_at = "converted", now, now, now
    lead.contacted_at = lead.contacted_at or now
    emit(session, "lead.status_changed", lead.customer_id,
         {"lead_id": lead.id, "code": lead.code, "from": before, "to": "converted", "opportunity_id": opportunity.id})
    session.flush()
    return opportunity


def create_opportunity(session: Session, data: OpportunityIn, *, user_id: int | None = None,
                       now: datetime | None = None) -> Opportunity:
    """An opportunity with a known customer, without a lead (a repeat buyer's new deal)."""
    now = now or utcnow()
    customer = session.get(Customer, data.customer_id)
    if customer is None or customer.merged_into_id is not None:
        raise FieldError("customer_id", f"there is no customer {data.customer_id}", "not_found")
    title = data.title or customer.full_name or customer.email or customer.phone or f"#{customer.id}"
    return _open(session, customer.id, data, lead_id=None, title=title, priority=data.priority or "low",
                 owner_id=data.owner_id, user_id=user_id, now=now)


def update_opportunity(session: Session, opportunity_id: int, changes: OpportunityUpdate,
                       now: datetime | None = None) -> Opportunity:
    opportunity = get_opportunity(session, opportunity_id, for_update=True)
    sent = changes.model_fields_set
    if opportunity.status != "open" and sent & {"value", "products"}:
        raise SalesConflict("closed", f"opportunity {opportunity.code} is {opportunity.status}; its value is final",
                            "value" if "value" in sent else "products")
    for field in ("title", "priority"):
        if field in sent:
            if getattr(changes, field) is None:
                raise FieldError(field, "must not be empty")
            setattr(opportunity, field, getattr(changes, field))
    if "owner_id" in sent:
        _check_owner(session, changes.owner_id)
        opportunity.owner_id = changes.owner_id
    if "expected_close_date" in sent:
        opportunity.expected_close_date = changes.expected_close_date
    if "products" in sent:
        opportunity.products = [p.model_dump() for p in changes.products or []]
        if "value" not in sent:
            opportunity.value = sum(p["quantity"] * p["price"] for p in opportunity.products)
    if "value" in sent:
        if changes.value is None:
            raise FieldError("value", "must be a number")
        opportunity.value = changes.value
    opportunity.updated_at = now or utcnow()
    session.flush()
    return opportunity


def _record_stage(session: Session, opportunity: Opportunity, stage: PipelineStage, user_id: int | None,
                  now: datetime) -> PipelineStage | None:
    before = session.get(PipelineStage, opportunity.stage_id)
    opportunity.stage_id, opportunity.stage_changed_at, opportunity.updated_at = stage.id, now, now
    session.add(OpportunityStageChange(opportunity_id=opportunity.id, customer_id=opportunity.customer_id,
                                       from_stage_id=before.id if before else None, to_stage_id=stage.id,
                                       user_id=user_id, changed_at=now))
    emit(session, "opportunity.stage_changed", opportunity.customer_id, {
        "opportunity_id": opportunity.id, "code": opportunity.code, "from": before.key if before else None,
        "to": stage.key, "probability": stage.probability})
    return before


def move_stage(session: Session, opportunity_id: int, stage: str | int, *, reason: str | None = None,
               user_id: int | None = None, now: datetime | None = None) -> Opportunity:
    """Move to another stage of the opportunity's pipeline. Moving to the won or lost stage wins or loses
    it (losing needs a reason); a closed opportunity does not move."""
    now = now or utcnow()
    opportunity = get_opportunity(session, opportunity_id, for_update=True)
    target = stage_by(session, opportunity.pipeline_id, stage)
    if opportunity.status != "open":
        raise SalesConflict("closed", f"opportunity {opportunity.code} is {opportunity.status}; it cannot move", "stage")
    if target.kind == "won":
        return win(session, opportunity.id, reason=reason, user_id=user_id, now=now)
    if target.kind == "lost":
        return lose(session, opportunity.id, reason=reason, user_id=user_id, now=now)
    if target.id != opportunity.stage_id:
        _record_stage(session, opportunity, target, user_id, now)
        session.flush()
    return opportunity


def win(session: Session, opportunity_id: int, *, reason: str | None = None, placed_at: datetime | None = None,
        user_id: int | None = None, now: datetime | None = None) -> Opportunity:
    """Close as won and record its order (idempotent: winning again changes nothing)."""
    now = now or utcnow()
    opportunity = get_opportunity(session, opportunity_id, for_update=True)
    if opportunity.status == "won":
        return opportunity
    if opportunity.status == "lost":
        raise SalesConflict("closed", f"opportunity {opportunity.code} was lost; open a new one", "status")
    if opportunity.value <= 0:
        raise FieldError("value", "give the deal's value before winning it: it becomes the order's total")
    _record_stage(session, opportunity, closing_stage(session, opportunity.pipeline_id, "won"), user_id, now)
    opportunity.status, opportunity.closed_at = "won", now
    opportunity.close_reason = reason.strip()[:255] if reason and reason.strip() else None
    order = OrderData(
        order_id=order_key(opportunity), currency=opportunity.currency, total=opportunity.value,
        subtotal=sum(p["quantity"] * p["price"] for p in opportunity.products) or None, channel="sales",
        products=[ProductData(sku=p["sku"], name=p.get("name"), price=p["price"], quantity=p["quantity"],
                              currency=opportunity.currency) for p in opportunity.products])
    record_orders(session, [(opportunity.customer_id, order, placed_at or now,
                             {"opportunity_id": opportunity.id, "opportunity_code": opportunity.code})])
    opportunity.order_id = session.scalar(sa.select(Order.id).where(Order.external_id == order.order_id))
    emit(session, "opportunity.won", opportunity.customer_id, {
        "opportunity_id": opportunity.id, "code": opportunity.code, "value": opportunity.value,
        "currency": opportunity.currency, "order_id": opportunity.order_id, "reason": opportunity.close_reason})
    session.flush()
    return opportunity


def lose(session: Session, opportunity_id: int, *, reason: str | None, user_id: int | None = None,
         now: datetime | None = None) -> Opportunity:
    now = now or utcnow()
    if not (reason and reason.strip()):
        raise FieldError("reason", "say why the deal was lost")
    opportunity = get_opportunity(session, opportunity_id, for_update=True)
    if opportunity.status != "open":
        raise SalesConflict("closed", f"opportunity {opportunity.code} is {opportunity.status} already", "status")
    _record_stage(session, opportunity, closing_stage(session, opportunity.pipeline_id, "lost"), user_id, now)
    opportunity.status, opportunity.closed_at, opportunity.close_reason = "lost", now, reason.strip()[:255]
    emit(session, "opportunity.lost", opportunity.customer_id, {
        "opportunity_id": opportunity.id, "code": opportunity.code, "value": opportunity.value,
        "reason": opportunity.close_reason})
    session.flush()
    return opportunity


def order_key(opportunity: Opportunity) -> str:
    """The order id a won opportunity is recorded under (kept apart from the shop's own order ids)."""
    return f"sales:{opportunity.code}"


def list_opportunities(session: Session, *, pipeline_id: int | None = None, stage: str | None = None,
                       status: str | None = None, owner_id: int | None = None, customer_id: int | None = None,
                       after: str | None = None, limit: int = 50) -> tuple[list[Opportunity], str | None]:
    """Opportunities matching every filter, newest first, and the next page's cursor."""
    query = sa.select(Opportunity)
    if stage is not None:
        if pipeline_id is None:
            raise FieldError("stage", "give pipeline_id with stage")
        query = query.where(Opportunity.stage_id == stage_by(session, pipeline_id, stage).id)
    for column, value in ((Opportunity.pipeline_id, pipeline_id), (Opportunity.status, status),
                          (Opportunity.owner_id, owner_id), (Opportunity.customer_id, customer_id)):
        if value is not None:
            query = query.where(column == value)
    position = cursor.read(after, int)
    if position:
        query = query.where(Opportunity.id < position[0])
    rows = list(session.scalars(query.order_by(Opportunity.id.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], cursor.encode(rows[limit - 1].id)


@dataclass
class Column:
    """One kanban column: the stage, how many open deals it holds, their value and weighted value, the first cards."""

    stage: PipelineStage
    count: int
    value: int
    weighted: int
    cards: list[Opportunity]


def board(session: Session, pipeline_id: int, *, owner_id: int | None = None, per_stage: int = 50) -> list[Column]:
    """The pipeline as columns of open deals (closed ones sit in won/lost, counted over all time)."""
    pipeline: Pipeline = get_pipeline(session, pipeline_id)
    where = [Opportunity.pipeline_id == pipeline.id]
    if owner_id is not None:
        where.append(Opportunity.owner_id == owner_id)
    totals = {stage_id: (count, value or 0) for stage_id, count, value in session.execute(
        sa.select(Opportunity.stage_id, sa.func.count(), sa.func.sum(Opportunity.value)).where(*where)
        .group_by(Opportunity.stage_id))}
    columns = []
    for stage in stages_of(session, pipeline.id):
        count, value = totals.get(stage.id, (0, 0))
        cards = list(session.scalars(sa.select(Opportunity).where(*where, Opportunity.stage_id == stage.id)
                                     .order_by(Opportunity.stage_changed_at.desc(), Opportunity.id.desc())
                                     .limit(per_stage)))
        columns.append(Column(stage, count, int(value), int(value) * stage.probability // 100, cards))
    return columns
