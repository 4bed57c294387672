"""Segment sizes per day: the sweep records today's size of every segment, a segment seen for the first
time gets its last 30 days from the membership history, and the page's chart reads the records."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clm.customers.models import Customer
from clm.segments import consumers, service, sizes
from clm.segments.models import Segment, SegmentMember, SegmentSize
from tests.dashboard.conftest import as_role, browser, cheap_hashing, token_of, user_factory  # noqa: F401

TZ = "Asia/Ho_Chi_Minh"
NOW = datetime(2025, 6, 15, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội
STAYS = st.lists(st.tuples(st.integers(0, 40 * 24), st.one_of(st.none(), st.integers(1, 40 * 24))), max_size=25)


def _counted_at(db, segment_id: int, at: datetime) -> int:
    """Members at an instant, counted from the membership history (what the chart used to do per day)."""
    m = SegmentMember
    return db.scalar(sa.select(sa.func.count()).where(
        m.segment_id == segment_id, m.entered_at <= at, sa.or_(m.exited_at.is_(None), m.exited_at > at)))


def _list_with_history(db, stays: list[tuple[int, int | None]]) -> Segment:
    """A static list whose stays entered `hours` ago and (maybe) left some hours later."""
    segment = Segment(name="history", kind="static", size=0, depends_on=[], created_at=NOW - timedelta(days=60),
                      updated_at=NOW)
    db.add(segment)
    people = [Customer(full_name=f"K{i}") for i in range(len(stays))]
    db.add_all(people)
    db.flush()
    current = 0
    for person, (ago, stay) in zip(people, stays, strict=True):
        entered = NOW - timedelta(hours=ago)
        exited = entered + timedelta(hours=stay) if stay is not None and stay < ago else None
        current += exited is None
        db.add(SegmentMember(segment_id=segment.id, customer_id=person.id, entered_at=entered, exited_at=exited))
    segment.size = current
    db.flush()
    return segment


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(STAYS)
def test_a_segments_first_record_rebuilds_each_day_from_the_membership_history(db, stays):
    segment = _list_with_history(db, stays)
    sizes.record_sizes(db, NOW, TZ, [segment.id])
    recorded = dict(db.execute(sa.select(SegmentSize.day, SegmentSize.members)
                               .where(SegmentSize.segment_id == segment.id)).all())
    today = NOW.astimezone(ZoneInfo(TZ)).date()
    assert sorted(recorded) == [today - timedelta(days=k) for k in range(29, -1, -1)]
    for day, members in recorded.items():
        end = min(NOW, sizes._day_end(day, TZ))
        assert members == _counted_at(db, segment.id, end), day
    db.rollback()


def test_the_sweep_records_every_segment_today_and_the_chart_reads_the_records(db, app, as_role):  # noqa: F811
    app.state.dashboard_clock = lambda: NOW
    db.add_all([Customer(full_name="An", city="Huế"), Customer(full_name="Bình", city="Huế")])
    db.flush()
    hue = service.save_segment(db, name="Huế", rules={"type": "profile", "field": "city", "op": "eq", "value": "Huế"},
                               now=NOW - timedelta(days=3), timezone=TZ)
    today = NOW.astimezone(ZoneInfo(TZ)).date()
    db.add(SegmentSize(segment_id=hue.id, day=today - timedelta(days=2), members=7))  # as a sweep recorded it
    db.flush()
    consumers.sweep(db, NOW, TZ)
    assert db.get(SegmentSize, (hue.id, today)).members == 2
    db.commit()
    page = as_role("sales").get(f"/segments/{hue.id}")
    values = json.loads(re.search(r'id="chart-data">(.*?)</script>', page.text, re.S)[1])["size"]["values"]
    assert len(values) == 30
    # nothing before the segment existed; its first day, a recorded 7 carried over a day without a record, today
    assert values == [None] * 26 + [2, 7, 7, 2]
