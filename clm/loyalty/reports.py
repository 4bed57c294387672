"""The program's figures for the staff reports, each one SQL aggregate (no member is read one by one):
points outstanding and their liability, points expiring per month, breakage and redemption rate, members
per tier month by month, and the revenue of members against everyone else.

Months are calendar months in the program's time zone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.commerce.models import Order
from clm.loyalty.models import Lot, Member, Program, TierChange
from clm.loyalty.program import add_months
from clm.loyalty.tiers import ladder


@dataclass(frozen=True)
class Outstanding:
    available: int
    pending: int
    debt: int
    liability: int  # (available + pending) × point value
    members: int
    earned: int
    redeemed: int
    expired: int
    lost: int

    @property
    def breakage(self) -> float | None:
        """The share of points earned that expired unused."""
        return self.expired / self.earned if self.earned else None

    @property
    def redemption_rate(self) -> float | None:
        """The share of points earned that were spent on rewards and discounts."""
        return self.redeemed / self.earned if self.earned else None


def outstanding(session: Session, program: Program) -> Outstanding:
    m = Member.__table__
    row = session.execute(sa.select(
        *(sa.func.coalesce(sa.func.sum(m.c[c]), 0) for c in
          ("available", "pending", "debt", "earned", "redeemed", "expired", "lost")),
        sa.func.count())).one()
    available, pending, debt, earned, redeemed, expired, lost, members = (int(v) for v in row)
    return Outstanding(available=available, pending=pending, debt=debt, members=members, earned=earned,
                       redeemed=redeemed, expired=expired, lost=lost,
                       liability=(available + pending) * program.point_value)


def month_starts(now: datetime, zone: str, before: int, after: int = 0) -> list[datetime]:
    """The first instants (UTC) of the local months from `before` months ago to `after` months ahead."""
    local = now.astimezone(ZoneInfo(zone))
    first = datetime.combine(local.date().replace(day=1), time(0), ZoneInfo(zone))
    return [add_months(first, k).astimezone(UTC) for k in range(-before, after + 1)]


def _label(start: datetime, zone: str) -> str:
    return start.astimezone(ZoneInfo(zone)).strftime("%Y-%m")


def _bucket(column: sa.ColumnElement, starts: list[datetime]) -> sa.ColumnElement:
    """The index of the month (in `starts`, with an extra end) a time column falls in, as a CASE."""
    return sa.case(*((column < starts[k + 1], k) for k in range(len(starts) - 1)), else_=None)


def expiring_by_month(session: Session, program: Program, now: datetime, months: int = 12) -> list[tuple[str, int]]:
    """(month, points) of what is left of lots expiring in each of the next `months` months."""
    starts = month_starts(now, program.timezone, 0, months)
    lots = Lot.__table__
    bucket = _bucket(lots.c.expires_at, starts).label("bucket")
    rows = dict(session.execute(
        sa.select(bucket, sa.func.sum(lots.c.remaining)).where(
            lots.c.remaining > 0, lots.c.expires_at > now, lots.c.expires_at < starts[-1]).group_by(bucket)).all())
    return [(_label(starts[k], program.timezone), int(rows.get(k) or 0)) for k in range(months)]


def members_per_tier(session: Session, program: Program, now: datetime, months: int = 12
                     ) -> tuple[list[str], dict[str, list[int]]]:
    """Month labels and, per tier key, the members in it at the end of each of the last `months` months
    (the current month: now), replayed from the tier history in time order."""
    starts = month_starts(now, program.timezone, months - 1, 1)
    ends = [*starts[1:-1], now]
    labels = [_label(s, program.timezone) for s in starts[:-1]]
    keys = [t.key for t in ladder(session)]
    h = TierChange.__table__
    tier_of: dict[int, str] = {}
    counts: Counter[str] = Counter()
    series = {k: [0] * len(ends) for k in keys}
    k = 0
    query = sa.select(h.c.customer_id, h.c.to_tier, h.c.changed_at).where(h.c.changed_at <= now).order_by(
        h.c.changed_at, h.c.id)
    for customer_id, to_tier, at in session.execute(query.execution_options(yield_per=5000)):
        while k < len(ends) and at > ends[k]:
            _snapshot(series, counts, k, len(ends))
            k += 1
        old = tier_of.get(customer_id)
        if old is not None:
            counts[old] -= 1
        tier_of[customer_id] = to_tier
        counts[to_tier] += 1
    while k < len(ends):
        _snapshot(series, counts, k, len(ends))
        k += 1
    return labels, series


def _snapshot(series: dict[str, list[int]], counts: Counter, k: int, length: int) -> None:
    for key, n in counts.items():
        series.setdefault(key, [0] * length)[k] = n


def revenue_split(session: Session, program: Program, now: datetime, months: int = 12
                  ) -> tuple[list[str], list[int], list[int]]:
    """Month labels, members' revenue and everyone else's: completed orders net of refunds, an order
    counted as a member's when the customer had joined the program before it was placed."""
    starts = month_starts(now, program.timezone, months - 1, 1)
    o, m = Order.__table__, Member.__table__
    bucket = _bucket(o.c.placed_at, starts).label("bucket")
    member = sa.case((m.c.created_at < o.c.placed_at, 1), else_=0).label("member")
    query = (sa.select(bucket, member, sa.func.sum(o.c.total - sa.func.coalesce(o.c.refunded, 0)))
             .select_from(o.outerjoin(m, m.c.customer_id == o.c.customer_id))
             .where(o.c.status != "cancelled", o.c.placed_at >= starts[0], o.c.placed_at < starts[-1])
             .group_by(bucket, member))
    members, others = [0] * months, [0] * months
    for k, is_member, amount in session.execute(query):
        if k is not None:
            (members if is_member else others)[k] += int(amount or 0)
    return [_label(s, program.timezone) for s in starts[:-1]], members, others
