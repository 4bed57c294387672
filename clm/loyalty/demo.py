"""The loyalty program in the demo shop: the default Vietnamese tiers, 1 point per 10,000 VND (points last 2
months, so that the demo's few months show points expiring and breakage), a double-points weekend campaign, three vouchers, run over the shop's last `months` months so that
every page and report has numbers (and the revenue report shows the shop before and after its launch).

The program is set up as if it had started `months` months before the end; then the shop's order facts (the
outbox's `order.completed` and `order.refunded` rows) are handled in the order they happened, each at its
own time, by the same function the worker's `loyalty.outbox` step uses (so its keys are the worker's, and
a worker reading those rows later changes nothing); a sweep at each week's end releases, expires and
reviews tiers as time passes. Some members redeem a voucher when they can afford one (drawn from the
seed), so the redemption rate and outstanding points are not the earned points alone.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from clm.commerce.models import Order
from clm.db.engine import for_writing
from clm.loyalty import consumers, ledger, messages, rewards, rules, sweep, tiers
from clm.loyalty.models import Member
from clm.loyalty.program import ProgramSettings, add_months, get_program, save_program
from clm.outbox.models import OutboxEvent

REDEEM_SHARE = 0.35  # of the orders after which a member who can afford a voucher takes one
REFUND_AFTER = timedelta(days=3)
REWARDS = (
    rewards.RewardIn(name="Phiếu giảm 20.000 ₫", kind="voucher", points=20, value=20_000, voucher_days=30),
    rewards.RewardIn(name="Phiếu giảm 50.000 ₫", kind="voucher", points=50, value=50_000, voucher_days=30),
    rewards.RewardIn(name="Giảm 10% (tối đa 200.000 ₫)", kind="percent", points=150, percent=10,
                     max_discount=200_000, voucher_days=60, tiers=["gold", "diamond"]),
)


@dataclass
class DemoProgram:
    orders: int = 0
    refunds: int = 0
    redemptions: int = 0
    members: int = 0
    seconds: float = 0.0


def _facts(session: Session) -> list[tuple[datetime, int, object]]:
    """(business time, outbox id, row) of every order fact, in the order they happened."""
    outbox, orders = OutboxEvent.__table__, Order.__table__
    placed = dict(session.execute(sa.select(orders.c.id, orders.c.placed_at)).all())
    out = []
    query = sa.select(outbox.c.id, outbox.c.topic, outbox.c.customer_id, outbox.c.payload, outbox.c.created_at).where(
        outbox.c.topic.in_(("order.completed", "order.refunded"))).order_by(outbox.c.id)
    for row in session.execute(query):
        at = placed.get((row.payload or {}).get("order_id"))
        if at is None:
            continue
        out.append((at + REFUND_AFTER if row.topic == "order.refunded" else at, row.id, row))
    out.sort(key=lambda f: (f[0], f[1]))
    return out


def install_for_demo(session_factory: sessionmaker[Session], now: datetime, seed: int = 42, months: int = 3,
                     on_progress=None) -> DemoProgram:
    """Set up the program `months` months before `now` and run it over the shop's history since then. Each
    order costs the program's real path (a dozen statements): about 10 ms of CPU."""
    started = time.perf_counter()
    result = DemoProgram()
    rng = random.Random(seed)
    with session_factory() as session:
        for_writing(session)
        if get_program(session) is not None:
            return result
        first = add_months(now, -months)
        facts = [f for f in _facts(session) if first <= f[0] <= now]
        program = save_program(session, ProgramSettings(expiry="months", expiry_months=2,
                                                        referral_url="https://shop.example.vn/dang-ky?ref={code}"))
        program.created_at = first
        tiers.save_tiers(session, [tiers.TierIn(**t) for t in tiers.DEFAULT_TIERS])
        rules.create_rule(session, rules.RuleIn(name="1 điểm mỗi 10.000 ₫", kind="spend",
                                                config={"points": 1, "per_amount": 10_000, "rounding": "down"}))
        weekend = now - timedelta(days=45)
        rules.create_rule(session, rules.RuleIn(
            name="Cuối tuần nhân đôi điểm", kind="multiplier", config={"percent": 200},
            starts_at=weekend, ends_at=weekend + timedelta(days=2)))
        catalogue = [rewards.save_reward(session, r) for r in REWARDS]
        messages.install_templates(session)
        session.commit()

        week = first + timedelta(days=7)
        for k, (at, _id, row) in enumerate(facts):
            while week <= at:  # time passes: releases, expiries, tier reviews
                sweep.sweep(session, week)
                week += timedelta(days=7)
            for_writing(session)
            consumers.handle_outbox_row(session, program, row, at)
            if row.topic == "order.refunded":
                result.refunds += 1
                continue
            result.orders += 1
            if rng.random() < REDEEM_SHARE:
                result.redemptions += _maybe_redeem(session, program, row.customer_id, catalogue, at, row.id)
            if k % 500 == 499:
                session.commit()
                if on_progress:
                    on_progress(k + 1, len(facts))
        sweep.sweep(session, now)
        session.commit()
        result.members = session.scalar(sa.select(sa.func.count()).select_from(Member)) or 0
    result.seconds = time.perf_counter() - started
    return result


def _maybe_redeem(session: Session, program, customer_id: int | None, catalogue, at: datetime, fact: int) -> int:
    """The member takes the dearest voucher they can afford and may have, as they order."""
    if customer_id is None:
        return 0
    member = ledger.lock_member(session, customer_id, at)
    for reward in sorted(catalogue, key=lambda r: -r.points):
        if reward.points > member.available or (reward.tiers and member.tier not in reward.tiers):
            continue
        try:
            rewards.redeem(session, program, customer_id, idempotency_key=f"demo:{fact}", now=at,
                           reward_id=reward.id)
        except (ledger.LedgerError, ValueError):
            return 0  # not yet available (still in the return window) or out of reach after settling
        return 1
    return 0
