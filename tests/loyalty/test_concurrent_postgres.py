"""PostgreSQL: 50 redemptions of one balance at once (threads, separate sessions): exactly the affordable
ones succeed, the others are refused as conflicts, and the ledger verifies clean."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from clm.db.engine import for_writing, make_engine, make_session_factory
from clm.loyalty import ledger
from clm.loyalty.program import ProgramSettings, require_program, save_program
from clm.loyalty.verify import verify
from tests.conftest import POSTGRES_URL
from tests.loyalty.conftest import T0, make_customer

pytestmark = [pytest.mark.skipif(not POSTGRES_URL, reason="CLM_TEST_POSTGRES_URL is not set"),
              pytest.mark.parametrize("engine", ["postgres"], indirect=True)]


@pytest.fixture
def committed(engine, many_connections):
    """These tests commit for real (many connections); they remove what they made."""
    wide = make_engine(POSTGRES_URL, pool_size=55, max_overflow=0)  # a connection per thread
    factory = make_session_factory(wide)
    made: list[int] = []
    with factory() as session:
        save_program(session, ProgramSettings(pending_days=0, expiry="never"))
        made.append(make_customer(session).id)
        session.commit()
    yield factory, made[0]
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM customers WHERE id = :id"), {"id": made[0]})
        conn.execute(sa.text("DELETE FROM loyalty_programs"))
        conn.execute(sa.text("DELETE FROM outbox WHERE topic LIKE :topic"), {"topic": "loyalty.%"})
    wide.dispose()


def test_fifty_concurrent_redemptions_spend_exactly_the_balance(committed):
    factory, customer_id = committed
    with factory() as session:
        member = ledger.lock_member(session, customer_id, T0)
        ledger.credit(session, member, require_program(session), key="seed", points=1000, reason="seed",
                      source="staff", source_id=None, at=T0, now=T0)
        session.commit()
    barrier = threading.Barrier(50)
    results: list[str] = []

    def redeem(n: int) -> None:
        with factory() as session:
            for_writing(session)
            barrier.wait()
            try:
                member = ledger.lock_member(session, customer_id, T0)
                ledger.debit(session, member, require_program(session), key=f"redeem-{n}", points=30,
                             reason="voucher", source="redemption", source_id=str(n), now=T0)
                session.commit()
                results.append("ok")
            except ledger.InsufficientPoints:
                session.rollback()
                results.append("conflict")

    threads = [threading.Thread(target=redeem, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert (results.count("ok"), results.count("conflict")) == (33, 17)  # 33 x 30 = 990 of 1,000
    with factory() as session:
        member = ledger.lock_member(session, customer_id, T0)
        assert (member.available, member.redeemed) == (10, 990)
        assert verify(session, [customer_id]) == []


def test_two_connections_sweeping_settle_each_due_member_once(engine, many_connections):
    """The sweep on two connections at once (chunks of 3, SKIP LOCKED): every due member expired exactly once,
    balances and ledger clean."""
    from datetime import timedelta

    from clm.loyalty.sweep import sweep

    wide = make_engine(POSTGRES_URL, pool_size=5, max_overflow=0)
    factory = make_session_factory(wide)
    ids: list[int] = []
    try:
        with factory() as session:
            program = save_program(session, ProgramSettings(pending_days=0, expiry="months", expiry_months=1))
            program.created_at = T0 - timedelta(days=30)
            for n in range(20):
                member = ledger.lock_member(session, make_customer(session).id, T0)
                ids.append(member.customer_id)
                ledger.credit(session, member, program, key=f"two:{member.customer_id}", points=10 + n,
                              reason="order", source="order", source_id=None, at=T0, now=T0)
            session.commit()
        later = T0 + timedelta(days=40)
        with factory() as session:
            def commit() -> None:
                session.commit()
                for_writing(session)

            for_writing(session)
            assert sweep(session, later, on_chunk=commit, chunk=3, connections=2) == 20
            session.commit()
            rows = session.execute(sa.select(sa.text("customer_id, available, expired")).select_from(
                sa.text("loyalty_members")).where(sa.text("customer_id = ANY(:ids)")), {"ids": ids}).all()
            assert sorted(rows) == [(cid, 0, 10 + n) for n, cid in enumerate(ids)]
            expiries = session.scalar(sa.text("SELECT count(*) FROM loyalty_entries WHERE kind = 'expire' "
                                              "AND customer_id = ANY(:ids)"), {"ids": ids})
            assert expiries == 20
            assert verify(session) == []
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM customers WHERE id = ANY(:ids)"), {"ids": ids})
            conn.execute(sa.text("DELETE FROM loyalty_programs"))
            conn.execute(sa.text("DELETE FROM outbox WHERE topic LIKE :topic"), {"topic": "loyalty.%"})
        wide.dispose()
