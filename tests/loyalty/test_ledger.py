"""The ledger: lots, earliest-expiring-first debits, expiry of what is left, idempotent keys, verify."""

from datetime import timedelta

import pytest

from clm.loyalty import ledger
from clm.loyalty.verify import verify
from tests.loyalty.conftest import T0, make_customer


def _earn(db, program, member, points, key, at=T0, pending=False, qualifying=0):
    return ledger.credit(db, member, program, key=key, points=points, reason="test", source="order",
                         source_id=key, at=at, now=at, pending=pending, qualifying=qualifying)


def test_processing_the_same_order_twice_credits_it_once(db, program):
    member = ledger.lock_member(db, make_customer(db).id, T0)
    _, _, first = _earn(db, program, member, 100, "order:1:earn")
    _, _, second = _earn(db, program, member, 100, "order:1:earn")
    assert (first, second) == (True, False)
    assert member.available == 100
    assert verify(db) == []


def test_a_redemption_takes_the_earliest_expiring_lots_first_and_expiry_takes_only_the_rest(db, program):
    member = ledger.lock_member(db, make_customer(db).id, T0)
    _, old, _ = _earn(db, program, member, 100, "a", at=T0)
    _, new, _ = _earn(db, program, member, 100, "b", at=T0 + timedelta(days=10))
    ledger.debit(db, member, program, key="r1", points=130, reason="voucher", source="redemption", source_id="1",
                 now=T0 + timedelta(days=10))
    assert (old.remaining, new.remaining) == (0, 70)
    ledger.settle(db, member, program, T0 + timedelta(days=75))  # past the second lot's 2 months
    assert (member.available, member.expired, member.redeemed) == (0, 70, 130)
    assert verify(db) == []


def test_pending_points_become_available_after_the_return_window(db, program):
    member = ledger.lock_member(db, make_customer(db).id, T0)
    _earn(db, program, member, 50, "order:2:earn", pending=True)
    assert (member.pending, member.available) == (50, 0)
    with pytest.raises(ledger.InsufficientPoints):
        ledger.debit(db, member, program, key="r", points=10, reason="x", source="redemption", source_id="1",
                     now=T0 + timedelta(days=6))
    ledger.settle(db, member, program, T0 + timedelta(days=7))
    assert (member.pending, member.available) == (0, 50)
    assert verify(db) == []


def test_a_cancelled_redemption_puts_points_back_on_their_lots_with_their_expiry(db, program):
    member = ledger.lock_member(db, make_customer(db).id, T0)
    _, lot, _ = _earn(db, program, member, 100, "a")
    entry, _ = ledger.debit(db, member, program, key="r", points=60, reason="x", source="redemption",
                            source_id="1", now=T0)
    ledger.restore(db, member, program, key="r:cancel", of_entry=entry, points=None, kind="cancel",
                   reason="cancelled", source="redemption", source_id="1", now=T0 + timedelta(days=1))
    assert (lot.remaining, member.available, member.redeemed) == (100, 100, 0)
    _, restored, applied = ledger.restore(db, member, program, key="r:cancel", of_entry=entry, points=None,
                                          kind="cancel", reason="cancelled", source="redemption", source_id="1",
                                          now=T0 + timedelta(days=1))
    assert applied is False and lot.remaining == 100
    assert verify(db) == []


def test_reversing_spent_points_leaves_a_debt_that_the_next_earning_pays_first(db, program):
    member = ledger.lock_member(db, make_customer(db).id, T0)
    _, lot, _ = _earn(db, program, member, 100, "order:1:earn", qualifying=100)
    ledger.debit(db, member, program, key="r", points=80, reason="x", source="redemption", source_id="1", now=T0)
    ledger.reverse(db, member, program, key="order:1:refund:1", points=100, qualifying=100, spend=0,
                   lot_id=lot.id, reason="refund", source="order", source_id="1", now=T0)
    assert (member.available, member.debt, member.qualifying) == (0, 80, 0)
    _earn(db, program, member, 50, "order:2:earn")
    assert (member.available, member.debt) == (0, 30)
    _earn(db, program, member, 50, "order:3:earn")
    assert (member.available, member.debt) == (20, 0)
    assert verify(db) == []


def test_verify_lists_a_balance_that_disagrees_with_the_ledger(db, program):
    customer = make_customer(db)
    member = ledger.lock_member(db, customer.id, T0)
    _earn(db, program, member, 100, "a")
    member.available = 90
    db.flush()
    [diff, lots_diff] = verify(db)
    assert (diff.customer_id, diff.what, diff.stored, diff.computed) == (customer.id, "available", 90, 100)
    assert lots_diff.what == "available (lots)"


def test_merging_two_members_folds_their_balances_and_the_ledger_still_verifies(db, program):
    from clm.customers.merge import merge_customers

    winner, loser = make_customer(db), make_customer(db)
    a = ledger.lock_member(db, winner.id, T0)
    _earn(db, program, a, 100, "w")
    b = ledger.lock_member(db, loser.id, T0)
    _earn(db, program, b, 40, "l", pending=True)
    merge_customers(db, winner.id, loser.id, "test")
    db.expire_all()
    member = ledger.lock_member(db, winner.id, T0)
    assert (member.available, member.pending) == (100, 40)
    assert verify(db) == []


def test_erasing_a_customer_erases_their_ledger(db, program):
    from clm.customers.service import delete_customer
    from clm.loyalty.models import Entry

    customer = make_customer(db)
    member = ledger.lock_member(db, customer.id, T0)
    _earn(db, program, member, 100, "x")
    ledger.debit(db, member, program, key="y", points=10, reason="r", source="redemption", source_id=None, now=T0)
    delete_customer(db, customer.id)
    assert db.query(Entry).filter_by(customer_id=customer.id).count() == 0
