"""Batch earning (clm.loyalty.batch_earning) writes exactly what earning the same orders one by one writes:
the same entries (keys, changes, details), lots, lot uses, rule awards, stored order points, tier changes,
member balances and events, on random orders, rules (rounding, category, tier and campaign multipliers,
caps), tier ladders, members due for a release or expiry, members in debt, orders older than their
expiry, orders seen before and referred customers."""

from datetime import timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clm.commerce.models import Order, OrderItem, Product
from clm.loyalty import ledger
from clm.loyalty.batch_earning import earn_orders
from clm.loyalty.earning import earn_order
from clm.loyalty.models import Entry, Lot, LotUse, Member, OrderPoints, Referral, RuleAward, TierChange
from clm.loyalty.tiers import TierIn, save_tiers
from clm.loyalty.verify import verify
from clm.outbox.models import OutboxEvent
from tests.loyalty.conftest import T0, add_rule, make_customer

DAY = timedelta(days=1)
CATEGORIES = ["tea", "skincare", None]

an_order = st.tuples(st.integers(0, 3), st.integers(0, 150), st.lists(
    st.tuples(st.sampled_from(CATEGORIES), st.integers(0, 400_000)), min_size=0, max_size=3),
    st.integers(0, 30_000))
a_program = st.fixed_dictionaries({
    "rounding": st.sampled_from(["down", "nearest", "up"]),
    "tea": st.sampled_from([None, 200, 150]),
    "gold_only": st.booleans(),
    "campaign": st.none() | st.tuples(st.integers(0, 150), st.integers(1, 30)),
    "cap": st.sampled_from([None, {"per_day": 15}, {"per_customer": 60}, {"per_period": {"days": 10, "points": 30}}]),
    "ladder": st.booleans(),
    "spend_basis": st.booleans(),
})


def _setup(db, program, shape, history, orders):
    program.tier_basis = "spend" if shape["spend_basis"] else "points"
    add_rule(db, "base", "spend", {"points": 1, "per_amount": 10_000, "rounding": shape["rounding"]})
    if shape["cap"]:
        add_rule(db, "capped", "spend", {"points": 1, "per_amount": 20_000, "caps": shape["cap"]})
    if shape["tea"]:
        add_rule(db, "tea", "multiplier", {"percent": shape["tea"], "categories": ["tea"],
                                           "tiers": ["gold"] if shape["gold_only"] else []})
    if shape["campaign"]:
        start, days = shape["campaign"]
        add_rule(db, "campaign", "multiplier", {"percent": 300}, starts_at=T0 + start * DAY,
                 ends_at=T0 + (start + days) * DAY)
    if shape["ladder"]:
        threshold = 300_000 if shape["spend_basis"] else 30
        save_tiers(db, [TierIn(key="member", name="Thành viên", threshold=0),
                        TierIn(key="silver", name="Bạc", threshold=threshold, earn_percent=110),
                        TierIn(key="gold", name="Vàng", threshold=threshold * 3, earn_percent=150)])
    customers = [make_customer(db).id for _ in range(4)]
    db.add(Referral(customer_id=customers[3], referrer_id=customers[0], status="waiting", created_at=T0))
    products = {}
    for category in CATEGORIES:
        product = Product(sku=f"SKU-{category}", category=category, currency="VND")
        db.add(product)
        db.flush()
        products[category] = product.id
    made = []
    for n, (who, day, items, shipping) in enumerate([*history, *orders]):
        total = sum(amount for _, amount in items) + shipping
        order = Order(external_id=f"SO-{n}", customer_id=customers[who], status="completed", currency="VND",
                      total=total, shipping=shipping, placed_at=T0 + day * DAY - timedelta(days=200 if n == 2 else 0))
        db.add(order)
        db.flush()
        for category, amount in items:
            db.add(OrderItem(order_id=order.id, customer_id=customers[who], product_id=products[category],
                             quantity=1, price=amount))
        made.append(order)
    db.flush()
    for order in made[:len(history)]:  # earned before the batch, one by one at the time
        earn_order(db, program, order.id, order.placed_at)
    # a member in debt: points spent, then reversed
    member = ledger.lock_member(db, customers[1], T0)
    ledger.credit(db, member, program, key="gift", points=20, reason="gift", source="staff", source_id=None,
                  at=T0, now=T0)
    ledger.debit(db, member, program, key="spend", points=20, reason="voucher", source="redemption",
                 source_id=None, now=T0)
    ledger.reverse(db, member, program, key="back", points=5, qualifying=0, spend=0, lot_id=None, reason="refund",
                   source="order", source_id=None, now=T0)
    db.flush()
    return customers, [o.id for o in made]


def _marks(db):
    return {t: db.scalar(sa.select(sa.func.coalesce(sa.func.max(t.id), 0)))
            for t in (Entry, LotUse, OutboxEvent, RuleAward, TierChange, Lot)}


def _snapshot(db, marks):
    db.flush()
    db.expire_all()
    keys = dict(db.execute(sa.select(Entry.id, Entry.key)).all())
    by_customer: dict[int, dict[str, list]] = {}

    def add(cid, what, row):
        by_customer.setdefault(cid, {}).setdefault(what, []).append(row)

    for e in db.scalars(sa.select(Entry).where(Entry.id > marks[Entry]).order_by(Entry.id)):
        source_id = keys[int(e.source_id)] if e.kind == "repay" else e.source_id  # an entry id
        add(e.customer_id, "entries", (e.key, e.kind, e.reason, e.source, source_id, e.available, e.pending,
                                       e.debt, e.qualifying, e.lost, e.spend, e.details, e.created_at))
    for u in db.scalars(sa.select(LotUse).where(LotUse.id > marks[LotUse]).order_by(LotUse.id)):
        add(u.customer_id, "uses", (keys[u.entry_id], u.lot_id if u.lot_id <= marks[Lot] else "new", u.points))
    for a in db.scalars(sa.select(RuleAward).where(RuleAward.id > marks[RuleAward]).order_by(RuleAward.id)):
        add(a.customer_id, "awards", (a.rule_id, keys[a.entry_id], a.points, a.created_at))
    for c in db.scalars(sa.select(TierChange).where(TierChange.id > marks[TierChange]).order_by(TierChange.id)):
        add(c.customer_id, "tiers", (c.from_tier, c.to_tier, c.reason, c.measure, c.changed_at))
    for e in db.scalars(sa.select(OutboxEvent).where(OutboxEvent.id > marks[OutboxEvent]).order_by(OutboxEvent.id)):
        payload = dict(e.payload)
        if "entry_id" in payload:
            payload["entry_id"] = keys.get(payload["entry_id"])
        add(e.customer_id, "events", (e.topic, payload))
    members = db.execute(sa.select(Member.customer_id, Member.available, Member.pending, Member.debt,
                                   Member.qualifying, Member.earned, Member.redeemed, Member.expired, Member.lost,
                                   Member.tier, Member.tier_since, Member.tier_review_at, Member.next_due_at,
                                   ).order_by(Member.customer_id)).all()
    # (not updated_at: one by one, the ORM stamps it with the wall clock whenever a flush changes only other
    # columns, the tier or next_due_at, so it depends on when the flushes fall)
    lots = sorted((lot.customer_id, keys[lot.entry_id], lot.points, lot.remaining, lot.released, lot.available_at,
                   lot.expires_at, lot.created_at) for lot in db.scalars(sa.select(Lot)))
    stored = sorted((p.order_id, p.customer_id, p.total, p.earned, p.qualifying, p.spend, p.spent, p.refunded,
                     keys[p.entry_id], p.created_at) for p in db.scalars(sa.select(OrderPoints)))
    referrals = db.execute(sa.select(Referral.customer_id, Referral.status, Referral.order_id,
                                     Referral.qualifies_at)).all()
    return members, lots, stored, referrals, by_customer


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(shape=a_program, history=st.lists(an_order, max_size=5), orders=st.lists(an_order, min_size=1, max_size=12),
       later=st.integers(0, 90), repeat=st.booleans())
def test_earning_a_batch_writes_what_earning_each_order_writes(db, program, shape, history, orders, later, repeat):
    _compare(db, program, shape, history, orders, later, repeat)


def _compare(db, program, shape, history, orders, later, repeat):
    outer = db.begin_nested()
    try:
        _customers, ids = _setup(db, program, shape, history, orders)
        batch = ids[len(history):] + (ids[:2] if repeat else [])  # orders seen before are no-ops
        now = T0 + (max(day for _, day, _, _ in [*history, *orders]) + later) * DAY
        marks = _marks(db)

        one_by_one = db.begin_nested()
        for order_id in batch:
            earn_order(db, program, order_id, now)
        expected = _snapshot(db, marks)
        one_by_one.rollback()

        in_batch = db.begin_nested()
        earn_orders(db, program, batch, now)
        got = _snapshot(db, marks)
        assert verify(db) == []
        in_batch.rollback()

        for name, a, b in zip(("members", "lots", "stored", "referrals", "by_customer"), got, expected, strict=True):
            assert a == b, name
    finally:
        outer.rollback()


def test_a_batch_handled_twice_earns_once(db, program):
    add_rule(db, "base", "spend", {"points": 1, "per_amount": 10_000})
    customer = make_customer(db).id
    orders = [Order(external_id=f"B-{i}", customer_id=customer, status="completed", currency="VND",
                    total=100_000 * (i + 1), placed_at=T0 + i * DAY) for i in range(3)]
    db.add_all(orders)
    db.flush()
    ids = [o.id for o in orders]
    assert earn_orders(db, program, ids, T0 + 3 * DAY) == 3
    assert earn_orders(db, program, ids, T0 + 3 * DAY) == 0
    member = db.get(Member, customer)
    assert (member.pending, member.qualifying, member.earned) == (60, 60, 60)
    assert db.scalar(sa.select(sa.func.count()).select_from(Entry).where(Entry.kind == "earn")) == 3
    assert verify(db) == []
