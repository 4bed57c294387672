"""The sales forecast: the weighted pipeline by expected close month, and won/lost by the month closed.

Weighted value = value x the stage's win probability. Open deals without an expected close date are
reported apart ("unscheduled"). Closed deals fall in the business time zone's month of `closed_at`.
Amounts are in minor units of one currency (opportunities in other currencies are left out).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.sales.models import Opportunity, PipelineStage


@dataclass
class Month:
    month: str  # YYYY-MM
    open_count: int = 0
    open_value: int = 0
    weighted_value: int = 0
    won_count: int = 0
    won_value: int = 0
    lost_count: int = 0
    lost_value: int = 0

    @property
    def win_rate(self) -> float | None:
        closed = self.won_count + self.lost_count
        return self.won_count / closed if closed else None


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def forecast(session: Session, *, pipeline_id: int | None = None, owner_id: int | None = None,
             since: date | None = None, until: date | None = None, currency: str = "VND",
             timezone: str = "Asia/Ho_Chi_Minh") -> dict[str, Any]:
    """Months (oldest first) with open, weighted, won and lost figures; `since`/`until` bound the months
    shown (inclusive), not the unscheduled or owner totals."""
    zone = ZoneInfo(timezone)
    where = [Opportunity.currency == currency]
    if pipeline_id is not None:
        where.append(Opportunity.pipeline_id == pipeline_id)
    if owner_id is not None:
        where.append(Opportunity.owner_id == owner_id)
    months: dict[str, Month] = {}
    unscheduled = Month("unscheduled")
    owners: dict[int | None, dict[str, int]] = defaultdict(lambda: {"open_count": 0, "open_value": 0,
                                                                   "weighted_value": 0, "won_value": 0})

    def bucket(key: str) -> Month:
        return months.setdefault(key, Month(key))

    open_rows = session.execute(
        sa.select(Opportunity.expected_close_date, Opportunity.value, PipelineStage.probability, Opportunity.owner_id)
        .join(PipelineStage, PipelineStage.id == Opportunity.stage_id).where(*where, Opportunity.status == "open"))
    for close_date, value, probability, owner in open_rows:
        weighted = value * probability // 100
        row = bucket(_month(close_date)) if close_date is not None else unscheduled
        row.open_count += 1
        row.open_value += value
        row.weighted_value += weighted
        owners[owner]["open_count"] += 1
        owners[owner]["open_value"] += value
        owners[owner]["weighted_value"] += weighted
    closed_rows = session.execute(sa.select(Opportunity.closed_at, Opportunity.status, Opportunity.value,
                                            Opportunity.owner_id)
                                  .where(*where, Opportunity.status.in_(("won", "lost"))))
    for closed_at, status, value, owner in closed_rows:
        row = bucket(_month(_local_day(closed_at, zone)))
        if status == "won":
            row.won_count += 1
            row.won_value += value
            owners[owner]["won_value"] += value
        else:
            row.lost_count += 1
            row.lost_value += value
    shown = [m for key, m in sorted(months.items())
             if (since is None or key >= _month(since)) and (until is None or key <= _month(until))]
    return {
        "currency": currency,
        "months": [{**asdict(m), "win_rate": m.win_rate} for m in shown],
        "unscheduled": {k: v for k, v in asdict(unscheduled).items() if k.startswith(("open_", "weighted"))},
        "owners": [{"owner_id": owner, **figures} for owner, figures in sorted(owners.items(), key=lambda kv: (
            kv[0] is None, kv[0] or 0))],
    }


def _local_day(at: datetime, zone: ZoneInfo) -> date:
    return at.astimezone(zone).date()
