"""Recording products, orders and refunds. Idempotent: the same order twice is recorded once."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.commerce.events import OrderData, ProductData, RefundData
from clm.commerce.models import Order, OrderItem, Product
from clm.db.upsert import insert_for
from clm.lib.clock import utcnow
from clm.outbox.service import emit


def upsert_products(session: Session, products: list[ProductData]) -> dict[str, int]:
    """Create unknown products and refresh known ones; returns sku -> product id."""
    if not products:
        return {}
    now = utcnow()
    latest: dict[str, ProductData] = {p.sku: p for p in products}
    rows = [
        {"sku": p.sku, "name": p.name, "category": p.category, "brand": p.brand, "price": p.price,
         "currency": p.currency, "url": p.url, "image_url": p.image_url, "properties": {},
         "created_at": now, "updated_at": now}
        for p in latest.values()
    ]
    stmt = insert_for(session, Product)
    # Keep what we knew when an event omits a field (COALESCE with the new value first).
    stmt = stmt.on_conflict_do_update(
        index_elements=["sku"],
        set_={col: sa.func.coalesce(stmt.excluded[col], getattr(Product, col))
              for col in ("name", "category", "brand", "price", "url", "image_url")} | {"updated_at": now},
    )
    session.execute(stmt, rows)
    return dict(session.execute(sa.select(Product.sku, Product.id).where(Product.sku.in_(list(latest)))).all())


def record_order(session: Session, customer_id: int, order: OrderData, placed_at: datetime,
                 properties: dict | None = None) -> int | None:
    """Record a completed order; returns its id, or None when it was already recorded."""
    if session.scalar(sa.select(Order.id).where(Order.external_id == order.order_id)) is not None:
        return None
    product_ids = upsert_products(session, order.products)
    now = utcnow()
    order_id = session.execute(
        sa.insert(Order).values(
            external_id=order.order_id, customer_id=customer_id, status="completed", currency=order.currency,
            total=order.total, subtotal=order.subtotal, discount=order.discount, shipping=order.shipping,
            tax=order.tax, refunded=0, coupon=order.coupon, channel=order.channel, placed_at=placed_at,
            properties=properties or {}, created_at=now, updated_at=now,
        ).returning(Order.id)
    ).scalar_one()
    if order.products:
        session.execute(sa.insert(OrderItem), [
            {"order_id": order_id, "customer_id": customer_id, "product_id": product_ids.get(p.sku),
             "sku": p.sku, "name": p.name, "quantity": p.quantity, "price": p.price or 0}
            for p in order.products
        ])
    emit(session, "order.completed", customer_id, {
        "order_id": order_id, "external_id": order.order_id, "total": order.total,
        "currency": order.currency, "placed_at": placed_at.isoformat(),
    })
    return order_id


def record_refund(session: Session, refund: RefundData) -> bool:
    """Apply a refund to its order; False when the order is unknown (the event is still kept)."""
    order = session.scalar(sa.select(Order).where(Order.external_id == refund.order_id).with_for_update())
    if order is None:
        return False
    amount = order.total - order.refunded if refund.amount is None else min(refund.amount, order.total - order.refunded)
    if amount <= 0:
        return True
    order.refunded += amount
    order.status = "refunded" if order.refunded >= order.total else "partially_refunded"
    session.flush()
    emit(session, "order.refunded", order.customer_id, {
        "order_id": order.id, "external_id": order.external_id, "amount": amount, "currency": order.currency,
    })
    return True
