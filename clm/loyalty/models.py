"""The loyalty program's tables: settings, the points ledger (entries, lots, lot uses), members' balances,
earning rules, tiers, rewards and redemptions, referrals.

The ledger is append-only: `loyalty_entries` records every change with a key unique per source
document and operation; `loyalty_lots` are the credits with what is left of them; `loyalty_lot_uses`
says which lots each debit took (negative rows: points put back by a cancellation or a refund).
`loyalty_members` holds the current balances, written in the transaction of the entries;
`clm loyalty verify` recomputes them from the ledger.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from clm.db.base import Base, BigId, Json, UTCDateTime
from clm.lib.clock import utcnow

_CUSTOMER_FK = "customers.id"


class Program(Base):
    """The program's settings; one row (id 1). No row: no program, nothing is earned."""

    __tablename__ = "loyalty_programs"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    point_name: Mapped[str] = mapped_column(sa.String(64))
    point_value: Mapped[int] = mapped_column(sa.BigInteger)  # VND (minor units of currency) per point
    currency: Mapped[str] = mapped_column(sa.String(3))
    timezone: Mapped[str] = mapped_column(sa.String(64))  # where quarters, years and birthdays end
    pending_days: Mapped[int] = mapped_column(sa.Integer)  # the return window before order points count
    expiry: Mapped[str] = mapped_column(sa.String(16))  # never | months | quarter_end | year_end
    expiry_months: Mapped[int] = mapped_column(sa.Integer)  # for months; the delay before the quarter/year end
    debt_policy: Mapped[str] = mapped_column(sa.String(8))  # debt | loss: refunds of points already spent
    redeem_share_percent: Mapped[int] = mapped_column(sa.Integer)  # at most this share of an order paid in points
    tier_basis: Mapped[str] = mapped_column(sa.String(8))  # points | spend
    tier_window: Mapped[str] = mapped_column(sa.String(16))  # rolling | calendar_year
    tier_window_months: Mapped[int] = mapped_column(sa.Integer)
    tier_review: Mapped[str] = mapped_column(sa.String(16))  # yearly | after_upgrade
    tier_grace_days: Mapped[int] = mapped_column(sa.Integer)
    tier_downgrade: Mapped[str] = mapped_column(sa.String(16))  # one_step | supported
    referrer_points: Mapped[int] = mapped_column(sa.Integer)
    referred_points: Mapped[int] = mapped_column(sa.Integer)
    referral_url: Mapped[str] = mapped_column(sa.String(500), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Member(Base):
    """A customer's current balances, the sums of their ledger, updated with every entry (under a lock).

    available: spendable now; pending: earned, inside the return window; debt: points reversed after
    they were spent, paid off by later earnings first; qualifying: lifetime tier-qualifying points.
    """

    __tablename__ = "loyalty_members"

    customer_id: Mapped[int] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"), primary_key=True)
    available: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    pending: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    debt: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    qualifying: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    earned: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # lifetime credits
    redeemed: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # net of cancellations
    expired: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    lost: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # reversed after being spent, written off
    tier: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    tier_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tier_review_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    referral_code: Mapped[str | None] = mapped_column(sa.String(32), unique=True)
    # The earliest time something happens to this member by time alone (a lot becomes available or
    # expires): the sweep visits members whose time has come, not every member.
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @classmethod
    def merge_customer(cls, session: Session, winner: int, loser: int) -> int:
        """The loser's balances fold into the winner's (its entries and lots move with the generic merge)."""
        table = cls.__table__
        old = session.execute(sa.select(table).where(table.c.customer_id == loser)).first()
        if old is None:
            return 0
        have = session.execute(sa.select(table).where(table.c.customer_id == winner)).first()
        if have is None:
            session.execute(sa.update(table).where(table.c.customer_id == loser).values(customer_id=winner))
            return 1
        sums = ("available", "pending", "debt", "qualifying", "earned", "redeemed", "expired", "lost")
        values = {c: getattr(have, c) + getattr(old, c) for c in sums}
        dues = [d for d in (have.next_due_at, old.next_due_at) if d is not None]
        values["next_due_at"] = min(dues) if dues else None
        values["updated_at"] = utcnow()
        session.execute(sa.delete(table).where(table.c.customer_id == loser))
        session.execute(sa.update(table).where(table.c.customer_id == winner).values(**values))
        return 1


class Entry(Base):
    """One change to a member's points; never updated. `key` is unique per source document and operation
    (order:17:earn, order:17:refund:88, redemption:5:cancel), so applying the same fact twice is a no-op."""

    __tablename__ = "loyalty_entries"
    __table_args__ = (sa.Index("ix_loyalty_entries_customer_time", "customer_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(160), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # earn release redeem cancel expire reverse adjust repay
    reason: Mapped[str] = mapped_column(sa.String(255))
    source: Mapped[str] = mapped_column(sa.String(16))  # order event staff rule redemption referral system
    source_id: Mapped[str | None] = mapped_column(sa.String(64))
    # Signed changes to each balance; their sums per member are the member row.
    available: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    pending: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    debt: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    qualifying: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    lost: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    spend: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # money counted for spend-based tiers
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Lot(Base):
    """A credit: `points` earned at once, of which `remaining` are left; spendable from `available_at`
    (released=True once the ledger has moved it from pending to available) until `expires_at`."""

    __tablename__ = "loyalty_lots"
    __table_args__ = (
        sa.Index("ix_loyalty_lots_open", "customer_id", "expires_at", "id",
                 sqlite_where=sa.text("remaining > 0"), postgresql_where=sa.text("remaining > 0")),
        # Every lot of a customer, spent ones included (merging two customers moves them all).
        sa.Index("ix_loyalty_lots_customer", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(sa.ForeignKey("loyalty_entries.id", ondelete="CASCADE"), index=True)
    points: Mapped[int] = mapped_column(sa.BigInteger)
    remaining: Mapped[int] = mapped_column(sa.BigInteger)
    released: Mapped[bool] = mapped_column(sa.Boolean)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LotUse(Base):
    """Points a debit entry took from a lot (negative: points a cancellation or refund put back)."""

    __tablename__ = "loyalty_lot_uses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"), index=True)
    entry_id: Mapped[int] = mapped_column(sa.ForeignKey("loyalty_entries.id", ondelete="CASCADE"), index=True)
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("loyalty_lots.id", ondelete="CASCADE"), index=True)
    points: Mapped[int] = mapped_column(sa.BigInteger)
    # On a put-back row: the use it gives back (so a use is never given back twice).
    of_use_id: Mapped[int | None] = mapped_column(sa.ForeignKey("loyalty_lot_uses.id", ondelete="CASCADE"),
                                                  index=True)


class Rule(Base):
    """An earning rule as data: `kind` spend | multiplier | event, its typed `config` (see rules.py), and
    an optional date range (a campaign)."""

    __tablename__ = "loyalty_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    config: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RuleAward(Base):
    """Points one rule gave in one entry: what caps per day, period and customer count against."""

    __tablename__ = "loyalty_rule_awards"
    __table_args__ = (sa.Index("ix_loyalty_rule_awards_cap", "rule_id", "customer_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_id: Mapped[int] = mapped_column(sa.ForeignKey("loyalty_rules.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"), index=True)
    entry_id: Mapped[int] = mapped_column(sa.ForeignKey("loyalty_entries.id", ondelete="CASCADE"), index=True)
    points: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OrderPoints(Base):
    """What an order earned and spent, stored when it completed; refunds reverse shares of these figures."""

    __tablename__ = "loyalty_order_points"

    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"), index=True)
    total: Mapped[int] = mapped_column(sa.BigInteger)  # the order's total when it earned
    earned: Mapped[int] = mapped_column(sa.BigInteger)
    qualifying: Mapped[int] = mapped_column(sa.BigInteger)
    spend: Mapped[int] = mapped_column(sa.BigInteger)
    spent: Mapped[int] = mapped_column(sa.BigInteger)  # points redeemed for vouchers used on this order
    refunded: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # money refunded so far
    reversed: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    reversed_qualifying: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    reversed_spend: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    returned: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # spent points given back
    entry_id: Mapped[int] = mapped_column(sa.ForeignKey("loyalty_entries.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Tier(Base):
    __tablename__ = "loyalty_tiers"

    key: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64))
    rank: Mapped[int] = mapped_column(sa.Integer, unique=True)
    threshold: Mapped[int] = mapped_column(sa.BigInteger)  # qualifying points or spend in the window
    earn_percent: Mapped[int] = mapped_column(sa.Integer, default=100)  # earn multiplier: 150 = x1.5
    benefits: Mapped[str] = mapped_column(sa.Text, default="")


class TierChange(Base):
    __tablename__ = "loyalty_tier_changes"
    __table_args__ = (sa.Index("ix_loyalty_tier_changes_customer", "customer_id", "changed_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"))
    from_tier: Mapped[str | None] = mapped_column(sa.String(32))
    to_tier: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str] = mapped_column(sa.String(16))  # upgrade review join
    measure: Mapped[int] = mapped_column(sa.BigInteger)  # qualifying points or spend at the time
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Reward(Base):
    """A catalogue item: voucher (value VND off), percent (off, up to max_discount), product, gift."""

    __tablename__ = "loyalty_rewards"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    kind: Mapped[str] = mapped_column(sa.String(16))
    points: Mapped[int] = mapped_column(sa.BigInteger)
    value: Mapped[int | None] = mapped_column(sa.BigInteger)
    percent: Mapped[int | None] = mapped_column(sa.Integer)
    max_discount: Mapped[int | None] = mapped_column(sa.BigInteger)
    product_sku: Mapped[str | None] = mapped_column(sa.String(255))
    stock: Mapped[int | None] = mapped_column(sa.Integer)  # None: unlimited
    per_member_limit: Mapped[int | None] = mapped_column(sa.Integer)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voucher_days: Mapped[int] = mapped_column(sa.Integer, default=30)
    tiers: Mapped[list[str]] = mapped_column(Json, default=list)  # empty: every tier
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Redemption(Base):
    """Points exchanged for a reward (or for a discount on a cart: reward_id NULL), with its voucher code."""

    __tablename__ = "loyalty_redemptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"), index=True)
    reward_id: Mapped[int | None] = mapped_column(sa.ForeignKey("loyalty_rewards.id", ondelete="SET NULL"),
                                                  index=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(128), unique=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    points: Mapped[int] = mapped_column(sa.BigInteger)
    entry_id: Mapped[int] = mapped_column(sa.ForeignKey("loyalty_entries.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(sa.String(16))  # issued used cancelled
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # the reward's kind, or "points"
    value: Mapped[int | None] = mapped_column(sa.BigInteger)  # VND off (voucher, points)
    percent: Mapped[int | None] = mapped_column(sa.Integer)
    max_discount: Mapped[int | None] = mapped_column(sa.BigInteger)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    order_ref: Mapped[str | None] = mapped_column(sa.String(255), index=True)  # the order it was used on
    discount: Mapped[int | None] = mapped_column(sa.BigInteger)  # what it took off that order
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Referral(Base):
    """`customer_id` was referred by `referrer_id` with the referrer's code; rewarded once the first order
    of the referred customer passes the return window unrefunded."""

    __tablename__ = "loyalty_referrals"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"), unique=True)
    referrer_id: Mapped[int] = mapped_column(sa.ForeignKey(_CUSTOMER_FK, ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16))  # waiting ordered rewarded rejected
    reason: Mapped[str | None] = mapped_column(sa.String(255))
    order_id: Mapped[int | None] = mapped_column(sa.ForeignKey("orders.id", ondelete="SET NULL"))
    qualifies_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    rewarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @classmethod
    def merge_customers(cls, session: Session, pairs: list[tuple[int, int]]) -> dict[int, int]:
        """A person is referred once: the winner keeps their own referral; the loser's moves only if the
        winner has none. Referrals the loser made move to the winner."""
        table = cls.__table__
        moved: dict[int, int] = {}
        for winner, loser in pairs:
            count = session.execute(sa.update(table).where(table.c.referrer_id == loser)
                                    .values(referrer_id=winner)).rowcount or 0
            has = session.scalar(sa.select(sa.func.count()).select_from(table).where(table.c.customer_id == winner))
            if has:
                session.execute(sa.delete(table).where(table.c.customer_id == loser))
            else:
                count += session.execute(sa.update(table).where(table.c.customer_id == loser)
                                         .values(customer_id=winner)).rowcount or 0
            moved[loser] = count
        return moved


class Audit(Base):
    """What a staff member did to the program from the dashboard: settings, rules, tiers, rewards and manual
    adjustments (who, what, on which record, the values given, when). Append-only."""

    __tablename__ = "loyalty_audit"
    __table_args__ = (sa.Index("ix_loyalty_audit_time", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    user_email: Mapped[str] = mapped_column(sa.String(255))  # kept when the user is deleted
    action: Mapped[str] = mapped_column(sa.String(32))  # program tiers rule reward adjust
    target: Mapped[str | None] = mapped_column(sa.String(64))  # customer:17, rule:3, reward:5
    reason: Mapped[str | None] = mapped_column(sa.String(255))
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
