"""The orders and products API: /api/v1/orders and /api/v1/products."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from clm.commerce import queries
from clm.commerce.schemas import OrderDetail, OrderOut, OrderPage, ProductDetail, ProductOut, ProductPage
from clm.web.api_docs import MAX_ID, Cursor, Id, Instant, Limit, error_responses, text_param
from clm.web.deps import get_session, require_scope

router = APIRouter(tags=["commerce"])
orders_read = [Depends(require_scope("orders:read"))]
products_read = [Depends(require_scope("products:read"))]

OrderStatus = Literal["completed", "partially_refunded", "refunded"]


@router.get("/orders", response_model=OrderPage, summary="List orders", responses=error_responses(422),
            dependencies=orders_read)
def list_orders(
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this customer's orders.")] = None,
    status: Annotated[OrderStatus | None, Query(description="Only orders in this status.")] = None,
    since: Annotated[Instant | None, Query(description="Placed at or after (ISO 8601).")] = None,
    until: Annotated[Instant | None, Query(description="Placed before.")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
    session: Session = Depends(get_session),
) -> OrderPage:
    """Orders matching every filter, newest placed first. Money is in minor units with a display text."""
    rows, next_cursor = queries.list_orders(session, customer_id=customer_id, status=status, since=since,
                                            until=until, after=cursor, limit=limit)
    return OrderPage(data=[OrderOut.model_validate(o) for o in rows], next=next_cursor)


@router.get("/orders/{order_id}", response_model=OrderDetail, summary="Get an order with its items",
            responses=error_responses(404, 422), dependencies=orders_read)
def get_order(order_id: Id, session: Session = Depends(get_session)) -> OrderDetail:
    order, items = queries.get_order(session, order_id)
    return OrderDetail(**OrderOut.model_validate(order).model_dump(exclude={"total_display"}),
                       properties=order.properties or {}, items=items)


@router.get("/products", response_model=ProductPage, summary="List products", responses=error_responses(422),
            dependencies=products_read)
def list_products(
    sku: Annotated[str | None, text_param("Only this SKU (the product_id events send).")] = None,
    category: Annotated[str | None, text_param("Only this category, exactly.")] = None,
    brand: Annotated[str | None, text_param("Only this brand, exactly.")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
    session: Session = Depends(get_session),
) -> ProductPage:
    """Products matching every filter, in the order they were first seen."""
    rows, next_cursor = queries.list_products(session, sku=sku, category=category, brand=brand,
                                              after=cursor, limit=limit)
    return ProductPage(data=[ProductOut.model_validate(p) for p in rows], next=next_cursor)


@router.get("/products/{product_id}", response_model=ProductDetail, summary="Get a product",
            responses=error_responses(404, 422), dependencies=products_read)
def get_product(product_id: Id, session: Session = Depends(get_session)) -> ProductDetail:
    return ProductDetail.model_validate(queries.get_product(session, product_id))
