"""Recording products, orders and refunds. Idempotent: the same order twice is recorded once."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.commerce.events import OrderData, ProductData, RefundData
from clm.commerce.models import Order, OrderItem, Product
from clm.db.bulk import insert_rows
from clm.db.idlist import list_value, one_of
from clm.db.upsert import insert_for
from clm.lib.clock import utcnow
from clm.outbox.service import emit, emit_many

_orders = Order.__table__
_ORDER_COLUMNS = ("external_id", "customer_id", "status", "currency", "total", "subtotal", "discount", "shipping",
                  "tax", "refunded", "coupon", "channel", "placed_at", "properties", "created_at", "updated_at")
_ITEM_COLUMNS = ("order_id", "customer_id", "product_id", "sku", "name", "quantity", "price")
_products = Product.__table__


_FIELDS = ("name", "category", "brand", "price", "url", "image_url")
# Ingestion reads these for every request: fixed statements with the keys bound as one parameter.
_KNOWN_PRODUCTS = {d: sa.select(_products.c.sku, _products.c.id, *(_products.c[f] for f in _FIELDS))
                   .where(one_of(_products.c.sku, "skus", d, sa.String)) for d in ("sqlite", "postgresql")}
_KNOWN_ORDERS = {d: sa.select(_orders.c.external_id).where(one_of(_orders.c.external_id, "ids", d, sa.String))
                 for d in ("sqlite", "postgresql")}
_ORDER_IDS = {d: sa.select(_orders.c.external_id, _orders.c.id).where(one_of(_orders.c.external_id, "ids", d, sa.String))
              for d in ("sqlite", "postgresql")}


def upsert_products(session: Session, products: list[ProductData]) -> dict[str, int]:
    """Create unknown products and refresh known ones; returns sku -> product id.

    Product events repeat the same catalogue data all day, so rows are compared first and only new or
    changed products are written. A field an event omits keeps what we knew.
    """
    if not products:
        return {}
    latest: dict[str, ProductData] = {p.sku: p for p in products}
    table = Product.__table__
    dialect = session.get_bind().dialect.name
    known = {row.sku: row for row in session.execute(_KNOWN_PRODUCTS[dialect], {"skus": list_value(list(latest), dialect)})}
    ids = {sku: row.id for sku, row in known.items()}
    now = utcnow()
    rows = []
    for p in latest.values():
        old = known.get(p.sku)
        if old is not None and all(getattr(p, f) is None or getattr(p, f) == getattr(old, f) for f in _FIELDS):
            continue
        rows.append({"sku": p.sku, "name": p.name, "category": p.category, "brand": p.brand, "price": p.price,
                     "currency": p.currency, "url": p.url, "image_url": p.image_url, "properties": {},
                     "created_at": now, "updated_at": now})
    if rows:
        stmt = insert_for(session, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=["sku"],
            set_={f: sa.func.coalesce(stmt.excluded[f], table.c[f]) for f in _FIELDS} | {"updated_at": now},
        )
        session.execute(stmt, rows)
        new = [r["sku"] for r in rows if r["sku"] not in ids]
        if new:
            ids.update(session.execute(sa.select(table.c.sku, table.c.id).where(table.c.sku.in_(new))).all())
    return ids


def record_orders(session: Session, orders: list[tuple[int, OrderData, datetime, dict]]) -> list[int]:
    """Record completed orders (customer id, order, placed at, properties) in a few bulk statements.

    Orders already recorded (same order id) are skipped; returns the ids of the new orders.
    """
    if not orders:
        return []
    wanted = [o.order_id for _, o, _, _ in orders]
    dialect = session.get_bind().dialect.name
    seen = set(session.scalars(_KNOWN_ORDERS[dialect], {"ids": list_value(wanted, dialect)}))
    fresh = []
    for entry in orders:
        if entry[1].order_id not in seen:
            seen.add(entry[1].order_id)
            fresh.append(entry)
    if not fresh:
        return []
    product_ids = upsert_products(session, [p for _, o, _, _ in fresh for p in o.products])
    now = utcnow()
    # One bulk INSERT, then the new ids read back by their unique order ids: RETURNING in parameter order
    # costs a statement per order on SQLite, and ingestion records orders with every request.
    insert_rows(session, _orders, _ORDER_COLUMNS, [
        (o.order_id, cid, "completed", o.currency, o.total, o.subtotal, o.discount, o.shipping, o.tax, 0,
         o.coupon, o.channel, placed_at, props or {}, now, now)
        for cid, o, placed_at, props in fresh])
    id_of = dict(session.execute(_ORDER_IDS[dialect], {"ids": list_value([o.order_id for _, o, _, _ in fresh], dialect)}).all())
    ids = [id_of[o.order_id] for _, o, _, _ in fresh]
    insert_rows(session, OrderItem.__table__, _ITEM_COLUMNS, [
        (oid, cid, product_ids.get(p.sku), p.sku, p.name, p.quantity, p.price or 0)
        for oid, (cid, o, _, _) in zip(ids, fresh, strict=True) for p in o.products])
    emit_many(session, [
        ("order.completed", cid, {"order_id": oid, "external_id": o.order_id, "total": o.total,
                                  "currency": o.currency, "placed_at": placed_at.isoformat()})
        for oid, (cid, o, placed_at, _) in zip(ids, fresh, strict=True)
    ])
    return list(ids)


def record_order(session: Session, customer_id: int, order: OrderData, placed_at: datetime,
                 properties: dict | None = None) -> int | None:
    """Record one completed order; returns its id, or None when it was already recorded."""
    ids = record_orders(session, [(customer_id, order, placed_at, properties or {})])
    return ids[0] if ids else None


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
