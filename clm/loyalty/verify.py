"""`clm loyalty verify`: every balance recomputed from the ledger, and every difference listed.

Three independent sums must agree with each member row: the entries' signed changes, the lots' remaining
points (released lots are available, the others pending), and each lot's points less what its uses took.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.loyalty.models import Entry, Lot, LotUse, Member

_BALANCES = ("available", "pending", "debt", "qualifying", "lost")
_REDEEMING = ("redeem", "cancel", "return")


@dataclass(frozen=True)
class Difference:
    customer_id: int
    what: str  # the balance or check, e.g. "available", "lot 17 remaining"
    stored: int
    computed: int

    def __str__(self) -> str:
        return f"customer {self.customer_id}: {self.what} is {self.stored}, the ledger says {self.computed}"


def verify(session: Session, customer_ids: list[int] | None = None) -> list[Difference]:
    """Every difference between the stored balances and the ledger (none, ever, when all is well)."""
    def only(query, column):
        return query.where(column.in_(customer_ids)) if customer_ids is not None else query

    e = Entry.__table__
    computed: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    spent = sa.case((e.c.kind.in_(_REDEEMING), -(e.c.available + e.c.pending)), else_=0)
    gone = sa.case((e.c.kind == "expire", -(e.c.available + e.c.pending)), else_=0)
    query = sa.select(e.c.customer_id, *(sa.func.sum(e.c[b]) for b in _BALANCES), sa.func.sum(spent),
                      sa.func.sum(gone)).group_by(e.c.customer_id)
    for cid, *sums in session.execute(only(query, e.c.customer_id)):
        for name, value in zip((*_BALANCES, "redeemed", "expired"), sums, strict=True):
            computed[cid][name] = int(value or 0)

    lots = Lot.__table__
    by_lots: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    query = sa.select(lots.c.customer_id, lots.c.released, sa.func.sum(lots.c.remaining), sa.func.sum(lots.c.points)
                      ).group_by(lots.c.customer_id, lots.c.released)
    for cid, released, remaining, points in session.execute(only(query, lots.c.customer_id)):
        by_lots[cid]["available" if released else "pending"] += int(remaining or 0)
        computed[cid]["earned"] += int(points or 0)

    out: list[Difference] = []
    uses = LotUse.__table__
    taken = sa.select(uses.c.lot_id, sa.func.sum(uses.c.points).label("taken")).group_by(uses.c.lot_id).subquery()
    query = (sa.select(lots.c.customer_id, lots.c.id, lots.c.points, lots.c.remaining, taken.c.taken)
             .outerjoin(taken, taken.c.lot_id == lots.c.id)
             .where((lots.c.remaining != lots.c.points - sa.func.coalesce(taken.c.taken, 0))
                    | (lots.c.remaining < 0) | (lots.c.remaining > lots.c.points)))
    for cid, lot_id, points, remaining, used in session.execute(only(query, lots.c.customer_id)):
        out.append(Difference(cid, f"lot {lot_id} remaining", remaining, points - int(used or 0)))

    m = Member.__table__
    fields = (*_BALANCES, "earned", "redeemed", "expired")
    stored = {row.customer_id: row for row in session.execute(only(sa.select(m.c.customer_id, *(m.c[f] for f in fields)),
                                                                    m.c.customer_id))}
    for cid in sorted(set(stored) | set(computed) | set(by_lots)):
        row = stored.get(cid)
        for name in fields:
            have = getattr(row, name) if row is not None else 0
            want = computed[cid][name] if cid in computed else 0
            if have != want:
                out.append(Difference(cid, name, have, want))
            if name in ("available", "pending") and have != by_lots[cid][name]:
                out.append(Difference(cid, f"{name} (lots)", have, by_lots[cid][name]))
            if name in ("available", "pending", "debt") and have < 0:
                out.append(Difference(cid, f"{name} below zero", have, 0))
    return out
