"""The shapes of the orders and products API. Money: integer minor units, an ISO 4217 code, a display text."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from clm.lib.money import format_money


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class OrderItemOut(_Out):
    id: int
    product_id: int | None
    sku: str | None
    name: str | None
    quantity: int
    price: int = Field(description="Unit price in the order currency's minor unit.")


class OrderOut(_Out):
    id: int
    external_id: str = Field(description="The order id the shop sent (Segment's order_id).")
    customer_id: int
    status: str = Field(description="completed, partially_refunded or refunded.")
    currency: str = Field(description="ISO 4217 code, e.g. VND.")
    total: int = Field(description="In the currency's minor unit (VND has none: 1250000 is 1.250.000 ₫).")
    subtotal: int | None
    discount: int
    shipping: int
    tax: int
    refunded: int
    coupon: str | None
    channel: str | None
    placed_at: datetime

    @computed_field(description='The total formatted for people, e.g. "1.250.000 ₫".')
    @property
    def total_display(self) -> str:
        return format_money(self.total, self.currency)


class OrderDetail(OrderOut):
    items: list[OrderItemOut]
    properties: dict[str, Any]


class OrderPage(BaseModel):
    data: list[OrderOut]
    next: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")


class ProductOut(_Out):
    id: int
    sku: str
    name: str | None
    category: str | None
    brand: str | None
    price: int | None = Field(description="In the currency's minor unit.")
    currency: str
    url: str | None
    image_url: str | None
    created_at: datetime
    updated_at: datetime

    @computed_field(description='The price formatted for people, e.g. "250.000 ₫"; null without a price.')
    @property
    def price_display(self) -> str | None:
        return None if self.price is None else format_money(self.price, self.currency)


class ProductDetail(ProductOut):
    properties: dict[str, Any]


class ProductPage(BaseModel):
    data: list[ProductOut]
    next: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")
