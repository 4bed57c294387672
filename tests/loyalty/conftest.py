import itertools
from datetime import UTC, datetime, timedelta

import pytest

from clm.customers.models import Customer
from clm.loyalty.program import ProgramSettings, save_program

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)  # the same as tests.customers.shop.T0
_seq = itertools.count(1)


def make_customer(db, **fields) -> Customer:
    customer = Customer(full_name=fields.pop("full_name", f"Khách {next(_seq)}"), search_text="", traits={},
                        created_at=T0, updated_at=T0, **fields)
    db.add(customer)
    db.flush()
    return customer


@pytest.fixture
def program(db):
    program = save_program(db, ProgramSettings(pending_days=7, expiry="months", expiry_months=2, point_value=1000))
    program.created_at = T0 - timedelta(days=365)  # the program ran before the test's orders
    db.flush()
    return program


class Loyalty:
    """Drives the program the way production does: facts through ingestion, reactions by the worker steps."""

    def __init__(self, db, shop):
        from clm.loyalty.consumers import EventsConsumer, OutboxConsumer

        self.db, self.shop = db, shop
        self.outbox, self.events = OutboxConsumer(), EventsConsumer()

    def run(self, now):
        from clm.db.engine import for_writing

        for_writing(self.db)
        # once each: rows younger than the tail's grace are re-read until they age out (harmless: keyed)
        self.outbox(self.db, now)
        self.events(self.db, now)
        self.db.commit()

    def member(self, customer, now=None):
        from clm.loyalty import ledger
        from clm.loyalty.program import require_program

        member = ledger.lock_member(self.db, customer.id, now or T0)
        ledger.settle(self.db, member, require_program(self.db), now or T0)
        return member

    def order(self, customer, total, *, at=timedelta(0), items=(), order_id=None, shipping=0):
        """Order Completed with items (sku, category, unit price, quantity)."""
        order_id = order_id or f"SO-{next(_seq)}"
        products = [{"product_id": sku, "category": cat, "price": price, "quantity": qty}
                    for sku, cat, price, qty in items]
        self.shop.track(customer, "Order Completed", at=at, order_id=order_id, total=total, shipping=shipping,
                        currency="VND", products=products)
        return order_id

    def refund(self, customer, order_id, total=None, *, at=timedelta(0)):
        props = {"order_id": order_id, "currency": "VND"}
        if total is not None:
            props["total"] = total
        self.shop.track(customer, "Order Refunded", at=at, **props)


@pytest.fixture
def shop(db):
    from tests.customers.shop import Shop

    return Shop(db)


@pytest.fixture
def loyalty(db, shop, program):
    return Loyalty(db, shop)


def add_rule(db, name, kind, config, **fields):
    from clm.loyalty.rules import RuleIn, create_rule

    return create_rule(db, RuleIn(name=name, kind=kind, config=config, **fields))
