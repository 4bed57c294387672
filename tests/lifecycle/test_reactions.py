"""The consumers are idempotent, follow merges, and never skip facts that commit late."""

from __future__ import annotations

import sqlalchemy as sa

from clm.customers.merge import merge_customers
from clm.lifecycle.models import CustomerStats, StageHistory
from clm.outbox.models import OutboxCursor, OutboxEvent
from tests.lifecycle.life import day


def _snapshot(db):
    history = db.execute(sa.select(StageHistory.customer_id, StageHistory.to_stage, StageHistory.rule,
                                   StageHistory.changed_at).order_by(StageHistory.id)).all()
    stats = db.execute(sa.select(CustomerStats.customer_id, CustomerStats.orders_count, CustomerStats.revenue,
                                 CustomerStats.median_gap_days, CustomerStats.last_event_at)
                       .order_by(CustomerStats.customer_id)).all()
    return history, stats


def test_handling_every_fact_a_second_time_changes_nothing(life, db):
    life.identify("an", 0)
    life.track("an", "Product Viewed", 1, product_id="tea")
    life.order("an", 2)
    life.order("an", 9)
    life.identify("binh", 3)
    life.react(10)
    before = _snapshot(db)
    db.execute(sa.delete(OutboxCursor))  # forget how far the consumers got
    life.build_consumers()
    assert life.react(10) > 0
    assert _snapshot(db) == before


def test_reacting_with_no_new_facts_records_nothing(life, db):
    life.identify("an", 0)
    life.order("an", 2)
    life.react(2)
    outbox = db.scalar(sa.select(sa.func.count()).select_from(OutboxEvent))
    assert life.react(3) == 0
    assert life.sweep(3) == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(OutboxEvent)) == outbox


def test_a_move_announces_stage_changed_with_the_rule(life, db):
    life.identify("an", 0)
    life.order("an", 2)
    life.react(2)
    payloads = db.scalars(sa.select(OutboxEvent.payload).where(OutboxEvent.topic == "stage.changed")
                          .order_by(OutboxEvent.id)).all()
    assert payloads == [{"customer_id": life.id("an"), "from": None, "to": "conversion", "rule": "first-purchase",
                         "at": day(2).isoformat()}]


def test_merging_two_buyers_keeps_the_winners_stats_right(life, db):
    life.identify("an", 0)
    life.order("an", 0, total=100_000)
    life.identify("an-zalo", 0)
    life.order("an-zalo", 10, total=50_000)
    life.order("an-zalo", 30, total=50_000)
    life.react(30)
    loser = life.id("an-zalo")
    merge_customers(db, life.id("an"), loser, "same person")
    db.commit()
    life.react(31)
    stats = life.stats("an")
    assert (stats.orders_count, stats.revenue, stats.first_order_at, stats.last_order_at) == (3, 200_000, day(0), day(30))
    assert stats.median_gap_days == 15
    assert db.get(CustomerStats, loser) is None
    assert life.stage("an") == "retention"


def test_a_merge_during_ingestion_is_followed(life, db):
    life.send([{"type": "track", "anonymousId": "anon-1", "event": "Order Completed",
                "properties": {"order_id": "A1", "total": 90000}}], 0)
    life.identify("an", 1)
    life.order("an", 5)
    life.react(5)
    life.send([{"type": "identify", "userId": "an", "anonymousId": "anon-1"}], 6)
    life.react(6)
    assert life.stats("an").orders_count == 2
    assert life.stage("an") == "retention"


def test_a_row_committed_late_behind_the_cursor_is_still_handled(life, db):
    life.identify("an", 0)
    life.identify("binh", 0)
    life.react(0)
    # binh's order takes an outbox id first but its transaction commits last: until then it is unseen.
    life.order("binh", 1)
    late = db.scalar(sa.select(sa.func.max(OutboxEvent.id)).where(OutboxEvent.topic == "order.completed"))
    db.execute(sa.update(OutboxEvent).where(OutboxEvent.id == late).values(topic="uncommitted"))
    life.order("an", 1)
    life.react(1)
    assert db.scalar(sa.select(OutboxCursor.last_id).where(OutboxCursor.consumer == "lifecycle.outbox")) > late
    assert life.stats("binh").orders_count == 0
    db.execute(sa.update(OutboxEvent).where(OutboxEvent.id == late).values(topic="order.completed"))
    db.commit()
    life.react(1)
    assert life.stats("binh").orders_count == 1
    assert life.stage("binh") == "conversion"


def test_the_outbox_cursor_passes_rows_of_other_topics_once(life, db):
    life.identify("an", 0)
    life.order("an", 1)
    life.react(1)  # emits stage.changed rows, which this consumer does not read
    life.react(1)
    head = db.scalar(sa.select(sa.func.max(OutboxEvent.id)))
    assert db.scalar(sa.select(OutboxCursor.last_id).where(OutboxCursor.consumer == "lifecycle.outbox")) == head
