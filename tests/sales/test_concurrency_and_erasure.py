"""Codes stay unique under concurrent captures (PostgreSQL, real threads); one person submitting twice at
once gets one lead; erasure and merges carry every sales row."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from clm.customers.merge import merge_customers
from clm.customers.models import Customer
from clm.customers.service import delete_customer
from clm.db.engine import for_writing, make_engine, make_session_factory
from clm.sales.activities import ActivityIn, log_activity
from clm.sales.leads import LeadIn, capture_lead
from clm.sales.models import Activity, Lead, Opportunity, OpportunityStageChange, Task
from clm.sales.opportunities import DealIn, convert_lead, win
from clm.sales.tasks import TaskIn, create_task
from tests.conftest import POSTGRES_URL
from tests.customers.shop import T0


def run_at_once(count: int, work) -> list:
    barrier, results = threading.Barrier(count), []

    def one(n: int) -> None:
        barrier.wait()
        results.append(work(n))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.skipif(not POSTGRES_URL, reason="CLM_TEST_POSTGRES_URL is not set")
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_concurrent_captures_get_distinct_codes_and_one_lead_per_person(engine, many_connections):
    wide = make_engine(POSTGRES_URL, pool_size=25, max_overflow=0)
    factory = make_session_factory(wide)

    def capture(n: int) -> str:
        with factory() as session:
            for_writing(session)
            phone = f"0915{n:06d}" if n < 16 else "0915999999"  # the last four are one person
            lead = capture_lead(session, LeadIn(phone=phone, source="web_form"), score=False).lead
            session.commit()
            return lead.code

    try:
        codes = run_at_once(20, capture)
        assert len(codes) == 20
        with factory() as session:
            stored = session.scalars(sa.select(Lead.code)).all()
            assert len(stored) == len(set(stored)) == 17
            assert sorted(set(codes)) == sorted(stored)
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM customers"))
            conn.execute(sa.text("DELETE FROM code_sequences"))
            conn.execute(sa.text("DELETE FROM outbox"))
            conn.execute(sa.text("DELETE FROM jobs"))  # the leads' first-contact checks
        wide.dispose()


def test_erasing_a_customer_removes_their_leads_deals_orders_activities_and_tasks(db):
    lead = capture_lead(db, LeadIn(phone="0915000111")).lead
    opportunity = convert_lead(db, lead.id, DealIn(value=2_000_000))
    win(db, opportunity.id)
    log_activity(db, ActivityIn(kind="call", subject="gọi", opportunity_id=opportunity.id))
    create_task(db, TaskIn(subject="giao hàng", due_at=T0, opportunity_id=opportunity.id))
    deleted = delete_customer(db, lead.customer_id)
    assert {"leads", "opportunities", "activities", "tasks", "orders", "opportunity_stage_changes"} <= set(deleted)
    for model in (Lead, Opportunity, Activity, Task, OpportunityStageChange):
        assert db.scalar(sa.select(sa.func.count()).select_from(model)) == 0


def test_a_merge_moves_the_losers_leads_and_deals_to_the_winner(db):
    first = capture_lead(db, LeadIn(phone="0915000222")).lead
    second = capture_lead(db, LeadIn(email="same-person@example.vn")).lead
    convert_lead(db, second.id)
    winner, loser = first.customer_id, second.customer_id
    merge_customers(db, winner, loser, "staff")
    db.expire_all()  # the merge moves rows with bulk statements
    assert {lead.customer_id for lead in db.scalars(sa.select(Lead))} == {winner}
    assert db.scalar(sa.select(Opportunity.customer_id)) == winner
    assert db.get(Customer, loser).merged_into_id == winner
