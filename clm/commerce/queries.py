"""Reading orders and products back for the API and the dashboard: filtered, in keyset pages."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.commerce.models import Order, OrderItem, Product
from clm.lib import cursor
from clm.lib.clock import as_utc
from clm.lib.errors import NotFound


def list_orders(session: Session, *, customer_id: int | None = None, status: str | None = None,
                since: datetime | None = None, until: datetime | None = None, after: str | None = None,
                limit: int = 50) -> tuple[list[Order], str | None]:
    """Orders matching every filter, newest placed first; `since` inclusive, `until` exclusive."""
    query = sa.select(Order)
    if customer_id is not None:
        query = query.where(Order.customer_id == customer_id)
    if status is not None:
        query = query.where(Order.status == status)
    if since is not None:
        query = query.where(Order.placed_at >= as_utc(since))
    if until is not None:
        query = query.where(Order.placed_at < as_utc(until))
    return cursor.page_newest_first(session, query, Order.placed_at, Order.id, after, limit)


def get_order(session: Session, order_id: int) -> tuple[Order, list[OrderItem]]:
    """The order and its items (in the order they were sent)."""
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound("order", order_id)
    items = list(session.scalars(sa.select(OrderItem).where(OrderItem.order_id == order_id).order_by(OrderItem.id)))
    return order, items


def list_products(session: Session, *, sku: str | None = None, category: str | None = None,
                  brand: str | None = None, after: str | None = None, limit: int = 50) -> tuple[list[Product], str | None]:
    """Products matching every filter, in the order they were first seen."""
    query = sa.select(Product)
    for column, value in ((Product.sku, sku), (Product.category, category), (Product.brand, brand)):
        if value is not None:
            query = query.where(column == value)
    position = cursor.read(after, int)
    if position:
        query = query.where(Product.id > position[0])
    rows = list(session.scalars(query.order_by(Product.id).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], cursor.encode(rows[limit - 1].id)


def get_product(session: Session, product_id: int) -> Product:
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound("product", product_id)
    return product
