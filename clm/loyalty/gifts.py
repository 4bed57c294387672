"""Vouchers given, not bought: a reward's single-use code issued to one customer without spending points
(a journey's birthday gift, a win-back offer).

A gift is a redemption of 0 points with its own code (the same unguessable 16 characters, consumed once
at checkout through `rewards.consume_code`) and a ledger entry of kind `gift` that changes no balance,
so the member's history shows it. The idempotency key makes a repeat return the first voucher.

Which rewards may be given: the catalogue's `active` switch governs exchanging points, not giving, so a
gift-only reward is a reward switched off (members cannot buy it; journeys still give it). Its dates and
its stock apply; tiers and the per-member limit do not (the journey decides who gets it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.lib.errors import NotFound
from clm.loyalty import ledger
from clm.loyalty.ledger import LedgerError
from clm.loyalty.models import Entry, Redemption, Reward
from clm.loyalty.rewards import _fingerprint, _new_code


def why_not_given(reward: Reward, now: datetime) -> str | None:
    """Why `reward` cannot be given now (None: it can)."""
    if reward.valid_from and reward.valid_from > now:
        return f"reward {reward.name!r} is not on offer before {reward.valid_from:%Y-%m-%d}"
    if reward.valid_until and reward.valid_until <= now:
        return f"reward {reward.name!r} is no longer on offer (until {reward.valid_until:%Y-%m-%d})"
    if reward.stock is not None and reward.stock <= 0:
        return f"reward {reward.name!r} is out of stock"
    return None


def give(session: Session, customer_id: int, reward_id: int, *, idempotency_key: str, now: datetime,
         source: str = "journey") -> tuple[Redemption, bool]:
    """Issue `reward_id`'s voucher to the customer for free; returns (redemption, made now). A repeat of
    `idempotency_key` returns the first voucher. Raises NotFound (no such reward) or LedgerError
    `reward_unavailable` (outside its dates, out of stock), writing nothing."""
    if not idempotency_key or len(idempotency_key) > 128:
        raise LedgerError("a gift needs an idempotency key of 1 to 128 characters", "invalid", "idempotency_key", 422)
    fingerprint = _fingerprint(customer_id=customer_id, reward_id=reward_id, gift=True)
    ledger.lock_member(session, customer_id, now)  # gifts and redemptions of one member run one at a time
    first = session.scalar(sa.select(Redemption).where(Redemption.idempotency_key == idempotency_key))
    if first is not None:
        if first.request_hash != fingerprint:
            raise LedgerError("this idempotency key was used for a different voucher", "idempotency_key_reused",
                              "idempotency_key")
        return first, False
    query = sa.select(Reward).where(Reward.id == reward_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # stock: one gift at a time takes the last one
    reward = session.scalar(query)
    if reward is None:
        raise NotFound("reward", reward_id)
    why = why_not_given(reward, now)
    if why:
        raise LedgerError(why, "reward_unavailable", "reward_id")
    entry = Entry(customer_id=customer_id, key=f"gift:{idempotency_key}", kind="gift", reason=f"Gift: {reward.name}"[:255],
                  source=source[:16], source_id=idempotency_key[:64], available=0, pending=0, debt=0, qualifying=0,
                  lost=0, spend=0, details={"reward_id": reward.id}, created_at=now)
    session.add(entry)
    session.flush()
    if reward.stock is not None:
        reward.stock -= 1
    redemption = Redemption(customer_id=customer_id, reward_id=reward.id, idempotency_key=idempotency_key,
                            request_hash=fingerprint, points=0, entry_id=entry.id, status="issued",
                            code=_new_code(session), kind=reward.kind, value=reward.value, percent=reward.percent,
                            max_discount=reward.max_discount, expires_at=now + timedelta(days=reward.voucher_days),
                            created_at=now)
    session.add(redemption)
    session.flush()
    return redemption, True


def voucher_variables(redemption: Redemption, reward: Reward | None) -> dict:
    """What a message template sees as `voucher`: the code, what it is worth, when it expires."""
    return {"code": redemption.code, "kind": redemption.kind, "value": redemption.value,
            "percent": redemption.percent, "max_discount": redemption.max_discount,
            "expires_at": redemption.expires_at.isoformat(), "reward": reward.name if reward else None,
            "product_sku": reward.product_sku if reward else None}
