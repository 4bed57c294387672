from datetime import timedelta

import pytest
import sqlalchemy as sa

from clm.customers.consent import record_consent
from clm.customers.merge import merge_customers
from clm.db.base import Base
from clm.outbox.models import OutboxEvent


@pytest.fixture
def writer(api_key_for):
    return api_key_for("customers:read", "customers:write")


def rows_about(db, customer_id):
    """Rows per table that hold `customer_id` in a customer_id column (or are the customer)."""
    out = {}
    for table in Base.metadata.sorted_tables:
        column = table.c.id if table.name == "customers" else table.c.get("customer_id")
        if column is None:
            continue
        count = db.scalar(sa.select(sa.func.count()).select_from(table).where(column == customer_id))
        if count:
            out[table.name] = count
    return out


def test_delete_erases_the_customer_and_every_row_about_them(client, db, shop, writer):
    customer = shop.customer("Hồ Xuân Hương", email="huong@example.vn", phone="0912000222")
    shop.track(customer, "Product Viewed", product_id="tea")
    shop.order(customer, 500000, items=[("tea", "Trà sen", 250000, 2)])
    record_consent(db, customer.id, channel="sms", purpose="marketing", granted=True, source="pos")
    db.commit()
    bystander = shop.customer("Người khác")
    shop.order(bystander, 100000)
    before = rows_about(db, bystander.id)
    assert {"identities", "events", "event_daily", "orders", "order_items", "consents"} <= set(rows_about(db, customer.id))

    r = client.delete(f"/api/v1/customers/{customer.id}", headers=writer)

    assert r.status_code == 204 and r.content == b""
    assert rows_about(db, customer.id) == {"outbox": 1}
    assert rows_about(db, bystander.id) == before
    assert client.get(f"/api/v1/customers/{customer.id}", headers=writer).status_code == 404


def test_delete_records_a_customer_deleted_event_without_personal_data(client, db, shop, writer):
    customer = shop.customer("Hồ Xuân Hương", email="huong@example.vn", phone="0912000222")
    client.delete(f"/api/v1/customers/{customer.id}", headers=writer)
    event = db.scalar(sa.select(OutboxEvent).where(OutboxEvent.topic == "customer.deleted"))
    assert event.customer_id == customer.id
    text = str(event.payload)
    for personal in ("huong", "Hương", "912000222"):
        assert personal not in text


def test_delete_takes_the_profiles_merged_into_the_customer_along(client, db, shop, writer):
    winner, loser = shop.customer("Lý Thu"), shop.customer("Lý Thu", email="thu.old@example.vn")
    merge_customers(db, winner.id, loser.id, "test")
    db.commit()
    client.delete(f"/api/v1/customers/{winner.id}", headers=writer)
    assert rows_about(db, loser.id) == {}
    assert db.scalar(sa.select(sa.func.count()).select_from(Base.metadata.tables["customer_merges"])) == 0


def test_deleting_an_unknown_customer_is_a_404(client, writer):
    assert client.delete("/api/v1/customers/424242", headers=writer).status_code == 404


def test_the_timeline_interleaves_events_and_orders_newest_first(client, shop, writer):
    customer = shop.customer("Châu", at=timedelta(hours=0))
    shop.track(customer, "Product Viewed", at=timedelta(hours=1), product_id="tea")
    shop.order(customer, 1250000, at=timedelta(hours=2))
    shop.track(customer, "Review Written", at=timedelta(hours=3))
    body = client.get(f"/api/v1/customers/{customer.id}/timeline", headers=writer).json()
    summary = [(e["kind"], (e["event"] or {}).get("name") or (e["order"] or {}).get("total_display"))
               for e in body["data"]]
    assert summary == [("event", "Review Written"), ("order", "1.250.000\xa0₫"), ("event", "Product Viewed"),
                       ("event", None)]  # the identify call that made the customer
    assert body["next"] is None


def test_timeline_pages_cover_every_entry_once_even_with_equal_times(client, shop, writer):
    customer = shop.customer("Châu", at=timedelta(hours=-1))
    for i in range(4):
        shop.track(customer, f"Step {i}", at=timedelta(hours=i // 2))
        shop.order(customer, 1000 * (i + 1), at=timedelta(hours=i // 2))
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = client.get(f"/api/v1/customers/{customer.id}/timeline", params=params, headers=writer).json()
        seen += [(e["kind"], (e["event"] or e["order"])["id"]) for e in body["data"]]
        cursor = body["next"]
        if not cursor:
            break
    whole = client.get(f"/api/v1/customers/{customer.id}/timeline", params={"limit": 200}, headers=writer).json()
    assert seen == [(e["kind"], (e["event"] or e["order"])["id"]) for e in whole["data"]]
    assert len(set(seen)) == 9


def test_a_timeline_cursor_from_another_listing_is_a_422(client, shop, writer):
    customer = shop.customer("Châu")
    for i in range(3):
        shop.customer(f"K{i}")
    cursor = client.get("/api/v1/customers", params={"limit": 1}, headers=writer).json()["next"]
    r = client.get(f"/api/v1/customers/{customer.id}/timeline", params={"cursor": cursor}, headers=writer)
    assert r.status_code == 422 and r.json()["error"]["field"] == "cursor"
