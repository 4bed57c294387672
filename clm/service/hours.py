"""Business hours: adding working time to an instant, and counting the working time between two.

The week is a set of intervals per weekday in the business's time zone ("08:00-12:00, 13:30-17:30"),
minus public holidays (the `holidays` library: Vietnam's include Tết and the substituted days off)
and days the business closes. Arithmetic walks open intervals day by day in local time, so daylight
saving changes (none in Vietnam, some elsewhere) move nothing; results are returned in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

from clm.lib.errors import FieldError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
MAX_DAYS = 3 * 366  # a target that finds no open time within three years is a configuration error


def _minutes(text: str, where: str) -> int:
    if not isinstance(text, str) or not _CLOCK.match(text):
        raise FieldError(where, f"{text!r} is not a time of day; write HH:MM (00:00-24:00)")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def parse_hours(hours: dict) -> dict[int, tuple[tuple[int, int], ...]]:
    """{"mon": [["08:00", "17:00"]], ...} as minutes of the day per weekday (0 = Monday), checked:
    each interval starts before it ends, and a day's intervals do not overlap."""
    if not isinstance(hours, dict):
        raise FieldError("hours", "must map weekdays (mon..sun) to lists of [start, end] times")
    out: dict[int, tuple[tuple[int, int], ...]] = {}
    for key, intervals in hours.items():
        if key not in DAYS:
            raise FieldError(f"hours.{key}", f"is not a weekday; use {', '.join(DAYS)}")
        if not isinstance(intervals, list):
            raise FieldError(f"hours.{key}", "must be a list of [start, end] pairs")
        spans = []
        for i, pair in enumerate(intervals):
            where = f"hours.{key}[{i}]"
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise FieldError(where, "must be a [start, end] pair such as [\"08:00\", \"17:00\"]")
            start, end = _minutes(pair[0], where), _minutes(pair[1], where)
            if start >= end:
                raise FieldError(where, f"starts at {pair[0]}, which is not before its end {pair[1]}")
            spans.append((start, end))
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            if start < end:
                raise FieldError(f"hours.{key}", "has overlapping intervals")
        if spans:
            out[DAYS.index(key)] = tuple(spans)
    return out


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldError("timezone", f"{name!r} is not a time zone; use an IANA name such as Asia/Ho_Chi_Minh") from None


@cache
def _public_holidays(country: str, year: int) -> dict[date, str]:
    return dict(holidays_lib.country_holidays(country, years=year))


@dataclass(frozen=True)
class BusinessHours:
    """A week of open intervals (minutes of the day per weekday), a time zone and closed days."""

    week: dict[int, tuple[tuple[int, int], ...]]
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Ho_Chi_Minh"))
    country: str | None = "VN"
    closed: frozenset[date] = frozenset()

    @classmethod
    def of(cls, hours: dict, timezone: str = "Asia/Ho_Chi_Minh", country: str | None = "VN",
           closed_days: list[str] | None = None) -> BusinessHours:
        days = set()
        for i, text in enumerate(closed_days or []):
            try:
                days.add(date.fromisoformat(text))
            except (TypeError, ValueError):
                raise FieldError(f"closed_days[{i}]", f"{text!r} is not a date (YYYY-MM-DD)") from None
        if country:
            try:
                _public_holidays(country, 2025)
            except NotImplementedError:
                raise FieldError("holiday_country", f"no public holidays are known for {country!r}") from None
        return cls(parse_hours(hours), zone(timezone), country, frozenset(days))

    def closed_reason(self, day: date) -> str | None:
        """Why an otherwise working day is closed: the holiday's name, or "closed by the business"."""
        if day in self.closed:
            return "closed by the business"
        if self.country:
            return _public_holidays(self.country, day.year).get(day)
        return None

    def intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The day's open intervals as aware UTC datetimes (none on holidays and closed days)."""
        spans = self.week.get(day.weekday(), ())
        if not spans or self.closed_reason(day) is not None:
            return ()
        midnight = datetime.combine(day, time(0), self.tz)
        return tuple(((midnight + timedelta(minutes=s)).astimezone(UTC),
                      (midnight + timedelta(minutes=e)).astimezone(UTC)) for s, e in spans)

    def _days_from(self, moment: datetime):
        day = moment.astimezone(self.tz).date()
        for n in range(MAX_DAYS):
            yield day + timedelta(days=n)

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The instant when `amount` of open time has passed since `start` (UTC).

        A target that ends exactly when an interval closes is due at the close, not the next opening.
        """
        if amount < timedelta(0):
            raise ValueError("amount must not be negative")
        start = start.astimezone(UTC)
        left = amount
        for day in self._days_from(start):
            for open_at, close_at in self.intervals(day):
                if close_at <= start:
                    continue
                begin = max(open_at, start)
                if left <= close_at - begin:
                    return begin + left
                left -= close_at - begin
        raise FieldError("hours", "the calendar has no open time in the next three years")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Open time from `start` to `end` (zero when end is not after start)."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        total = timedelta(0)
        if end <= start:
            return total
        for day in self._days_from(start):
            if datetime.combine(day, time(0), self.tz).astimezone(UTC) >= end:
                break
            for open_at, close_at in self.intervals(day):
                lo, hi = max(open_at, start), min(close_at, end)
                if hi > lo:
                    total += hi - lo
        return total

    def is_open(self, moment: datetime) -> bool:
        moment = moment.astimezone(UTC)
        return any(a <= moment < b for a, b in self.intervals(moment.astimezone(self.tz).date()))

    def closed_days_between(self, start: datetime, end: datetime) -> list[tuple[date, str]]:
        """Working weekdays skipped between two instants because of a holiday or an added day off."""
        out = []
        for day in self._days_from(start):
            if datetime.combine(day, time(0), self.tz).astimezone(UTC) > end:
                break
            if self.week.get(day.weekday()):
                reason = self.closed_reason(day)
                if reason:
                    out.append((day, reason))
        return out
