"""Opportunities: conversion keeps the customer's history, stages move by the pipeline's rules, a won deal
becomes an order that CLV and the lifecycle see, a lost deal says why."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from clm.analytics.models import CustomerScore
from clm.analytics.refresh import refresh
from clm.commerce.models import Order, OrderItem
from clm.customers.models import Customer
from clm.customers.service import timeline
from clm.lib.errors import FieldError
from clm.lifecycle.consumers import OutboxConsumer
from clm.lifecycle.rules import current_rules
from clm.outbox.models import OutboxEvent
from clm.sales.errors import SalesConflict
from clm.sales.leads import LeadIn, capture_lead
from clm.sales.models import Lead, OpportunityStageChange
from clm.sales.opportunities import (
    DealIn,
    OpportunityIn,
    ProductLine,
    board,
    convert_lead,
    create_opportunity,
    lose,
    move_stage,
    win,
)
from clm.sales.pipelines import PipelineIn, StageIn, default_pipeline, save_pipeline
from tests.customers.shop import T0

PRODUCTS = [ProductLine(sku="SOFA-3", name="Sofa 3 chỗ", quantity=2, price=7_500_000)]


@pytest.fixture
def lead(db, shop) -> Lead:
    customer = shop.customer("Đỗ Minh Khoa", phone="0903111222")
    shop.track(customer, "Product Viewed", at=timedelta(hours=1), product_id="SOFA-3")
    return capture_lead(db, LeadIn(phone="0903111222", source="web_form"), now=T0 + timedelta(hours=2)).lead


def topics(db, customer_id) -> list[str]:
    return list(db.scalars(sa.select(OutboxEvent.topic).where(OutboxEvent.customer_id == customer_id)
                           .order_by(OutboxEvent.id)))


def test_converting_a_lead_opens_an_opportunity_on_the_same_customer_with_its_whole_history(db, lead):
    before = [(kind, row.id) for kind, _, row in timeline(db, lead.customer_id)[0]]
    opportunity = convert_lead(db, lead.id, DealIn(products=PRODUCTS, expected_close_date=date(2025, 4, 15)))
    assert opportunity.customer_id == lead.customer_id and opportunity.lead_id == lead.id
    assert opportunity.code.startswith("OP-") and opportunity.value == 15_000_000
    assert lead.status == "converted" and lead.converted_at is not None
    after = [(kind, row.id) for kind, _, row in timeline(db, opportunity.customer_id)[0]]
    assert after == before and len(after) >= 2  # the visit and the form are the deal's history, not copies
    assert "opportunity.created" in topics(db, lead.customer_id)


def test_a_converted_lead_cannot_be_converted_again_and_nothing_is_half_done(db, lead):
    convert_lead(db, lead.id)
    with pytest.raises(SalesConflict) as exc:
        convert_lead(db, lead.id)
    assert exc.value.code == "already_converted" and exc.value.field == "lead_id"


def test_an_unknown_stage_is_refused_naming_the_field(db, lead):
    opportunity = convert_lead(db, lead.id)
    with pytest.raises(FieldError) as exc:
        move_stage(db, opportunity.id, "signed-contract")
    assert exc.value.field == "stage" and exc.value.code == "unknown_stage"


def test_a_stage_of_another_pipeline_is_not_a_stage_of_this_one(db, lead):
    other = save_pipeline(db, PipelineIn(name="Dự án", stages=[
        StageIn(key="survey", probability=20), StageIn(key="won", probability=100, kind="won"),
        StageIn(key="lost", probability=0, kind="lost")]))
    opportunity = convert_lead(db, lead.id)
    survey = next(s for s in board(db, other.id) if s.stage.key == "survey").stage
    with pytest.raises(FieldError):
        move_stage(db, opportunity.id, survey.id)


def test_stage_moves_are_recorded_with_their_events(db, lead, seller):
    opportunity = convert_lead(db, lead.id)
    move_stage(db, opportunity.id, "proposal", user_id=seller.id)
    changes = db.scalars(sa.select(OpportunityStageChange).where(
        OpportunityStageChange.opportunity_id == opportunity.id).order_by(OpportunityStageChange.id)).all()
    assert [c.user_id for c in changes] == [None, seller.id]
    assert "opportunity.stage_changed" in topics(db, lead.customer_id)


def test_a_won_opportunity_becomes_an_order_seen_by_clv_and_the_lifecycle(db, lead):
    opportunity = convert_lead(db, lead.id, DealIn(products=PRODUCTS))
    win(db, opportunity.id, reason="Khách chốt sau demo", now=T0 + timedelta(days=3))
    order = db.get(Order, opportunity.order_id)
    assert order.customer_id == lead.customer_id and order.total == 15_000_000 and order.channel == "sales"
    assert db.scalars(sa.select(OrderItem.sku).where(OrderItem.order_id == order.id)).all() == ["SOFA-3"]
    OutboxConsumer(lambda: current_rules())(db, T0 + timedelta(days=3))
    assert db.get(Customer, lead.customer_id).lifecycle_stage == "conversion"
    refresh(db, T0 + timedelta(days=10))
    score = db.get(CustomerScore, lead.customer_id)
    assert (score.monetary, score.tenure_days, score.frequency) == (15_000_000, 7, 0)  # the won deal's order
    assert db.scalar(sa.select(sa.func.count()).select_from(Order).where(
        Order.customer_id == lead.customer_id)) == 1


def test_winning_twice_records_one_order(db, lead):
    opportunity = convert_lead(db, lead.id, DealIn(value=5_000_000))
    win(db, opportunity.id)
    win(db, opportunity.id)
    assert db.scalar(sa.select(sa.func.count()).select_from(Order)) == 1


def test_a_deal_without_a_value_cannot_be_won(db, lead):
    opportunity = convert_lead(db, lead.id)
    with pytest.raises(FieldError) as exc:
        win(db, opportunity.id)
    assert exc.value.field == "value"
    assert db.scalar(sa.select(sa.func.count()).select_from(Order)) == 0


def test_a_lost_deal_needs_a_reason_and_then_stays_closed(db, lead):
    opportunity = convert_lead(db, lead.id, DealIn(value=1_000_000))
    with pytest.raises(FieldError) as exc:
        move_stage(db, opportunity.id, "lost")
    assert exc.value.field == "reason"
    lose(db, opportunity.id, reason="Giá cao hơn đối thủ")
    assert opportunity.status == "lost" and opportunity.close_reason == "Giá cao hơn đối thủ"
    with pytest.raises(SalesConflict):
        move_stage(db, opportunity.id, "proposal")
    assert "opportunity.lost" in topics(db, lead.customer_id)


def test_dragging_to_the_won_column_wins_the_deal(db, lead):
    opportunity = convert_lead(db, lead.id, DealIn(value=2_000_000))
    move_stage(db, opportunity.id, "won")
    assert opportunity.status == "won" and opportunity.order_id is not None


def test_a_repeat_buyer_gets_an_opportunity_without_a_lead(db, shop):
    customer = shop.customer("Vũ Hà", email="ha@example.vn")
    opportunity = create_opportunity(db, OpportunityIn(customer_id=customer.id, value=3_000_000, stage="proposal"))
    assert opportunity.lead_id is None and opportunity.title == "Vũ Hà"
    with pytest.raises(FieldError) as exc:
        create_opportunity(db, OpportunityIn(customer_id=customer.id, stage="won"))
    assert exc.value.field == "stage"


def test_the_board_counts_and_weighs_each_column(db, shop):
    pipeline = default_pipeline(db)
    for i, (stage, value) in enumerate([("new", 1_000_000), ("proposal", 2_000_000), ("proposal", 4_000_000)]):
        customer = shop.customer(f"Khách {i}", email=f"k{i}@example.vn")
        create_opportunity(db, OpportunityIn(customer_id=customer.id, value=value, stage=stage))
    columns = {c.stage.key: c for c in board(db, pipeline.id)}
    assert (columns["new"].count, columns["new"].weighted) == (1, 100_000)
    assert (columns["proposal"].count, columns["proposal"].value, columns["proposal"].weighted) == (2, 6_000_000, 3_000_000)
    assert list(columns) == ["new", "qualified", "proposal", "negotiation", "won", "lost"]


def test_a_pipeline_needs_one_won_and_one_lost_stage(db):
    with pytest.raises(ValueError):
        PipelineIn(name="x", stages=[StageIn(key="a", probability=10), StageIn(key="b", probability=20),
                                     StageIn(key="won", probability=100, kind="won")])


def test_a_stage_holding_deals_cannot_be_removed(db, lead):
    convert_lead(db, lead.id)
    pipeline = default_pipeline(db)
    with pytest.raises(SalesConflict) as exc:
        save_pipeline(db, PipelineIn(name=pipeline.name, stages=[
            StageIn(key="qualified", probability=30), StageIn(key="won", probability=100, kind="won"),
            StageIn(key="lost", probability=0, kind="lost")]), pipeline.id)
    assert exc.value.code == "stage_in_use"
