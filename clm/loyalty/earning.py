"""Earning from facts: completed orders (spend rules, multipliers, the tier's multiplier, caps), refunds
(a pro-rata share of what the order stored, never recomputed from today's rules) and events.

Each function locks the member and writes through the ledger; a fact applied twice is a no-op by the
ledger's keys (order:<id>:earn, order:<id>:refund:<outbox id>, rule:<id>:...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.commerce.models import Order, OrderItem, Product
from clm.loyalty import ledger, rules, tiers
from clm.loyalty.models import Entry, Lot, Member, OrderPoints, Program, Redemption, Rule, RuleAward


@dataclass
class Earning:
    """What an order earns: points per rule (after caps), how many qualify for tiers, the spend counted."""

    points: int = 0
    qualifying: int = 0
    spend: int = 0
    by_rule: dict[int, int] = field(default_factory=dict)
    tier_bonus: int = 0


def _items(session: Session, order: Order) -> list[tuple[str | None, int]]:
    """(category, amount) per order item."""
    rows = session.execute(
        sa.select(Product.category, OrderItem.price * OrderItem.quantity)
        .select_from(OrderItem).outerjoin(Product, Product.id == OrderItem.product_id)
        .where(OrderItem.order_id == order.id)
    ).all()
    return [(category, int(amount or 0)) for category, amount in rows]


def order_earning(session: Session, program: Program, order: Order, tier_key: str | None,
                  tier_percent: int) -> Earning:
    """The points `order` earns under the rules active when it was placed (caps counted at that time)."""
    at = order.placed_at
    spend_rules = [(r, rules.SpendConfig.model_validate(r.config)) for r in rules.active_rules(session, at, "spend")]
    multipliers = [(r, rules.MultiplierConfig.model_validate(r.config))
                   for r in rules.active_rules(session, at, "multiplier")] if spend_rules else []
    return compute_earning(
        max(order.total - order.shipping - order.tax, 0), lambda: _items(session, order), spend_rules, multipliers,
        tier_key, tier_percent,
        lambda rule, points: _capped(session, program, rule, order.customer_id, at, points))


def compute_earning(base: int, items, spend_rules: list[tuple[Rule, rules.SpendConfig]],
                    multipliers: list[tuple[Rule, rules.MultiplierConfig]], tier_key: str | None, tier_percent: int,
                    capped) -> Earning:
    """What an order of `base` (its total less shipping and tax) earns: the arithmetic alone, shared by the
    one-order path and the batch earner. `items()` gives (category, amount) per item, `capped(rule, points)`
    what a rule may still give, the rules are those active when the order was placed.

    The base is shared over the items by their amounts (so a discount lowers every item's share); each
    item earns base points plus each matching multiplier's extra percentage plus the tier's; each spend
    rule's sum is rounded once by its rounding rule.
    """
    result = Earning(spend=base)
    if not spend_rules or base == 0:
        return result
    multipliers = [(r, c) for r, c in multipliers if not c.tiers or tier_key in c.tiers]
    items = items()
    items_total = sum(amount for _, amount in items)
    shares = ([(category, Fraction(base * amount, items_total)) for category, amount in items if amount]
              if items_total > 0 else [(None, Fraction(base))])
    for spend_rule, config in spend_rules:
        rate = Fraction(config.points, config.per_amount)
        raw_base = sum((share * rate for _, share in shares), Fraction(0))
        raw_tier = raw_base * Fraction(tier_percent - 100, 100)
        base_points = rules.round_points(raw_base + raw_tier, config.rounding)
        granted = capped(spend_rule, base_points)
        result.by_rule[spend_rule.id] = result.by_rule.get(spend_rule.id, 0) + granted
        result.tier_bonus += max(granted - rules.round_points(raw_base, config.rounding), 0)
        points = granted
        for mult_rule, mult in multipliers:
            chosen = [share for category, share in shares if not mult.categories or category in mult.categories]
            extra = sum(chosen, Fraction(0)) * rate * Fraction(mult.percent - 100, 100)
            bonus = capped(mult_rule, rules.round_points(extra, config.rounding))
            if bonus:
                result.by_rule[mult_rule.id] = result.by_rule.get(mult_rule.id, 0) + bonus
            points += bonus
        result.points += points
        if config.qualifying:
            result.qualifying += points
    return result


def _capped(session: Session, program: Program, rule: Rule, customer_id: int, at: datetime, points: int) -> int:
    if points <= 0:
        return max(points, 0)
    left = rules.cap_left(session, rule, customer_id, at, program.timezone)
    return points if left is None else min(points, left)


def _awards(session: Session, entry: Entry, by_rule: dict[int, int], customer_id: int, at: datetime) -> None:
    session.add_all([RuleAward(rule_id=rid, customer_id=customer_id, entry_id=entry.id, points=n, created_at=at)
                     for rid, n in by_rule.items() if n])


def _tier_percent(session: Session, member: Member) -> int:
    from clm.loyalty.models import Tier

    if member.tier is None:
        return 100
    tier = session.get(Tier, member.tier)
    return tier.earn_percent if tier is not None else 100


def earn_order(session: Session, program: Program, order_id: int, now: datetime) -> OrderPoints | None:
    """Credit a completed order's points (pending through the return window) and store them with the order."""
    stored = session.get(OrderPoints, order_id)
    if stored is not None:
        return stored
    order = session.get(Order, order_id)
    if order is None or order.placed_at < program.created_at:
        return None  # orders from before the program began earn nothing (backdate created_at to backfill)
    member = ledger.lock_member(session, order.customer_id, now)
    earning = order_earning(session, program, order, member.tier, _tier_percent(session, member))
    spent = int(session.scalar(sa.select(sa.func.coalesce(sa.func.sum(Redemption.points), 0)).where(
        Redemption.order_ref == order.external_id, Redemption.status == "used")))
    entry, _lot, applied = ledger.credit(
        session, member, program, key=f"order:{order.id}:earn", points=earning.points,
        reason=f"Order {order.external_id}", source="order", source_id=str(order.id), at=order.placed_at, now=now,
        pending=True, qualifying=earning.qualifying, spend=earning.spend,
        details={"by_rule": {str(k): v for k, v in earning.by_rule.items()}, "tier": member.tier,
                 "tier_bonus": earning.tier_bonus, "spent": spent})
    if applied:
        _awards(session, entry, earning.by_rule, member.customer_id, order.placed_at)
    stored = OrderPoints(order_id=order.id, customer_id=member.customer_id, total=order.total,
                         earned=earning.points,
                         qualifying=earning.qualifying, spend=earning.spend, spent=spent, entry_id=entry.id,
                         created_at=now, updated_at=now)
    session.add(stored)
    session.flush()
    tiers.evaluate(session, program, member, now)
    from clm.loyalty import referrals

    referrals.on_order(session, program, order, now)
    return stored


def refund_order(session: Session, program: Program, order_id: int, amount: int, refund_id: str,
                 now: datetime) -> Entry | None:
    """Reverse the share of the order's stored points that `amount` of money refunded stands for, and give
    back the same share of the points spent on it. `refund_id` names this refund (the outbox row)."""
    stored = session.get(OrderPoints, order_id)
    if stored is None:
        return None
    key = f"order:{order_id}:refund:{refund_id}"
    first = ledger.find_entry(session, key)
    if first is not None:
        return first
    member = ledger.lock_member(session, stored.customer_id, now)
    session.refresh(stored)
    stored.refunded = min(stored.refunded + max(amount, 0), stored.total)

    def share(value: int) -> int:  # a whole refund takes everything; a part, its rounded-down share
        return value if stored.refunded >= stored.total else value * stored.refunded // max(stored.total, 1)

    points = share(stored.earned) - stored.reversed
    qualifying = share(stored.qualifying) - stored.reversed_qualifying
    spend = share(stored.spend) - stored.reversed_spend
    lot_id = session.scalar(sa.select(Lot.id).where(Lot.entry_id == stored.entry_id))
    entry, _ = ledger.reverse(session, member, program, key=key, points=points, qualifying=qualifying, spend=spend,
                              lot_id=lot_id, reason=f"Order refunded ({amount})", source="order",
                              source_id=str(order_id), now=now, details={"amount": amount})
    stored.reversed += points
    stored.reversed_qualifying += qualifying
    stored.reversed_spend += spend
    give_back = share(stored.spent) - stored.returned
    if give_back > 0:
        order = session.get(Order, order_id)
        for redemption in session.scalars(sa.select(Redemption).where(
                Redemption.order_ref == order.external_id, Redemption.status == "used").order_by(Redemption.id)):
            if give_back <= 0:
                break
            _, back, _ = ledger.restore(
                session, member, program, key=f"{key}:return:{redemption.id}",
                of_entry=session.get(Entry, redemption.entry_id), points=give_back, kind="return",
                reason="Points spent on a refunded order given back", source="order", source_id=str(order_id),
                now=now)
            give_back -= back
            stored.returned += back
    stored.updated_at = now
    session.flush()
    return entry


def earn_event(session: Session, program: Program, rule: Rule, customer_id: int, key: str, at: datetime,
               now: datetime, reason: str) -> Entry | None:
    """Give an event rule's fixed points once per `key` (within its caps); None when capped or seen."""
    config = rules.EventConfig.model_validate(rule.config)
    full_key = f"rule:{rule.id}:{key}"
    if ledger.find_entry(session, full_key) is not None:
        return None
    member = ledger.lock_member(session, customer_id, now)
    points = _capped(session, program, rule, customer_id, at, config.points)
    if points <= 0:
        return None
    entry, _, applied = ledger.credit(session, member, program, key=full_key, points=points, reason=reason,
                                      source="rule", source_id=str(rule.id), at=at, now=now,
                                      qualifying=points if config.qualifying else 0)
    if not applied:
        return None
    _awards(session, entry, {rule.id: points}, customer_id, at)
    if config.qualifying:
        tiers.evaluate(session, program, member, now)
    return entry
