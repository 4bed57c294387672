"""When Vietnamese shoppers buy: a multiplier per day and an hour-of-day profile.

The weeks before Tết (the Lunar New Year, from the `holidays` package) are the busiest of the year and
Tết itself the quietest; the double-day sales (11.11, 12.12) and the two women's days (8/3, 20/10)
peak too; weekends are a little busier than weekdays.
"""

from __future__ import annotations

from datetime import date, timedelta

import holidays
import numpy as np

# Share of online orders by local hour (Asia/Ho_Chi_Minh): lunch break and the evening peak.
HOUR_WEIGHTS = np.array([1.5, 0.8, 0.4, 0.2, 0.2, 0.4, 1.0, 2.0, 3.0, 3.5, 4.0, 5.0,
                         5.5, 4.5, 3.5, 3.5, 3.8, 4.0, 4.5, 5.5, 7.0, 7.5, 6.5, 3.5])
HOUR_CDF = np.cumsum(HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
# Walk-in customers come while the shop is open, 9:00-21:00.
STORE_HOURS = np.array([0.0] * 9 + [2, 3, 4, 4, 3, 3, 3, 4, 5, 6, 6, 4] + [0.0] * 3)
STORE_CDF = np.cumsum(STORE_HOURS / STORE_HOURS.sum())


def tet_days(years: range) -> list[date]:
    """The first day of the Lunar New Year in each of `years`."""
    vn = holidays.country_holidays("VN", years=list(years), language="en_US")
    return sorted(d for d, name in vn.items() if name == "Lunar New Year")


def daily_multipliers(start: date, days: int) -> np.ndarray:
    """How busy each day from `start` is, relative to an ordinary weekday (1.0)."""
    day = np.array([start + timedelta(days=k) for k in range(days)])
    m = np.ones(days)
    m[np.array([d.weekday() >= 5 for d in day])] *= 1.15
    index = {d: k for k, d in enumerate(day)}

    def bump(d: date, factor: float) -> None:
        if d in index:
            m[index[d]] *= factor

    for tet in tet_days(range(start.year - 1, start.year + days // 365 + 2)):
        for k in range(1, 22):  # shopping for Tết builds up over three weeks
            bump(tet - timedelta(days=k), 1.0 + 0.9 * (22 - k) / 21)
        for k in range(0, 6):  # shops close, people are with family
            bump(tet + timedelta(days=k), 0.35)
    for year in range(start.year, start.year + days // 365 + 2):
        for month, dom, factor in ((11, 11, 2.6), (12, 12, 2.2), (3, 8, 1.5), (10, 20, 1.5), (9, 9, 1.6)):
            special = date(year, month, dom)
            bump(special, factor)
            bump(special - timedelta(days=1), 1.3)
            bump(special + timedelta(days=1), 1.2)
    return m
