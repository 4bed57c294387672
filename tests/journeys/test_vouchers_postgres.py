"""PostgreSQL: twenty customers' voucher steps give the last 5 of a reward at once (threads, separate
sessions, as parallel workers would): exactly 5 vouchers exist, the stock ends at 0, never below."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from clm.customers.models import Customer
from clm.db.engine import make_engine, make_session_factory
from clm.loyalty import gifts
from clm.loyalty.ledger import LedgerError
from clm.loyalty.models import Redemption, Reward
from tests.conftest import POSTGRES_URL

pytestmark = [pytest.mark.skipif(not POSTGRES_URL, reason="CLM_TEST_POSTGRES_URL is not set"),
              pytest.mark.parametrize("engine", ["postgres"], indirect=True)]
NOW = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
N = 20


@pytest.fixture
def committed(engine, many_connections):
    """This test commits for real (a connection per thread); it removes what it made."""
    wide = make_engine(POSTGRES_URL, pool_size=N + 2, max_overflow=0)
    factory = make_session_factory(wide)
    with factory() as session:
        customers = [Customer(full_name=f"Khách {k}", traits={}, search_text="") for k in range(N)]
        reward = Reward(name="Quà cuối cùng", kind="voucher", points=1, value=50_000, voucher_days=7, tiers=[],
                        stock=5, active=False)
        session.add_all([*customers, reward])
        session.commit()
        ids, reward_id = [c.id for c in customers], reward.id
    yield factory, ids, reward_id
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM customers WHERE id = ANY(:ids)"), {"ids": ids})
        conn.execute(sa.text("DELETE FROM loyalty_rewards WHERE id = :id"), {"id": reward_id})
    wide.dispose()


def test_concurrent_voucher_steps_never_give_more_than_the_stock(committed):
    factory, ids, reward_id = committed
    barrier = threading.Barrier(N)
    given: list[str] = []
    refused: list[str] = []

    def give(customer_id: int) -> None:
        with factory() as session:
            barrier.wait()
            try:
                voucher, _ = gifts.give(session, customer_id, reward_id, idempotency_key=f"journey:{customer_id}:1",
                                        now=NOW)
                session.commit()
                given.append(voucher.code)
            except LedgerError as exc:
                session.rollback()
                refused.append(exc.message)

    threads = [threading.Thread(target=give, args=(c,)) for c in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(given) == 5 and len(set(given)) == 5
    assert len(refused) == N - 5 and all("out of stock" in m for m in refused)
    with factory() as session:
        assert session.get(Reward, reward_id).stock == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(Redemption)
                              .where(Redemption.reward_id == reward_id)) == 5
