"""The official segment-analytics-python client, unmodified, pointed at a clm server on a real port."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from segment.analytics.client import Client
from segment.analytics.request import APIError

from clm.commerce.models import Order
from clm.customers.models import Customer, Identity
from clm.tracking.models import Event


@pytest.fixture
def server_url(live_server):
    return live_server


def test_the_official_segment_client_delivers_every_call(server_url, db, write_key):
    errors = []
    client = Client(write_key, host=server_url, sync_mode=True, on_error=lambda e, batch: errors.append(e))
    client.identify("seg-1", {"email": "chi@example.vn", "phone": "0912 000 111", "name": "Trần Thị Chi"})
    client.track("seg-1", "Product Viewed", {"product_id": "ao-dai", "price": 890000})
    client.page("seg-1", "Shop", "Áo dài")
    client.screen("seg-1", "App", "Home")
    client.group("seg-1", "shop-42", {"name": "Cửa hàng 42"})
    client.track("seg-1", "Order Completed", {"order_id": "SEG-1", "total": 890000, "currency": "VND",
                                              "products": [{"product_id": "ao-dai", "price": 890000, "quantity": 1}]})
    client.alias("seg-1", "seg-1-new")
    client.flush()
    assert errors == []

    customer_id = db.scalar(sa.select(Identity.customer_id).where(Identity.value == "seg-1"))
    types = sorted(db.scalars(sa.select(Event.type).where(Event.customer_id == customer_id)))
    assert types == ["alias", "group", "identify", "page", "screen", "track", "track"]
    assert db.get(Customer, customer_id).phone == "+84912000111"
    assert db.scalar(sa.select(Order.total).where(Order.external_id == "SEG-1")) == 890000
    assert db.scalar(sa.select(Identity.customer_id).where(Identity.value == "seg-1-new")) == customer_id


def test_the_client_in_batching_mode_with_gzip_loses_nothing(server_url, db, write_key):
    errors = []
    client = Client(write_key, host=server_url, gzip=True, upload_size=50, on_error=lambda e, b: errors.append(e))
    for i in range(120):
        client.track(f"bulk-{i % 7}", "Item Browsed", {"i": i})
    client.flush()
    client.shutdown()
    assert errors == []
    assert db.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.name == "Item Browsed")) == 120


def test_a_wrong_write_key_is_reported_to_the_client(server_url):
    client = Client("not-a-key", host=server_url, sync_mode=True, max_retries=0)
    with pytest.raises(APIError) as raised:
        client.track("x", "y")
    assert raised.value.status == 401 and "write key" in raised.value.message
