"""Everything one member's page shows, read in one place for the customer's own page (clm.loyalty.public)
and the staff's member page: balances as of now, points expiring soon by date, the tier and the progress
bar to the next one, the history, the rewards they can redeem now and their referral link."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from clm.customers.models import Customer
from clm.loyalty import ledger, referrals, rewards, tiers
from clm.loyalty.models import Entry, Member, Program, Reward, Tier, TierChange
from clm.loyalty.program import require_program

EXPIRING_DAYS = 30


@dataclass
class MemberView:
    customer: Customer
    program: Program
    member: Member
    tier: Tier | None
    next_tier: Tier | None
    progress: dict
    percent: int  # of the way from the current tier's threshold to the next one (100: top tier)
    expiring: list[tuple[datetime, int]]
    history: list[Entry]
    rewards: list[Reward]
    referral_code: str
    referral_url: str | None
    tier_history: list[TierChange] = field(default_factory=list)

    @property
    def value(self) -> int:
        return self.member.available * self.program.point_value


def member_view(session: Session, customer_id: int, now: datetime, history: int = 30) -> MemberView:
    """The member as of `now` (lots whose window or expiry passed are settled first: call inside a write
    transaction). Makes the member row and referral code on first visit."""
    customer = session.get(Customer, customer_id)
    if customer is None or customer.merged_into_id is not None:
        from clm.lib.errors import NotFound

        raise NotFound("customer", customer_id)
    program = require_program(session)
    member = ledger.lock_member(session, customer_id, now)
    ledger.settle(session, member, program, now)
    code = referrals.referral_code(session, customer_id, now)
    ladder = tiers.ladder(session)
    progress = tiers.progress(session, program, member, now)
    current = next((t for t in ladder if t.key == member.tier), None)
    upcoming = next((t for t in ladder if t.key == progress["next_tier"]), None)
    return MemberView(
        customer=customer, program=program, member=member, tier=current, next_tier=upcoming, progress=progress,
        percent=bar_percent(current.threshold if current else 0, upcoming.threshold if upcoming else None,
                            progress["measure"]),
        expiring=ledger.expiring(session, customer_id, now, EXPIRING_DAYS),
        history=ledger.history(session, customer_id, limit=history),
        rewards=rewards.redeemable_rewards(session, member, now), referral_code=code,
        referral_url=program.referral_url.replace("{code}", code) if program.referral_url else None,
        tier_history=tiers.tier_history(session, customer_id))


def bar_percent(low: int, high: int | None, value: int) -> int:
    """How far `value` has come from `low` to `high`, 0-100 (100 when there is no higher tier)."""
    if high is None:
        return 100
    if high <= low:
        return 100 if value >= high else 0
    return max(0, min(100, (value - low) * 100 // (high - low)))
