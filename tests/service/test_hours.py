"""Business hours: the deadline arithmetic SLAs rely on, across weekends, Vietnamese holidays and added days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clm.lib.errors import FieldError
from clm.service.hours import BusinessHours

VN = ZoneInfo("Asia/Ho_Chi_Minh")
WEEKDAYS_8_TO_5 = {d: [["08:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def local(*args) -> datetime:
    return datetime(*args, tzinfo=VN)


def test_two_hours_from_friday_four_pm_are_due_at_nine_on_monday():
    hours = BusinessHours.of(WEEKDAYS_8_TO_5, country=None)
    assert hours.add(local(2025, 3, 7, 16, 0), timedelta(hours=2)) == local(2025, 3, 10, 9, 0)


def test_two_hours_from_friday_four_pm_are_due_on_tuesday_when_monday_is_a_public_holiday():
    hours = BusinessHours.of(WEEKDAYS_8_TO_5, country="VN")
    # Monday 27 April 2026 is the observed Hung Kings' Commemoration Day.
    assert hours.add(local(2026, 4, 24, 16, 0), timedelta(hours=2)) == local(2026, 4, 28, 9, 0)


def test_two_hours_from_friday_four_pm_are_due_on_tuesday_when_the_business_closes_monday():
    hours = BusinessHours.of(WEEKDAYS_8_TO_5, country=None, closed_days=["2025-03-10"])
    due = hours.add(local(2025, 3, 7, 16, 0), timedelta(hours=2))
    assert due == local(2025, 3, 11, 9, 0)
    assert hours.closed_days_between(local(2025, 3, 7, 16, 0), due)[0][1] == "closed by the business"


def test_tet_holidays_are_skipped():
    hours = BusinessHours.of(WEEKDAYS_8_TO_5, country="VN")
    # Tết 2026: Monday 16 to Friday 20 February are public holidays.
    assert hours.add(local(2026, 2, 13, 16, 0), timedelta(hours=2)) == local(2026, 2, 23, 9, 0)
    reasons = [r for _, r in hours.closed_days_between(local(2026, 2, 13, 16, 0), local(2026, 2, 23, 9, 0))]
    assert len(reasons) == 5 and any("Lunar New Year" in r for r in reasons)


def test_a_target_ending_at_closing_time_is_due_at_closing_time():
    hours = BusinessHours.of(WEEKDAYS_8_TO_5, country=None)
    assert hours.add(local(2025, 3, 7, 16, 0), timedelta(hours=1)) == local(2025, 3, 7, 17, 0)


def test_several_intervals_a_day_leave_the_lunch_break_out():
    hours = BusinessHours.of({"mon": [["08:00", "12:00"], ["13:30", "17:30"]]}, country=None)
    assert hours.add(local(2025, 3, 10, 11, 0), timedelta(hours=2)) == local(2025, 3, 10, 14, 30)
    assert hours.between(local(2025, 3, 10, 11, 0), local(2025, 3, 10, 14, 30)) == timedelta(hours=2)


@pytest.mark.parametrize(("hours", "field"), [
    ({"monday": [["08:00", "17:00"]]}, "hours.monday"),
    ({"mon": [["17:00", "08:00"]]}, "hours.mon[0]"),
    ({"mon": [["8am", "17:00"]]}, "hours.mon[0]"),
    ({"mon": [["08:00", "12:00"], ["11:00", "17:00"]]}, "hours.mon"),
])
def test_bad_hours_are_refused_naming_the_field(hours, field):
    with pytest.raises(FieldError) as err:
        BusinessHours.of(hours)
    assert err.value.field == field


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(FieldError) as err:
        BusinessHours.of(WEEKDAYS_8_TO_5, "Mars/Olympus")
    assert err.value.field == "timezone"


_week = st.dictionaries(
    st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
    st.lists(st.tuples(st.integers(0, 23), st.integers(1, 6)), min_size=1, max_size=3),
    min_size=1,
)


def _hours(week) -> BusinessHours:
    spec = {}
    for day, spans in week.items():
        taken, out = 0, []
        for start, length in sorted(spans):
            start = max(start, taken)
            end = min(start + length, 24)
            if start < end:
                out.append([f"{start:02d}:00", "24:00" if end == 24 else f"{end:02d}:00"])
                taken = end
        if out:
            spec[day] = out
    return BusinessHours.of(spec or {"mon": [["08:00", "17:00"]]}, country="VN")


_instants = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC))


@settings(max_examples=60, deadline=None)
@given(week=_week, start=_instants, minutes=st.integers(0, 5000))
def test_the_open_time_between_a_start_and_its_deadline_is_the_target(week, start, minutes):
    hours = _hours(week)
    due = hours.add(start, timedelta(minutes=minutes))
    assert due >= start
    assert hours.between(start, due) == timedelta(minutes=minutes)


@settings(max_examples=60, deadline=None)
@given(week=_week, start=_instants, a=st.integers(0, 3000), b=st.integers(0, 3000))
def test_adding_in_two_steps_lands_where_adding_at_once_does(week, start, a, b):
    hours = _hours(week)
    once = hours.add(start, timedelta(minutes=a + b))
    assert hours.add(hours.add(start, timedelta(minutes=a)), timedelta(minutes=b)) == once


@settings(max_examples=60, deadline=None)
@given(week=_week, start=_instants, minutes=st.integers(1, 3000))
def test_a_deadline_falls_inside_open_time_or_at_its_close(week, start, minutes):
    hours = _hours(week)
    due = hours.add(start, timedelta(minutes=minutes))
    just_before = due - timedelta(seconds=1)
    assert hours.is_open(just_before)
