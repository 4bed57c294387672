"""How customers enter: events with filters, segments entered/left, stage changes, dates, after the last
order, a one-off segment start; and the send-message action through the channels' outbox."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from clm.journeys import service
from clm.journeys.consumers import EventsConsumer, OutboxConsumer, sweep_dates
from clm.journeys.models import JourneyRun
from clm.lifecycle.models import CustomerStats
from clm.outbox.service import emit
from clm.segments import service as segments
from clm.tracking.models import Event
from tests.journeys.conftest import END, graph, run_of, trait, traits_of, wait

TZ = "Asia/Ho_Chi_Minh"
HOLD = wait("w", "end", days=30)


def entered(db, journey_id: int) -> set[int]:
    db.expire_all()
    return set(db.scalars(sa.select(JourneyRun.customer_id).where(JourneyRun.journey_id == journey_id)))


def test_an_event_with_matching_properties_enters_the_customer_once(db, clock, people, live):
    anna, binh = people(2)
    journey = live(graph(HOLD, END, trigger={"type": "event", "event": "Cart Abandoned",
                                             "where": [{"property": "value", "op": "gte", "value": 500000}]}))
    for cid, value in ((anna, 900000), (binh, 100000)):
        db.add(Event(message_id=uuid.uuid4().hex, customer_id=cid, type="track", name="Cart Abandoned",
                     properties={"value": value}, context={}, timestamp=clock.now, received_at=clock.now))
    db.commit()
    consumer = EventsConsumer(lambda: TZ)
    consumer(db, clock.now)
    db.commit()
    consumer(db, clock.now)  # nothing new
    assert entered(db, journey) == {anna}
    assert run_of(db, journey, anna).context == {"event": "Cart Abandoned", "properties": {"value": 900000}}


def test_entering_a_segment_starts_the_journey_and_leaving_it_ends_the_run(db, clock, people, live):
    anna, binh = people(2)
    vip = segments.save_segment(db, name="VIP list", kind="static")
    db.commit()
    journey = live(graph(HOLD, END, trigger={"type": "segment_entered", "segment_id": vip.id},
                         entry={"exit_on_segment_exit": True}))
    segments.change_list(db, vip.id, add=[anna, binh], now=clock.now)
    db.commit()
    consumer = OutboxConsumer(lambda: TZ)
    consumer(db, clock.now)
    db.commit()
    assert entered(db, journey) == {anna, binh}
    segments.change_list(db, vip.id, remove=[binh], now=clock.now)
    db.commit()
    consumer(db, clock.now)
    db.commit()
    assert (run_of(db, journey, binh).status, run_of(db, journey, binh).exit_reason) == ("exited", "left segment")
    assert run_of(db, journey, anna).status == "waiting"


def test_leaving_a_segment_and_a_stage_change_are_triggers(db, clock, people, live):
    anna, binh = people(2)
    lapsed = segments.save_segment(db, name="Lapsed", kind="static")
    db.commit()
    left = live(graph(HOLD, END, trigger={"type": "segment_exited", "segment_id": lapsed.id}), name="left")
    loyal = live(graph(HOLD, END, trigger={"type": "stage_changed", "to": "loyalty"}), name="loyal")
    segments.change_list(db, lapsed.id, add=[anna], now=clock.now)
    segments.change_list(db, lapsed.id, remove=[anna], now=clock.now)
    emit(db, "stage.changed", binh, {"customer_id": binh, "from": "retention", "to": "loyalty"})
    emit(db, "stage.changed", anna, {"customer_id": anna, "from": "lead", "to": "customer"})
    db.commit()
    OutboxConsumer(lambda: TZ)(db, clock.now)
    db.commit()
    assert entered(db, left) == {anna} and entered(db, loyal) == {binh}


def test_birthdays_with_an_offset_enter_once_a_day_including_29_february(db, clock, people, live):
    # NOW is 3 March 2025 (a common year): a greeting 2 days after the birthday goes to those born 1 March,
    # and to those born 29 February (greeted as if on 1 March).
    [first_march] = people(birthday=date(1990, 3, 1))
    [leap] = people(birthday=date(1992, 2, 29))
    [other] = people(birthday=date(1990, 3, 3))
    journey = live(graph(HOLD, END, trigger={"type": "date", "field": "birthday", "offset_days": 2}))
    sweep_dates(db, clock.now, TZ)
    sweep_dates(db, clock.now + timedelta(hours=1), TZ)  # the hourly sweep: the same day, nobody again
    db.commit()
    assert entered(db, journey) == {first_march, leap}
    assert other not in entered(db, journey)


def test_a_date_trait_and_the_first_order_anniversary_fire_on_their_local_day(db, clock, people, live):
    [trial] = people(traits={"trial_ends": "2025-03-06"})
    [iso] = people(traits={"trial_ends": "2025-03-05T20:00:00+00:00"})  # 6 March 03:00 in Vietnam
    [shopper] = people()
    db.add(CustomerStats(customer_id=shopper, orders_count=1, revenue=1, refunded_orders=0,
                         first_order_at=datetime(2023, 3, 2, 18, 0, tzinfo=clock.now.tzinfo),  # 3 March local
                         last_order_at=datetime(2023, 3, 2, 18, 0, tzinfo=clock.now.tzinfo), updated_at=clock.now))
    db.commit()
    ending = live(graph(HOLD, END, trigger={"type": "date", "field": "traits.trial_ends", "offset_days": -3,
                                            "every_year": False}), name="trial")
    anniversary = live(graph(HOLD, END, trigger={"type": "date", "field": "first_order_at"}), name="anniversary")
    sweep_dates(db, clock.now, TZ)
    db.commit()
    assert entered(db, ending) == {trial, iso}
    assert entered(db, anniversary) == {shopper}


def test_n_days_after_the_last_order(db, clock, people, live):
    due, recent = people(2)
    for cid, days in ((due, 30), (recent, 5)):
        at = clock.now - timedelta(days=days)
        db.add(CustomerStats(customer_id=cid, orders_count=1, revenue=1, refunded_orders=0, first_order_at=at,
                             last_order_at=at, updated_at=clock.now))
    db.commit()
    journey = live(graph(HOLD, END, trigger={"type": "days_after_last_order", "days": 30}))
    sweep_dates(db, clock.now, TZ)
    db.commit()
    assert entered(db, journey) == {due}


def test_a_one_off_start_enters_the_whole_segment_when_activated(db, clock, people, drain, live):
    ids = people(5)
    lst = segments.save_segment(db, name="Launch list", kind="static")
    segments.change_list(db, lst.id, add=ids[:4], now=clock.now)
    db.commit()
    journey = live(graph(trait("t", "launch", True), END, trigger={"type": "segment_once", "segment_id": lst.id}))
    drain()
    assert entered(db, journey) == set(ids[:4])
    assert [bool(traits_of(db, c)) for c in ids] == [True, True, True, True, False]


def test_static_segment_and_stage_and_owner_actions(db, clock, people, drain, live):
    from clm.access.users import create_user
    from clm.customers.models import Customer
    from clm.lifecycle.models import StageHistory
    from clm.segments.membership import current_members

    [anna] = people()
    lst = segments.save_segment(db, name="Welcomed", kind="static")
    owner = create_user(db, email="sale@shop.vn", name="Sale", role="sales", password="mat-khau-dai-1")
    db.commit()
    journey = live(graph({"id": "add", "type": "add_to_segment", "segment_id": lst.id, "next": "stage"},
                         {"id": "stage", "type": "set_stage", "stage": "loyalty", "next": "own"},
                         {"id": "own", "type": "assign_owner", "owner_ids": [owner.id], "next": "end"}, END))
    service.trigger(db, journey, anna, None, {})
    db.commit()
    drain()
    db.expire_all()
    assert current_members(db, lst.id) == {anna}
    customer = db.get(Customer, anna)
    assert (customer.lifecycle_stage, customer.owner_id) == ("loyalty", owner.id)
    assert db.scalar(sa.select(StageHistory.rule).where(StageHistory.customer_id == anna)) == f"journey:{journey}"


def test_send_message_queues_one_message_per_step_through_the_channels_outbox(db, clock, people, drain, live):
    from clm.channels.models import Message
    from clm.channels.templates import create_template
    from clm.customers.consent import record_consent

    [anna] = people(email="anna@example.vn")
    record_consent(db, anna, channel="email", purpose="marketing", granted=True, source="test")
    create_template(db, key="welcome", channel="email",
                    variants={"vi": {"subject": "Chào", "text": "Xin chào {{ customer.name }}"}})
    db.commit()
    journey = live(graph({"id": "hi", "type": "send_message", "channel": "email", "template": "welcome",
                          "next": "end"}, END))
    run_id = service.trigger(db, journey, anna, None, {})
    db.commit()
    drain()
    messages = db.scalars(sa.select(Message).where(Message.journey_run_id == run_id)).all()
    assert len(messages) == 1
    assert (messages[0].journey_id, messages[0].idempotency_key) == (journey, f"journey:{run_id}:1")
    assert run_of(db, journey, anna).status == "completed"
