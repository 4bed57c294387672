"""A small shop written straight into the fact tables, with awkward values on purpose (quotes, SQL
fragments, LIKE wildcards, Vietnamese text, JSON values of every type), for comparing the SQL compiler
with the Python evaluator on both databases."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.analytics.models import CustomerScore
from clm.commerce.models import Order, OrderItem, Product
from clm.customers.models import Consent, Customer
from clm.lifecycle.models import CustomerStats, StageHistory
from clm.segments.models import Segment, SegmentMember
from clm.tracking.models import Event, EventDaily

NOW = datetime(2025, 6, 15, 10, 0, tzinfo=UTC)
HOSTILE = ["50%", "a_b", "O'Brien", "'; DROP TABLE customers; --", "%", "_", "\\", 'say "hi"', "Nguyễn", "nguyen"]
CITIES = ["Hà Nội", "Huế", "Đà Nẵng", "HCM", "ha noi", *HOSTILE[:4]]
NAMES = ["Nguyễn Văn An", "Trần Thị Bích", "O'Brien", "50% Off", "a_b c", "An", "ANNA"]
STAGES = ["awareness", "conversion", "retention", "at_risk", "churned"]
EVENTS = ["Product Viewed", "Cart Viewed", "Order Completed", "50%_x"]
CATEGORIES = ["skincare", "tea", "50%", "a_b"]
SKUS = ["SKU-1", "SKU-2", "SKU_3", "SKU%4"]
TRAIT_VALUES = ["gold", "silver", 5, 7.5, 0, True, False, None, "5", "50%", "O'Brien", [1, 2], {"a": 1}]
RFM = ["champions", "at_risk", "hibernating", "new"]


def _when(rng: random.Random, days: int = 200) -> datetime:
    return NOW - timedelta(days=rng.uniform(-5, days), seconds=rng.randint(0, 86399))


def build(db: Session, seed: int = 7, customers: int = 36) -> list[int]:
    """Write the shop; returns the customer ids."""
    rng = random.Random(seed)
    products = []
    for k, sku in enumerate(SKUS):
        product = Product(sku=sku, name=sku, category=CATEGORIES[k], currency="VND", price=100_000)
        db.add(product)
        products.append(product)
    db.flush()
    ids = []
    for n in range(customers):
        traits = {}
        for key in ("tier", "score", "vip", "note"):
            if rng.random() < 0.7:
                traits[key] = rng.choice(TRAIT_VALUES)
        birthday = None if rng.random() < 0.2 else date(rng.choice([1980, 1992, 2000]), 1, 1) + timedelta(
            days=rng.randint(0, 365))
        if n == 0:
            birthday = date(1992, 2, 29)
        customer = Customer(
            email=None if rng.random() < 0.2 else f"{rng.choice(['an', 'bich', 'x_y', 'p%q'])}{n}@shop.vn",
            full_name=rng.choice(NAMES), city=None if rng.random() < 0.15 else rng.choice(CITIES),
            gender=rng.choice([None, "female", "male"]), birthday=birthday, traits=traits,
            lifecycle_stage=rng.choice([None, *STAGES]), created_at=_when(rng, 400),
            first_seen_at=_when(rng, 300), last_seen_at=None if rng.random() < 0.2 else _when(rng, 60),
            merged_into_id=None,
        )
        db.add(customer)
        db.flush()
        ids.append(customer.id)
        cid = customer.id
        orders = rng.randint(0, 4)
        revenue = 0
        placed = []
        for k in range(orders):
            at = _when(rng, 150)
            total = rng.choice([100_000, 250_000, 333_333, 1_000_000])
            status = rng.choice(["completed", "completed", "refunded"])
            order = Order(external_id=f"SO-{cid}-{k}", customer_id=cid, status=status, currency="VND", total=total,
                          placed_at=at, refunded=total if status == "refunded" else 0)
            db.add(order)
            db.flush()
            product = rng.choice(products)
            db.add(OrderItem(order_id=order.id, customer_id=cid, product_id=product.id, sku=product.sku, price=total))
            if status != "refunded":
                revenue += total
                placed.append(at)
        if orders:
            db.add(CustomerStats(customer_id=cid, orders_count=len(placed), revenue=revenue, refunded_orders=0,
                                 first_order_at=min(placed) if placed else None,
                                 last_order_at=max(placed) if placed else None, updated_at=NOW))
        daily: dict[tuple[str, date], int] = {}
        for k in range(rng.randint(0, 8)):
            name = rng.choice(EVENTS)
            at = _when(rng, 60)
            props = {"category": rng.choice([*CATEGORIES, None, 3]), "price": rng.choice([1, 2.5, 100, "100"])}
            db.add(Event(message_id=f"m-{cid}-{k}", customer_id=cid, type="track", name=name, properties=props,
                         context={}, timestamp=at, received_at=at))
            daily[(name, at.date())] = daily.get((name, at.date()), 0) + 1
        for (name, day), count in daily.items():
            db.add(EventDaily(customer_id=cid, name=name, day=day, count=count))
        for _ in range(rng.randint(0, 3)):
            db.add(Consent(customer_id=cid, channel=rng.choice(["email", "zalo"]), purpose="marketing",
                           granted=rng.random() < 0.6, source="test", recorded_at=_when(rng, 100)))
        for _ in range(rng.randint(0, 2)):
            db.add(StageHistory(customer_id=cid, from_stage=None, to_stage=rng.choice(STAGES), rule="test",
                                changed_at=_when(rng, 90), recorded_at=NOW))
        if rng.random() < 0.7:
            db.add(CustomerScore(customer_id=cid, status="scored", r_score=rng.randint(1, 5), f_score=rng.randint(1, 5),
                                 m_score=rng.randint(1, 5), rfm_segment=rng.choice(RFM), p_alive=rng.random(),
                                 predicted_clv_12m=rng.randint(0, 5_000_000), churn_risk=rng.random(),
                                 currency="VND", run_id=1, computed_at=NOW))
    merged = Customer(full_name="An", city="Huế", merged_into_id=ids[0], traits={}, created_at=NOW)
    db.add(merged)
    static = Segment(name="VIP list", kind="static", rules=None, depends_on=[], created_at=NOW, updated_at=NOW)
    db.add(static)
    db.flush()
    for cid in ids[::3]:
        db.add(SegmentMember(segment_id=static.id, customer_id=cid, entered_at=NOW))
    db.flush()
    return ids


def static_segment_id(db: Session) -> int:
    return db.scalar(sa.select(Segment.id).where(Segment.name == "VIP list"))
