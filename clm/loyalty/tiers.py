"""Tiers: a ladder of thresholds on qualifying points (or spend) over a window. A member moves up at once
when they reach a threshold; down only at their review date (after an optional grace period), one
step or to the tier their figures support. Every move is kept in `loyalty_tier_changes` and announced
as `loyalty.tier_changed`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from clm.lib.errors import FieldError
from clm.loyalty.models import Entry, Member, Program, Tier, TierChange
from clm.loyalty.program import add_months
from clm.outbox.service import emit

DEFAULT_TIERS = (
    {"key": "member", "name": "Thành viên", "threshold": 0, "earn_percent": 100},
    {"key": "silver", "name": "Bạc", "threshold": 1_000, "earn_percent": 110},
    {"key": "gold", "name": "Vàng", "threshold": 5_000, "earn_percent": 125},
    {"key": "diamond", "name": "Kim cương", "threshold": 20_000, "earn_percent": 150},
)


class TierIn(BaseModel):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="A short stable name: member, silver...")
    name: str = Field(min_length=1, max_length=64)
    threshold: int = Field(ge=0, description="Qualifying points (or spend, by the program's basis) in the window.")
    earn_percent: int = Field(100, ge=0, le=1000, description="Earning multiplier in percent: 150 earns x1.5.")
    benefits: str = Field("", max_length=2000)


def check_ladder(tiers: list[TierIn]) -> None:
    """Thresholds must rise strictly from 0, lowest tier first; keys are unique."""
    if not tiers:
        raise FieldError("tiers", "give at least one tier")
    if tiers[0].threshold != 0:
        raise FieldError("tiers[0].threshold", "the first tier must start at 0, so every member has a tier")
    seen: set[str] = set()
    for i, tier in enumerate(tiers):
        if tier.key in seen:
            raise FieldError(f"tiers[{i}].key", f"{tier.key!r} is used twice")
        seen.add(tier.key)
        if i and tier.threshold <= tiers[i - 1].threshold:
            raise FieldError(f"tiers[{i}].threshold",
                             f"overlaps {tiers[i - 1].name!r}: {tier.name!r} starts at {tier.threshold}, which must "
                             f"be above {tiers[i - 1].threshold} (list tiers from lowest to highest)", "overlap")


def save_tiers(session: Session, tiers: list[TierIn]) -> list[Tier]:
    """Replace the ladder (all or nothing). Members keep their tier until their next evaluation."""
    check_ladder(tiers)
    session.execute(sa.delete(Tier.__table__))
    session.flush()
    rows = [Tier(key=t.key, name=t.name, rank=i, threshold=t.threshold, earn_percent=t.earn_percent,
                 benefits=t.benefits) for i, t in enumerate(tiers)]
    session.add_all(rows)
    session.flush()
    return rows


def ladder(session: Session) -> list[Tier]:
    return list(session.scalars(sa.select(Tier).order_by(Tier.rank)))


def window_start(program: Program, now: datetime) -> datetime:
    if program.tier_window == "calendar_year":
        zone = ZoneInfo(program.timezone)
        return datetime(now.astimezone(zone).year, 1, 1, tzinfo=zone).astimezone(now.tzinfo)
    return add_months(now, -program.tier_window_months)


def measure(session: Session, program: Program, customer_id: int, now: datetime) -> int:
    """The member's qualifying points (or spend) in the program's window ending `now`."""
    column = Entry.spend if program.tier_basis == "spend" else Entry.qualifying
    return int(session.scalar(sa.select(sa.func.coalesce(sa.func.sum(column), 0)).where(
        Entry.customer_id == customer_id, Entry.created_at > window_start(program, now), Entry.created_at <= now)))


def supported(tiers: list[Tier], value: int) -> Tier:
    """The highest tier whose threshold `value` reaches."""
    best = tiers[0]
    for tier in tiers:
        if value >= tier.threshold:
            best = tier
    return best


def next_review(program: Program, since: datetime) -> datetime:
    if program.tier_review == "yearly":
        zone = ZoneInfo(program.timezone)
        return datetime(since.astimezone(zone).year + 1, 1, 1, tzinfo=zone).astimezone(since.tzinfo)
    return add_months(since, 12)


def _move(session: Session, program: Program, member: Member, tier: Tier, reason: str, value: int,
          now: datetime) -> TierChange:
    change = TierChange(customer_id=member.customer_id, from_tier=member.tier, to_tier=tier.key, reason=reason,
                        measure=value, changed_at=now)
    session.add(change)
    member.tier = tier.key
    member.tier_since = now
    member.tier_review_at = next_review(program, now)
    emit(session, "loyalty.tier_changed", member.customer_id,
         {"from": change.from_tier, "to": tier.key, "reason": reason, "measure": value})
    return change


def evaluate(session: Session, program: Program, member: Member, now: datetime,
             tiers: list[Tier] | None = None) -> TierChange | None:
    """Upgrade `member` at once when their figures reach a higher tier (or give a new member theirs)."""
    tiers = tiers if tiers is not None else ladder(session)
    if not tiers:
        return None
    value = measure(session, program, member.customer_id, now)
    target = supported(tiers, value)
    ranks = {t.key: t.rank for t in tiers}
    current = ranks.get(member.tier) if member.tier else None
    if current is None:
        return _move(session, program, member, target, "join", value, now)
    if target.rank > current:
        return _move(session, program, member, target, "upgrade", value, now)
    return None


def review(session: Session, program: Program, member: Member, now: datetime,
           tiers: list[Tier] | None = None) -> TierChange | None:
    """At the review date (plus grace): stay when the figures still support the tier, else step down."""
    tiers = tiers if tiers is not None else ladder(session)
    if not tiers or member.tier_review_at is None or member.tier_review_at + timedelta(
            days=program.tier_grace_days) > now:
        return None
    value = measure(session, program, member.customer_id, now)
    target = supported(tiers, value)
    ranks = {t.key: t.rank for t in tiers}
    current = ranks.get(member.tier, 0)
    if target.rank >= current:
        member.tier_review_at = next_review(program, member.tier_review_at)
        while member.tier_review_at <= now:  # a long-idle sweep: the next date still ahead
            member.tier_review_at = next_review(program, member.tier_review_at)
        return evaluate(session, program, member, now, tiers)
    if program.tier_downgrade == "one_step":
        target = tiers[max(current - 1, target.rank)]
    return _move(session, program, member, target, "review", value, now)


def review_due(session: Session, program: Program, now: datetime, on_chunk: Callable[[], None] | None = None,
               chunk: int = 500) -> int:
    """Review every member whose review date (plus grace) has come; returns how many were reviewed."""
    from clm.loyalty.ledger import lock_member

    tiers = ladder(session)
    if not tiers:
        return 0
    cutoff = now - timedelta(days=program.tier_grace_days)
    done, after = 0, 0
    while ids := list(session.scalars(sa.select(Member.customer_id).where(
            Member.tier_review_at <= cutoff, Member.customer_id > after).order_by(Member.customer_id).limit(chunk))):
        for customer_id in ids:
            review(session, program, lock_member(session, customer_id, now), now, tiers)
        after = ids[-1]
        done += len(ids)
        if on_chunk:
            on_chunk()
    return done


def tier_history(session: Session, customer_id: int) -> list[TierChange]:
    return list(session.scalars(sa.select(TierChange).where(TierChange.customer_id == customer_id)
                                .order_by(TierChange.changed_at, TierChange.id)))


def progress(session: Session, program: Program, member: Member, now: datetime) -> dict:
    """Where the member stands: their figure, their tier, the next tier and what is missing to reach it."""
    tiers = ladder(session)
    value = measure(session, program, member.customer_id, now)
    current = next((t for t in tiers if t.key == member.tier), None)
    higher = [t for t in tiers if current is None or t.rank > current.rank]
    nxt = higher[0] if higher else None
    return {"measure": value, "basis": program.tier_basis, "tier": member.tier,
            "next_tier": nxt.key if nxt else None, "next_threshold": nxt.threshold if nxt else None,
            "missing": max(nxt.threshold - value, 0) if nxt else 0, "review_at": member.tier_review_at}
