"""Membership follows the facts: new events, profile changes, orders and merges re-check the customers they
concern (only against the segments that read such facts); the sweep handles time; entries and exits
are announced in the outbox; saving rejects cycles."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from clm.customers.merge import merge_customers
from clm.lib.errors import FieldError
from clm.outbox.models import OutboxEvent
from clm.segments import consumers, membership, service
from clm.segments.models import SegmentMember
from clm.worker.loop import Worker
from clm.worker.steps import build_steps
from tests.customers.shop import T0, Shop

SKINCARE_TWICE = {"type": "event", "name": "Article Read", "count": 2, "window": {"last_days": 30},
                  "where": [{"property": "category", "op": "eq", "value": "skincare"}]}
IN_HUE = {"type": "profile", "field": "city", "op": "eq", "value": "Huế"}


@pytest.fixture
def shop(db) -> Shop:
    return Shop(db)


@pytest.fixture
def worker(session_factory, settings) -> Worker:
    return Worker(session_factory, build_steps(settings), poll_seconds=0.01)


def members(db, segment) -> set[int]:
    db.expire_all()
    return membership.current_members(db, segment.id)


def announced(db, topic: str, segment) -> list[int]:
    return list(db.scalars(sa.select(OutboxEvent.customer_id).where(OutboxEvent.topic == topic)
                           .order_by(OutboxEvent.id)
                           .where(OutboxEvent.payload["segment_id"].as_integer() == segment.id)))


def test_a_customer_enters_when_their_events_match_without_a_manual_refresh(db, shop, worker):
    an = shop.customer("An", city="Huế")
    segment = service.save_segment(db, name="Skincare fans", rules=SKINCARE_TWICE, now=T0)
    db.commit()
    shop.track(an, "Article Read", at=timedelta(hours=1), category="skincare")
    worker.run_round(now=T0 + timedelta(hours=2))
    assert members(db, segment) == set()
    shop.track(an, "Article Read", at=timedelta(hours=3), category="skincare")
    worker.run_round(now=T0 + timedelta(hours=4))
    assert members(db, segment) == {an.id}
    assert announced(db, "segment.entered", segment) == [an.id]
    worker.run_round(now=T0 + timedelta(hours=5))
    assert announced(db, "segment.entered", segment) == [an.id]


def test_a_customer_leaves_when_their_profile_changes_and_the_exit_is_announced(db, shop, worker):
    an = shop.customer("An", city="Huế", user_id="an")
    segment = service.save_segment(db, name="Huế", rules=IN_HUE, now=T0)
    db.commit()
    assert members(db, segment) == {an.id}
    shop._ingest([{"type": "identify", "userId": "an", "traits": {"city": "Đà Nẵng"}}], T0 + timedelta(hours=1))
    worker.run_round(now=T0 + timedelta(hours=2))
    assert members(db, segment) == set()
    assert announced(db, "segment.exited", segment) == [an.id]
    stay = db.scalar(sa.select(SegmentMember).where(SegmentMember.customer_id == an.id))
    assert stay.entered_at == T0 and stay.exited_at == T0 + timedelta(hours=2)


def test_an_order_brings_a_customer_into_a_spend_segment(db, shop, worker):
    an = shop.customer("An")
    segment = service.save_segment(db, name="Spent 1M", now=T0,
                                   rules={"type": "orders", "metric": "revenue", "op": "gte", "value": 1_000_000})
    db.commit()
    shop.order(an, 1_200_000, at=timedelta(hours=1), items=[("tea", "Trà sen", 1_200_000, 1)])
    worker.run_round(now=T0 + timedelta(hours=2))
    assert members(db, segment) == {an.id}


def test_only_the_segments_reading_a_kind_of_fact_are_rechecked(db, shop, worker, monkeypatch):
    an = shop.customer("An", city="Huế")
    service.save_segment(db, name="Skincare fans", rules=SKINCARE_TWICE, now=T0)
    service.save_segment(db, name="Huế", rules=IN_HUE, now=T0)
    db.commit()
    worker.run_round(now=T0)
    checked = []
    real = membership.plan_many
    monkeypatch.setattr(membership, "plan_many", lambda s, wanted, *a: checked.extend(
        (seg.name, set(ids)) for seg, ids in wanted) or real(s, wanted, *a))
    shop.track(an, "Video Played", at=timedelta(hours=1))
    worker.run_round(now=T0 + timedelta(hours=2))
    assert checked == []
    shop.track(an, "Article Read", at=timedelta(hours=3), category="tea")
    worker.run_round(now=T0 + timedelta(hours=4))
    assert checked == [("Skincare fans", {an.id})]


def test_the_sweep_moves_customers_whom_time_alone_moves(db, shop, worker):
    an = shop.customer("An")
    segment = service.save_segment(db, name="New this week", now=T0 + timedelta(hours=1),
                                   rules={"type": "profile", "field": "first_seen_at", "op": "within_last_days",
                                          "value": 7})
    db.commit()
    assert members(db, segment) == {an.id}
    assert "time" in segment.depends_on
    assert consumers.sweep(db, T0 + timedelta(days=8)) == 1
    assert members(db, segment) == set()
    assert consumers.sweep(db, T0 + timedelta(days=8)) == 0


def test_refreshing_twice_changes_nothing_the_second_time(db, shop):
    shop.customer("An", city="Huế")
    shop.customer("Bích", city="Huế")
    segment = service.save_segment(db, name="Huế", rules=IN_HUE, now=T0)
    assert segment.size == 2
    assert membership.refresh(db, segment, T0 + timedelta(days=1)) == membership.Change(0, 0)


def test_a_merged_away_customer_leaves_their_segments(db, shop, worker):
    an = shop.customer("An", city="Huế")
    twin = shop.customer("An 2", city="Huế")
    segment = service.save_segment(db, name="Huế", rules=IN_HUE, now=T0)
    db.commit()
    merge_customers(db, an.id, twin.id, "test")
    db.commit()
    worker.run_round(now=T0 + timedelta(hours=1))
    assert members(db, segment) == {an.id}


def test_a_static_list_takes_members_by_hand_and_segments_built_on_it_follow(db, shop):
    an, bich = shop.customer("An", city="Huế"), shop.customer("Bích", city="Huế")
    vip = service.save_segment(db, name="VIP", kind="static", now=T0)
    hue_vips = service.save_segment(db, name="Huế VIPs", now=T0, rules={"all": [
        IN_HUE, {"type": "segment", "segment_id": vip.id}]})
    assert members(db, hue_vips) == set()
    service.change_list(db, vip.id, add=[an.id, 999_999], now=T0)
    assert members(db, vip) == {an.id} and members(db, hue_vips) == {an.id}
    service.change_list(db, vip.id, remove=[an.id], add=[bich.id], now=T0)
    assert members(db, hue_vips) == {bich.id}


def test_a_snapshot_freezes_a_dynamic_segment_into_a_list(db, shop):
    an = shop.customer("An", city="Huế")
    hue = service.save_segment(db, name="Huế", rules=IN_HUE, now=T0)
    frozen = service.snapshot(db, hue.id, "Huế in March", now=T0)
    assert frozen.kind == "static" and members(db, frozen) == {an.id} and frozen.size == 1


def test_saving_a_cycle_is_refused_with_the_path_of_the_reference(db, shop):
    a = service.save_segment(db, name="A", rules=IN_HUE, now=T0)
    b = service.save_segment(db, name="B", rules={"any": [IN_HUE, {"type": "segment", "segment_id": a.id}]}, now=T0)
    with pytest.raises(FieldError) as error:
        service.save_segment(db, segment_id=a.id, name="A", now=T0,
                             rules={"all": [IN_HUE, {"not": {"type": "segment", "segment_id": b.id}}]})
    assert error.value.field == "rules.all[1].not.segment_id" and error.value.code == "cycle"
    with pytest.raises(FieldError) as error:
        service.save_segment(db, segment_id=a.id, name="A", now=T0, rules={"type": "segment", "segment_id": a.id})
    assert error.value.field == "rules.segment_id"


def test_a_segment_used_by_another_cannot_be_deleted(db, shop):
    a = service.save_segment(db, name="A", rules=IN_HUE, now=T0)
    service.save_segment(db, name="B", rules={"type": "segment", "segment_id": a.id}, now=T0)
    with pytest.raises(service.SegmentInUse):
        service.delete_segment(db, a.id)


def test_one_batch_rechecks_many_segments_each_for_its_own_customers_and_a_merged_customer_leaves(db, shop):
    an, binh, chi = shop.customer("An", city="Huế"), shop.customer("Bình", city="Huế"), shop.customer("Chi")
    hue = service.save_segment(db, name="Huế", rules=IN_HUE, now=T0)
    hanoi = service.save_segment(db, name="Hà Nội", rules={**IN_HUE, "value": "Hà Nội"}, now=T0)
    not_hue = service.save_segment(db, name="Not Huế", rules={"not": IN_HUE}, now=T0)
    assert (members(db, hue), members(db, hanoi), members(db, not_hue)) == ({an.id, binh.id}, set(), {chi.id})
    db.execute(sa.update(membership._c).where(membership._c.c.id.in_([an.id, chi.id])).values(city="Hà Nội"))
    db.execute(sa.update(membership._c).where(membership._c.c.id == binh.id).values(merged_into_id=chi.id))
    change = membership.recheck_many(db, [(hue, {an.id, binh.id}), (hanoi, {an.id}), (not_hue, {an.id, chi.id})],
                                     T0 + timedelta(hours=1))
    assert (members(db, hue), members(db, hanoi), members(db, not_hue)) == (set(), {an.id}, {an.id, chi.id})
    assert change == membership.Change(entered=2, exited=2)
    assert sorted(announced(db, "segment.exited", hue)) == sorted([an.id, binh.id])
    db.expire_all()
    assert (hue.size, hanoi.size, not_hue.size) == (0, 1, 2)
    # chi now lives in Hà Nội, but was re-checked only for "Not Huế": "Hà Nội" learns of it from its own facts
    assert chi.id not in members(db, hanoi)


def test_a_plan_applied_after_others_changed_membership_enters_no_one_twice_and_ends_no_stay_twice(db, shop):
    an, binh = shop.customer("An", city="Huế"), shop.customer("Bình", city="Huế")
    hue = service.save_segment(db, name="Huế", rules=IN_HUE, now=T0)  # both are members already
    membership.apply_plan(db, [(hue, set(), {binh.id})], T0 + timedelta(hours=1))  # Bình's stay ends
    # a plan computed before those changes: An enters (but is in), Bình leaves (but has left)
    late = membership.apply_plan(db, [(hue, {an.id}, {binh.id})], T0 + timedelta(hours=2))
    assert late == membership.Change(0, 0)
    assert members(db, hue) == {an.id}
    assert announced(db, "segment.entered", hue) == sorted([an.id, binh.id])  # once each, when saved
    assert announced(db, "segment.exited", hue) == [binh.id]
    assert db.get(type(hue), hue.id).size == 1


def test_a_re_check_on_a_later_day_uses_that_days_window_not_a_kept_one(db, shop):
    an = shop.customer("An", city="Huế")
    shop.track(an, "Video Played", at=timedelta(hours=1))
    recent = service.save_segment(db, name="Watched today", now=T0 + timedelta(hours=2), rules={
        "type": "event", "name": "Video Played", "count": 1, "window": {"last_days": 1}})
    membership.recheck(db, recent, {an.id}, T0 + timedelta(hours=3))  # compiled for this day, kept
    assert members(db, recent) == {an.id}
    membership.recheck(db, recent, {an.id}, T0 + timedelta(days=3))
    assert members(db, recent) == set()
