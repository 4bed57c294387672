"""The set-based sweep (clm.loyalty.expiry) writes exactly what settling each member one by one writes:
the same entries (keys, kinds, changes, details), lot uses, lot states, balances, next due times and
`loyalty.points_changed` events, on random ledgers of several members."""

from datetime import timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clm.loyalty import ledger
from clm.loyalty.models import Entry, Lot, LotUse, Member
from clm.loyalty.sweep import sweep
from clm.loyalty.verify import verify
from clm.outbox.models import OutboxEvent
from tests.loyalty.conftest import T0, make_customer

DAY = timedelta(days=1)

operations = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 120), st.sampled_from(["earn", "pending", "redeem"]),
                                st.integers(1, 200)), max_size=14)


def _build(db, program, ops):
    customers = [make_customer(db).id for _ in range(4)]
    for n, (who, day, kind, points) in enumerate(sorted(ops, key=lambda op: op[1])):
        at = T0 + day * DAY
        member = ledger.lock_member(db, customers[who], at)
        if kind == "redeem":
            try:
                ledger.debit(db, member, program, key=f"r{n}", points=points, reason="voucher",
                             source="redemption", source_id=None, now=at)
            except ledger.InsufficientPoints:
                pass
        else:
            ledger.credit(db, member, program, key=f"e{n}", points=points, reason="order", source="order",
                          source_id=None, at=at, now=at, pending=kind == "pending")
    db.flush()
    return customers


def _marks(db):
    return {t: db.scalar(sa.select(sa.func.coalesce(sa.func.max(t.id), 0))) for t in (Entry, LotUse, OutboxEvent)}


def _snapshot(db, marks):
    db.flush()
    db.expire_all()
    keys = dict(db.execute(sa.select(Entry.id, Entry.key).where(Entry.id > marks[Entry])).all())
    members = db.execute(sa.select(Member.customer_id, Member.available, Member.pending, Member.debt,
                                   Member.qualifying, Member.earned, Member.redeemed, Member.expired, Member.lost,
                                   Member.next_due_at).order_by(Member.customer_id)).all()
    lots = db.execute(sa.select(Lot.id, Lot.remaining, Lot.released).order_by(Lot.id)).all()
    entries = [(e.customer_id, e.key, e.kind, e.reason, e.source, e.source_id, e.available, e.pending, e.debt,
                e.qualifying, e.lost, e.spend, e.details, e.created_at)
               for e in db.scalars(sa.select(Entry).where(Entry.id > marks[Entry]).order_by(Entry.id))]
    uses = sorted((u.customer_id, keys[u.entry_id], u.lot_id, u.points, u.of_use_id)
                  for u in db.scalars(sa.select(LotUse).where(LotUse.id > marks[LotUse])))
    events = [(e.topic, e.customer_id, {**e.payload, "entry_id": keys.get(e.payload.get("entry_id"))})
              for e in db.scalars(sa.select(OutboxEvent).where(OutboxEvent.id > marks[OutboxEvent])
                                  .order_by(OutboxEvent.id))]
    return members, lots, entries, uses, events


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, later=st.integers(0, 90), chunk=st.integers(1, 3))
def test_the_set_based_sweep_writes_what_settling_each_member_writes(db, program, ops, later, chunk):
    outer = db.begin_nested()
    try:
        customers = _build(db, program, ops)
        now = T0 + (max((op[1] for op in ops), default=0) + later) * DAY
        marks = _marks(db)

        due = ledger.due_members(db, now, 100)
        one_by_one = db.begin_nested()
        for cid in due:
            ledger.settle(db, ledger.lock_member(db, cid, now), program, now)
        expected = _snapshot(db, marks)
        one_by_one.rollback()

        set_based = db.begin_nested()
        visited = sweep(db, now, chunk=chunk)
        got = _snapshot(db, marks)
        assert verify(db) == []
        set_based.rollback()

        assert got == expected
        assert visited == len(due) and set(due) <= set(customers)
    finally:
        outer.rollback()


def test_the_sweep_expires_only_what_is_left_and_members_held_in_the_session_see_it(db, program):
    member = ledger.lock_member(db, make_customer(db).id, T0)
    ledger.credit(db, member, program, key="a", points=100, reason="order", source="order", source_id=None,
                  at=T0, now=T0)
    ledger.credit(db, member, program, key="b", points=40, reason="order", source="order", source_id=None,
                  at=T0 + 30 * DAY, now=T0 + 30 * DAY, pending=True)
    ledger.debit(db, member, program, key="r", points=30, reason="voucher", source="redemption", source_id=None,
                 now=T0 + 30 * DAY)
    assert sweep(db, T0 + 40 * DAY) == 1  # the return window of "b" has passed: released, nothing expires
    assert (member.available, member.pending, member.expired) == (110, 0, 0)
    assert sweep(db, T0 + 40 * DAY) == 0  # nothing due any more
    assert sweep(db, T0 + 62 * DAY) == 1  # "a" (2 months) expires: what is left of it, 70
    assert (member.available, member.expired) == (40, 70)
    expire = db.scalar(sa.select(Entry).where(Entry.kind == "expire"))
    assert (expire.key, expire.available, expire.pending) == (f"expire:{member.customer_id}:0", -70, 0)
    assert member.next_due_at == db.scalar(sa.select(Lot.expires_at).where(Lot.remaining > 0))
    assert verify(db) == []
