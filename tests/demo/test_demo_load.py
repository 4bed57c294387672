"""The demo's data lands through the real ingestion path, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import aliased, sessionmaker

from clm.commerce.models import Order
from clm.customers.models import Customer, Identity
from clm.demo.generate import ShopSpec, stories
from clm.demo.load import load_stories
from clm.demo.people import FAMILY
from clm.tracking.models import Event

NOW = datetime(2025, 6, 30, 12, tzinfo=UTC)
CHANNELS = {"facebook", "zalo", "google", "referral", "walk-in"}


@pytest.fixture(scope="module")
def loaded(engine):
    """One 200-customer shop per backend for the module, in a transaction rolled back at its end."""
    with engine.connect() as conn:
        outer = conn.begin()
        factory = sessionmaker(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
        stats = load_stories(factory, stories(ShopSpec(customers=200, seed=5, now=NOW)), group=1500)
        yield stats, factory
        outer.rollback()


@pytest.fixture
def shop(loaded):
    return loaded[0]


@pytest.fixture
def shop_db(loaded):
    with loaded[1]() as session:
        yield session


def test_a_small_shop_lands_every_message_as_customers_with_valid_phones_and_vietnamese_names(shop, shop_db):
    assert shop.rejected == [] and shop.accepted == shop.messages > 200 * 10
    customers = shop_db.scalars(sa.select(Customer).where(Customer.merged_into_id.is_(None))).all()
    assert len(customers) == 200
    assert all(c.phone.startswith("+84") and len(c.phone) == 12 for c in customers)
    assert all(c.family_name in FAMILY and c.full_name.startswith(c.family_name) for c in customers)
    assert {c.city for c in customers} >= {"TP. Hồ Chí Minh", "Hà Nội"}
    assert {c.traits["acquisition_channel"] for c in customers} == CHANNELS


def test_anonymous_visits_join_the_customer_who_signs_up_afterwards(shop, shop_db):
    other = aliased(Identity)
    has_user_id = sa.exists().where(other.customer_id == Identity.customer_id, other.kind == "user_id")
    joined = shop_db.scalar(sa.select(sa.func.count(sa.distinct(Identity.customer_id)))
                       .where(Identity.kind == "anonymous_id", has_user_id))
    assert joined > 60
    # Only Facebook leads who never signed up are known without a user id, by their phone.
    without = shop_db.scalars(sa.select(Customer.id).where(
        ~sa.exists().where(Identity.customer_id == Customer.id, Identity.kind == "user_id"))).all()
    leads = set(shop_db.scalars(sa.select(Event.customer_id).where(Event.name == "Lead Form Submitted")))
    assert set(without) <= leads


def test_orders_are_in_vnd_and_a_share_of_customers_buys_again(shop, shop_db):
    orders = shop_db.execute(sa.select(Order.customer_id, Order.currency, Order.total)).all()
    assert {o.currency for o in orders} == {"VND"}
    assert all(o.total > 0 and o.total % 1000 == 0 for o in orders)
    per_customer = shop_db.execute(sa.select(Order.customer_id, sa.func.count()).group_by(Order.customer_id)).all()
    repeat = sum(1 for _, n in per_customer if n >= 2)
    assert 0.2 < repeat / len(per_customer) < 0.75
    assert shop_db.scalar(sa.select(sa.func.count()).where(Order.status != "completed")) >= 0


def test_events_arrive_from_every_channel_with_their_own_time_as_received_at(shop, shop_db):
    sources = set(shop_db.scalars(sa.select(Event.context["campaign"]["source"].as_string()).distinct()))
    assert CHANNELS <= sources
    skewed = shop_db.scalar(sa.select(sa.func.count()).where(Event.received_at != Event.timestamp))
    assert skewed == 0
    assert shop_db.scalar(sa.select(sa.func.max(Event.timestamp))) <= NOW
    assert set(shop_db.scalars(sa.select(Event.source).distinct())) == {"demo"}


def test_loading_the_same_shop_again_changes_nothing(shop, loaded, shop_db):
    again = load_stories(loaded[1], stories(ShopSpec(customers=200, seed=5, now=NOW)), group=1500)
    assert again.accepted == 0 and again.duplicates == shop.messages
    assert shop_db.scalar(sa.select(sa.func.count()).select_from(Customer)) == 200
