"""Reading Segment's semantic e-commerce events (the V2 spec) into typed order and product data.

Parsing is pure and happens before anything is written, so a malformed order rejects only its event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clm.lib.errors import FieldError
from clm.lib.money import InvalidMoney, check_currency, to_minor

ORDER_COMPLETED = "Order Completed"
ORDER_REFUNDED = "Order Refunded"
PRODUCT_EVENTS = {"Product Viewed", "Product Added", "Product Removed", "Product Clicked"}
CART_EVENTS = {"Checkout Started", "Cart Viewed"}
COMMERCE_EVENTS = {ORDER_COMPLETED, ORDER_REFUNDED, *PRODUCT_EVENTS, *CART_EVENTS}


@dataclass
class ProductData:
    sku: str
    name: str | None = None
    category: str | None = None
    brand: str | None = None
    price: int | None = None
    currency: str = "VND"
    url: str | None = None
    image_url: str | None = None
    quantity: int = 1


@dataclass
class OrderData:
    order_id: str
    currency: str
    total: int
    subtotal: int | None = None
    discount: int = 0
    shipping: int = 0
    tax: int = 0
    coupon: str | None = None
    channel: str | None = None
    products: list[ProductData] = field(default_factory=list)


@dataclass
class RefundData:
    order_id: str
    currency: str | None
    amount: int | None  # None: the whole order


def _money(props: dict[str, Any], key: str, currency: str, prefix: str) -> int | None:
    value = props.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise FieldError(f"{prefix}.{key}", "must be a number")
    try:
        amount = to_minor(value, currency)
    except InvalidMoney as exc:
        raise FieldError(f"{prefix}.{key}", str(exc)) from None
    if amount < 0:
        raise FieldError(f"{prefix}.{key}", "must not be negative")
    return amount


def _currency(props: dict[str, Any], default: str, prefix: str) -> str:
    try:
        return check_currency(props.get("currency") or default)
    except InvalidMoney as exc:
        raise FieldError(f"{prefix}.currency", str(exc)) from None


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)[:512]


def parse_product(props: dict[str, Any], currency: str, prefix: str) -> ProductData:
    sku = props.get("sku") or props.get("product_id") or props.get("id")
    if sku is None or sku == "":
        raise FieldError(f"{prefix}.product_id", "is required (or sku)")
    quantity = props.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int | float) or quantity < 0 or quantity != int(quantity):
        raise FieldError(f"{prefix}.quantity", "must be a whole number of at least 0")
    return ProductData(
        sku=str(sku)[:255], name=_text(props.get("name")), category=_text(props.get("category")),
        brand=_text(props.get("brand")), price=_money(props, "price", currency, prefix), currency=currency,
        url=_text(props.get("url")), image_url=_text(props.get("image_url")), quantity=int(quantity),
    )


def parse_products(props: dict[str, Any], currency: str, prefix: str) -> list[ProductData]:
    products = props.get("products") or []
    if not isinstance(products, list):
        raise FieldError(f"{prefix}.products", "must be a list")
    out = []
    for i, item in enumerate(products):
        if not isinstance(item, dict):
            raise FieldError(f"{prefix}.products[{i}]", "must be an object")
        out.append(parse_product(item, currency, f"{prefix}.products[{i}]"))
    return out


def parse_order(props: dict[str, Any], default_currency: str, prefix: str = "properties") -> OrderData:
    order_id = props.get("order_id") or props.get("orderId") or props.get("checkout_id")
    if order_id is None or order_id == "":
        raise FieldError(f"{prefix}.order_id", "is required for Order Completed")
    currency = _currency(props, default_currency, prefix)
    products = parse_products(props, currency, prefix)
    total = _money(props, "total", currency, prefix)
    if total is None:
        total = _money(props, "revenue", currency, prefix)
    if total is None:
        total = sum((p.price or 0) * p.quantity for p in products)
    return OrderData(
        order_id=str(order_id)[:255], currency=currency, total=total,
        subtotal=_money(props, "subtotal", currency, prefix),
        discount=_money(props, "discount", currency, prefix) or 0,
        shipping=_money(props, "shipping", currency, prefix) or 0,
        tax=_money(props, "tax", currency, prefix) or 0,
        coupon=_text(props.get("coupon")), channel=_text(props.get("affiliation") or props.get("channel")),
        products=products,
    )


def parse_refund(props: dict[str, Any], default_currency: str, prefix: str = "properties") -> RefundData:
    order_id = props.get("order_id") or props.get("orderId")
    if order_id is None or order_id == "":
        raise FieldError(f"{prefix}.order_id", "is required for Order Refunded")
    currency = _currency(props, default_currency, prefix)
    amount = _money(props, "total", currency, prefix)
    if amount is None:
        amount = _money(props, "revenue", currency, prefix)
    return RefundData(order_id=str(order_id)[:255], currency=currency if props.get("currency") else None, amount=amount)


def parse_commerce(name: str, props: dict[str, Any], default_currency: str):
    """Typed data for a semantic e-commerce event, or None for any other event."""
    if name == ORDER_COMPLETED:
        return parse_order(props, default_currency)
    if name == ORDER_REFUNDED:
        return parse_refund(props, default_currency)
    if name in PRODUCT_EVENTS:
        currency = _currency(props, default_currency, "properties")
        return [parse_product(props, currency, "properties")]
    if name in CART_EVENTS:
        return parse_products(props, _currency(props, default_currency, "properties"), "properties")
    return None
