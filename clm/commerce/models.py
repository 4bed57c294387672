"""Products, orders and order items. Money is an integer in the currency's minor unit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clm.db.base import Base, BigId, Json, UTCDateTime
from clm.lib.clock import utcnow


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sku: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str | None] = mapped_column(sa.String(512))
    category: Mapped[str | None] = mapped_column(sa.String(255))
    brand: Mapped[str | None] = mapped_column(sa.String(255))
    price: Mapped[int | None] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    url: Mapped[str | None] = mapped_column(sa.Text)
    image_url: Mapped[str | None] = mapped_column(sa.Text)
    properties: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (sa.Index("ix_orders_customer_time", "customer_id", "placed_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(sa.String(24))  # completed, refunded, partially_refunded
    currency: Mapped[str] = mapped_column(sa.String(3))
    total: Mapped[int] = mapped_column(sa.BigInteger)
    subtotal: Mapped[int | None] = mapped_column(sa.BigInteger)
    discount: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    shipping: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    tax: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    refunded: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    coupon: Mapped[str | None] = mapped_column(sa.String(255))
    channel: Mapped[str | None] = mapped_column(sa.String(64))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    properties: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OrderItem(Base):
    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(sa.ForeignKey("products.id", ondelete="SET NULL"), index=True)
    sku: Mapped[str | None] = mapped_column(sa.String(255))
    name: Mapped[str | None] = mapped_column(sa.String(512))
    quantity: Mapped[int] = mapped_column(sa.Integer, default=1)
    price: Mapped[int] = mapped_column(sa.BigInteger)
