"""Rewards and redemption: a catalogue, quotes for a cart, redemptions with an idempotency key that issue a
single-use voucher code, validation and consumption of a code at checkout, cancellation (the points go
back onto the lots they came from, with their original expiry).

All of it writes through the ledger under the member's lock, so two redemptions of one balance run one
after the other: the second sees what the first left and is refused when it is not enough.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Literal

import orjson
import sqlalchemy as sa
from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session

from clm.lib.errors import FieldError, NotFound
from clm.loyalty import ledger
from clm.loyalty.ledger import LedgerError
from clm.loyalty.models import Entry, Member, Program, Redemption, Reward, Tier

_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 16  # 32^16 = 2^80 codes: guessing one that exists is hopeless
POINTS_VOUCHER_DAYS = 7


class RewardIn(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    kind: Literal["voucher", "percent", "product", "gift"]
    points: int = Field(ge=1, description="What the reward costs, in points.")
    value: int | None = Field(None, ge=1, description="voucher: money off (minor units).")
    percent: int | None = Field(None, ge=1, le=100, description="percent: the share of the order taken off.")
    max_discount: int | None = Field(None, ge=1, description="percent: the most it takes off (minor units).")
    product_sku: str | None = Field(None, max_length=255, description="product: the free product's SKU.")
    stock: int | None = Field(None, ge=0, description="How many are left; null: unlimited.")
    per_member_limit: int | None = Field(None, ge=1, description="How many one member may redeem; null: no limit.")
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    voucher_days: int = Field(30, ge=1, le=3650, description="Days an issued voucher code stays usable.")
    tiers: list[str] = Field(default_factory=list, description="Tier keys that may redeem it; empty: every tier.")
    active: bool = True

    @model_validator(mode="after")
    def _fits_kind(self) -> RewardIn:
        needs = {"voucher": "value", "percent": "percent", "product": "product_sku"}.get(self.kind)
        if needs and getattr(self, needs) is None:
            raise ValueError(f"a {self.kind} reward needs `{needs}`")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


def _aware(value: datetime | None) -> datetime | None:
    from clm.lib.clock import as_utc

    return as_utc(value) if value is not None else None


def save_reward(session: Session, body: RewardIn, reward_id: int | None = None) -> Reward:
    known = set(session.scalars(sa.select(Tier.key)))
    for i, key in enumerate(body.tiers):
        if key not in known:
            raise FieldError(f"tiers[{i}]", f"{key!r} is not a tier; choose from {', '.join(sorted(known)) or 'none'}")
    reward = get_reward(session, reward_id) if reward_id is not None else Reward()
    values = body.model_dump()
    values["valid_from"], values["valid_until"] = _aware(body.valid_from), _aware(body.valid_until)
    for name, value in values.items():
        setattr(reward, name, value)
    if reward_id is None:
        session.add(reward)
    session.flush()
    return reward


def get_reward(session: Session, reward_id: int) -> Reward:
    reward = session.get(Reward, reward_id)
    if reward is None:
        raise NotFound("reward", reward_id)
    return reward


def list_rewards(session: Session, *, active_only: bool = False) -> list[Reward]:
    query = sa.select(Reward).order_by(Reward.points, Reward.id)
    if active_only:
        query = query.where(Reward.active.is_(True))
    return list(session.scalars(query))


def _unavailable(reward: Reward, member: Member, now: datetime) -> str | None:
    """Why `member` cannot redeem `reward` now (None: they can, points aside)."""
    if not reward.active:
        return "the reward is switched off"
    if reward.valid_from and reward.valid_from > now:
        return "the reward is not on offer yet"
    if reward.valid_until and reward.valid_until <= now:
        return "the reward is no longer on offer"
    if reward.tiers and member.tier not in reward.tiers:
        return f"the reward is only for tiers {', '.join(reward.tiers)}"
    if reward.stock is not None and reward.stock <= 0:
        return "the reward is out of stock"
    return None


def redeemable_rewards(session: Session, member: Member, now: datetime) -> list[Reward]:
    """Rewards the member could redeem now with the points they have."""
    return [r for r in list_rewards(session, active_only=True)
            if _unavailable(r, member, now) is None and r.points <= member.available]


def max_points_for(program: Program, cart_total: int) -> int:
    """The most points an order of `cart_total` may be paid with under the program's share cap."""
    if program.point_value <= 0:
        return 0
    return cart_total * program.redeem_share_percent // 100 // program.point_value


def quote(session: Session, program: Program, customer_id: int, cart_total: int, now: datetime) -> dict:
    """How many points this cart may use, the discount they give, and the rewards within reach."""
    if cart_total < 0:
        raise FieldError("cart_total", "must not be negative")
    member = ledger.lock_member(session, customer_id, now)
    ledger.settle(session, member, program, now)
    usable = min(member.available, max_points_for(program, cart_total))
    return {"available": member.available, "max_points": usable, "discount": usable * program.point_value,
            "cap_percent": program.redeem_share_percent, "point_value": program.point_value,
            "currency": program.currency, "rewards": redeemable_rewards(session, member, now)}


def _fingerprint(**request) -> str:
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _new_code(session: Session) -> str:
    while True:
        code = "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))
        if session.scalar(sa.select(Redemption.id).where(Redemption.code == code)) is None:
            return code


def redeem(session: Session, program: Program, customer_id: int, *, idempotency_key: str, now: datetime,
           reward_id: int | None = None, points: int | None = None,
           cart_total: int | None = None) -> tuple[Redemption, bool]:
    """Exchange points for a reward (reward_id) or for money off a cart (points, cart_total); returns the
    redemption and whether it was made now (False: the key was used before and the first result stands)."""
    if not idempotency_key or len(idempotency_key) > 128:
        raise FieldError("idempotency_key", "send an Idempotency-Key of 1 to 128 characters")
    fingerprint = _fingerprint(customer_id=customer_id, reward_id=reward_id, points=points, cart_total=cart_total)
    if (reward_id is None) == (points is None):
        raise FieldError("reward_id", "give either reward_id or points")
    member = ledger.lock_member(session, customer_id, now)
    first = session.scalar(sa.select(Redemption).where(Redemption.idempotency_key == idempotency_key))
    if first is not None:  # read after the lock: a twin request running now has finished
        if first.request_hash != fingerprint:
            raise LedgerError("this Idempotency-Key was used for a different request; use a new key",
                              "idempotency_key_reused", "idempotency_key")
        return first, False
    ledger.settle(session, member, program, now)
    if reward_id is not None:
        query = sa.select(Reward).where(Reward.id == reward_id)
        reward = session.scalar(query)
        if reward is not None and reward.stock is not None and session.get_bind().dialect.name == "postgresql":
            # stock: one redemption at a time takes the last one. Only then: a reward without stock is not
            # locked, or every redemption of it would wait for the one before (all members at once)
            reward = session.scalar(query.with_for_update().execution_options(populate_existing=True))
        if reward is None:
            raise NotFound("reward", reward_id)
        why = _unavailable(reward, member, now)
        if why:
            raise LedgerError(why, "reward_unavailable", "reward_id")
        if reward.per_member_limit is not None:
            had = session.scalar(sa.select(sa.func.count()).select_from(Redemption).where(
                Redemption.customer_id == customer_id, Redemption.reward_id == reward.id,
                Redemption.status != "cancelled"))
            if had >= reward.per_member_limit:
                raise LedgerError(f"the member has redeemed this reward {had} times, its limit", "limit_reached",
                                  "reward_id")
        cost, kind, value, percent, ceiling = reward.points, reward.kind, reward.value, reward.percent, reward.max_discount
        days, reason = reward.voucher_days, f"Reward: {reward.name}"
    else:
        if points is None or points <= 0:
            raise FieldError("points", "must be a positive whole number of points")
        if cart_total is None:
            raise FieldError("cart_total", "is required to pay with points (the share cap applies to it)")
        most = max_points_for(program, cart_total)
        if points > most:
            raise LedgerError(f"at most {most} points may pay for this cart ({program.redeem_share_percent}% of it)",
                              "over_cap", "points")
        reward = None
        cost, kind, value, percent, ceiling = points, "points", points * program.point_value, None, None
        days, reason = POINTS_VOUCHER_DAYS, "Points paid towards an order"
    entry, _ = ledger.debit(session, member, program, key=f"redemption:{idempotency_key}", points=cost,
                            reason=reason, source="redemption", source_id=idempotency_key[:64], now=now)
    if reward is not None and reward.stock is not None:
        reward.stock -= 1
    redemption = Redemption(customer_id=customer_id, reward_id=reward.id if reward else None,
                            idempotency_key=idempotency_key, request_hash=fingerprint, points=cost,
                            entry_id=entry.id, status="issued", code=_new_code(session), kind=kind, value=value,
                            percent=percent, max_discount=ceiling, expires_at=now + timedelta(days=days),
                            created_at=now)
    session.add(redemption)
    session.flush()
    return redemption, True


def get_redemption(session: Session, redemption_id: int) -> Redemption:
    redemption = session.get(Redemption, redemption_id)
    if redemption is None:
        raise NotFound("redemption", redemption_id)
    return redemption


def cancel(session: Session, program: Program, redemption_id: int, now: datetime) -> Redemption:
    """Cancel an unused redemption: its points go back onto the lots they came from. Repeating is harmless."""
    redemption = get_redemption(session, redemption_id)
    member = ledger.lock_member(session, redemption.customer_id, now)
    session.refresh(redemption)
    if redemption.status == "cancelled":
        return redemption
    if redemption.status == "used":
        raise LedgerError("the voucher was used at checkout; refund the order instead", "voucher_used", "code")
    ledger.restore(session, member, program, key=f"redemption:{redemption.id}:cancel",
                   of_entry=session.get(Entry, redemption.entry_id), points=None, kind="cancel",
                   reason="Redemption cancelled", source="redemption", source_id=str(redemption.id), now=now)
    redemption.status, redemption.cancelled_at = "cancelled", now
    if redemption.reward_id is not None:
        session.execute(sa.update(Reward).where(Reward.id == redemption.reward_id, Reward.stock.is_not(None))
                        .values(stock=Reward.stock + 1))
    session.flush()
    return redemption


def discount_for(redemption: Redemption, order_total: int) -> int:
    """What the voucher takes off an order of `order_total` (free products and gifts take nothing off)."""
    if redemption.kind in ("voucher", "points"):
        return min(redemption.value or 0, order_total)
    if redemption.kind == "percent":
        off = order_total * (redemption.percent or 0) // 100
        return min(off, redemption.max_discount) if redemption.max_discount else off
    return 0


def _usable(redemption: Redemption | None, now: datetime, order_ref: str | None = None) -> Redemption:
    if redemption is None:
        raise LedgerError("no voucher has this code", "voucher_unknown", "code")
    if redemption.status == "used" and not (order_ref and redemption.order_ref == order_ref):
        raise LedgerError("the voucher was used already", "voucher_used", "code")
    if redemption.status == "cancelled":
        raise LedgerError("the voucher was cancelled", "voucher_cancelled", "code")
    if redemption.status == "issued" and redemption.expires_at <= now:
        raise LedgerError(f"the voucher expired on {redemption.expires_at:%Y-%m-%d}", "voucher_expired", "code")
    return redemption


def _by_code(session: Session, code: str) -> Redemption | None:
    return session.scalar(sa.select(Redemption).where(Redemption.code == code.strip().upper()))


def validate_code(session: Session, code: str, order_total: int, now: datetime) -> tuple[Redemption, int]:
    """The voucher behind `code` and its discount on `order_total`, or a LedgerError saying why not."""
    redemption = _usable(_by_code(session, code), now)
    if redemption.status == "used":
        raise LedgerError("the voucher was used already", "voucher_used", "code")
    return redemption, discount_for(redemption, order_total)


def consume_code(session: Session, code: str, order_ref: str, order_total: int, now: datetime) -> Redemption:
    """Use the voucher on order `order_ref`, once. Repeating with the same order returns the first result."""
    redemption = _usable(_by_code(session, code), now, order_ref)
    if redemption.status == "used":
        return redemption
    discount = discount_for(redemption, order_total)
    # the conditional UPDATE is the guard: of two checkouts racing with one code, one changes the row
    done = session.execute(sa.update(Redemption).where(
        Redemption.id == redemption.id, Redemption.status == "issued", Redemption.expires_at > now,
    ).values(status="used", used_at=now, order_ref=order_ref, discount=discount)).rowcount
    session.refresh(redemption)
    if not done:
        return _usable(redemption, now, order_ref)
    _count_spent(session, redemption)
    return redemption


def _count_spent(session: Session, redemption: Redemption) -> None:
    """An order that earned before its voucher was consumed learns what was spent on it (for refunds)."""
    from clm.commerce.models import Order
    from clm.loyalty.models import OrderPoints

    order_id = session.scalar(sa.select(Order.id).where(Order.external_id == redemption.order_ref))
    stored = session.get(OrderPoints, order_id) if order_id is not None else None
    if stored is not None:
        stored.spent += redemption.points
        session.flush()
