"""Random sequences of earns, time passing (pending points released, lots expiring), redemptions,
cancellations and refunds, applied to the ledger and to a plain-Python model of the rules: balances and
every lot must agree after each step, and `verify` must find nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from clm.loyalty import ledger
from clm.loyalty.models import Lot
from clm.loyalty.program import ProgramSettings, add_months, save_program
from clm.loyalty.verify import verify
from tests.loyalty.conftest import T0, make_customer

PENDING_DAYS, EXPIRY_MONTHS = 7, 2



@dataclass
class MLot:
    points: int
    available_at: datetime
    expires_at: datetime
    remaining: int
    released: bool = False


@dataclass
class Model:
    """The rules, written the plain way: a list of lots and a few counters."""

    now: datetime = T0
    lots: list[MLot] = field(default_factory=list)
    debt: int = 0
    lost: int = 0
    qualifying: int = 0
    redeemed: int = 0
    expired: int = 0

    @property
    def available(self) -> int:
        return sum(lot.remaining for lot in self.lots if lot.released)

    @property
    def pending(self) -> int:
        return sum(lot.remaining for lot in self.lots if not lot.released)

    def order(self, lots):
        return sorted(lots, key=lambda i: (self.lots[i].expires_at, self.lots[i].available_at, i))

    def settle(self):
        for lot in self.lots:
            if not lot.released and lot.remaining > 0 and lot.available_at <= self.now:
                lot.released = True
        for lot in self.lots:
            if lot.remaining > 0 and lot.expires_at <= self.now:
                self.expired += lot.remaining
                lot.remaining = 0

    def earn(self, points: int, pending: bool, qualifying: int) -> int:
        self.settle()
        at = self.now + timedelta(days=PENDING_DAYS) if pending else self.now
        lot = MLot(points, at, add_months(self.now, EXPIRY_MONTHS), points, released=at <= self.now)
        self.lots.append(lot)
        self.qualifying += qualifying
        paid = min(self.debt, points)
        lot.remaining -= paid
        self.debt -= paid
        self.settle()
        return len(self.lots) - 1

    def usable(self, index: int) -> bool:
        lot = self.lots[index]
        return lot.remaining > 0 and lot.expires_at > self.now

    def take(self, indices, points: int) -> dict[int, int]:
        took = {}
        for i in indices:
            n = min(self.lots[i].remaining, points - sum(took.values()))
            if n > 0:
                self.lots[i].remaining -= n
                took[i] = n
        return took

    def redeem(self, points: int) -> dict[int, int] | None:
        self.settle()
        if self.available < points:
            return None
        self.redeemed += points
        return self.take(self.order([i for i in range(len(self.lots)) if self.lots[i].released and self.usable(i)]),
                         points)

    def cancel(self, took: dict[int, int]):
        self.settle()
        for i, n in took.items():
            self.lots[i].remaining += n
        self.redeemed -= sum(took.values())
        self.settle()

    def refund(self, own: int, points: int, qualifying: int):
        self.settle()
        self.qualifying -= qualifying
        took = self.take([own] if self.usable(own) else [], points)
        for released in (True, False):
            rest = [i for i in range(len(self.lots))
                    if i != own and self.lots[i].released is released and self.usable(i)]
            took_more = self.take(self.order(rest), points - sum(took.values()))
            took.update(took_more)
        self.debt += points - sum(took.values())


class LedgerMachine(RuleBasedStateMachine):
    db = program = None  # set by the test

    def __init__(self):
        super().__init__()
        self.model = Model()
        self.customer_id = make_customer(self.db).id
        self.lots: list[int] = []  # model lot index -> ledger lot id
        self.earns: list[dict] = []  # {"lot": index, "points": left to reverse, "qualifying": left}
        self.redemptions: list[tuple[object, dict[int, int]]] = []
        self.seq = 0

    def key(self, what: str) -> str:
        self.seq += 1
        return f"{self.customer_id}:{what}:{self.seq}"

    def member(self):
        return ledger.lock_member(self.db, self.customer_id, self.model.now)

    @rule(points=st.integers(1, 500), pending=st.booleans(), qualifying=st.booleans())
    def earn(self, points, pending, qualifying):
        q = points if qualifying else 0
        _, lot, applied = ledger.credit(self.db, self.member(), self.program, key=self.key("earn"), points=points,
                                        reason="order", source="order", source_id=None, at=self.model.now,
                                        now=self.model.now, pending=pending, qualifying=q)
        assert applied
        index = self.model.earn(points, pending, q)
        self.lots.append(lot.id)
        self.earns.append({"lot": index, "points": points, "qualifying": q})

    @rule(days=st.integers(1, 45))
    def time_passes_and_the_sweep_runs(self, days):
        self.model.now += timedelta(days=days)
        ledger.settle(self.db, self.member(), self.program, self.model.now)
        self.model.settle()

    @rule(points=st.integers(1, 600))
    def redeem(self, points):
        expected = self.model.redeem(points)
        try:
            entry, _ = ledger.debit(self.db, self.member(), self.program, key=self.key("redeem"), points=points,
                                    reason="voucher", source="redemption", source_id=None, now=self.model.now)
        except ledger.InsufficientPoints:
            assert expected is None
            return
        assert expected is not None
        self.redemptions.append((entry, expected))

    @precondition(lambda self: self.redemptions)
    @rule(data=st.data())
    def cancel_a_redemption(self, data):
        entry, took = self.redemptions.pop(data.draw(st.integers(0, len(self.redemptions) - 1)))
        ledger.restore(self.db, self.member(), self.program, key=self.key("cancel"), of_entry=entry, points=None,
                       kind="cancel", reason="cancelled", source="redemption", source_id=None, now=self.model.now)
        self.model.cancel(took)

    @precondition(lambda self: any(e["points"] for e in self.earns))
    @rule(data=st.data())
    def refund_part_of_an_order(self, data):
        earn = data.draw(st.sampled_from([e for e in self.earns if e["points"]]))
        points = data.draw(st.integers(1, earn["points"]))
        qualifying = min(earn["qualifying"], points)
        earn["points"] -= points
        earn["qualifying"] -= qualifying
        ledger.reverse(self.db, self.member(), self.program, key=self.key("refund"), points=points,
                       qualifying=qualifying, spend=0, lot_id=self.lots[earn["lot"]], reason="refund",
                       source="order", source_id=None, now=self.model.now)
        self.model.refund(earn["lot"], points, qualifying)

    @invariant()
    def balances_and_lots_agree(self):
        member = self.member()
        m = self.model
        assert (member.available, member.pending, member.debt, member.qualifying, member.redeemed, member.expired) == (
            m.available, m.pending, m.debt, m.qualifying, m.redeemed, m.expired)
        for index, lot_id in enumerate(self.lots):
            lot = self.db.get(Lot, lot_id)
            assert (lot.remaining, lot.released) == (m.lots[index].remaining, m.lots[index].released), index

    def teardown(self):
        self.db.flush()
        assert verify(self.db, [self.customer_id]) == []


def test_the_ledger_matches_a_plain_model_under_random_sequences(db):
    program = save_program(db, ProgramSettings(pending_days=PENDING_DAYS, expiry="months",
                                               expiry_months=EXPIRY_MONTHS, debt_policy="debt"))
    LedgerMachine.db, LedgerMachine.program = db, program
    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=40, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]))
