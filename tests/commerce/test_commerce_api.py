from datetime import timedelta

import pytest

from tests.customers.shop import T0


@pytest.fixture
def headers(api_key_for):
    return api_key_for("orders:read", "products:read")


def test_an_order_shows_money_in_minor_units_with_a_display_text(client, shop, headers):
    customer = shop.customer("Quách Tĩnh")
    order = shop.order(customer, 1250000, items=[("tea", "Trà sen", 250000, 5)])
    body = client.get(f"/api/v1/orders/{order.id}", headers=headers).json()
    assert (body["total"], body["currency"], body["total_display"]) == (1250000, "VND", "1.250.000\xa0₫")
    assert [(i["sku"], i["name"], i["quantity"], i["price"]) for i in body["items"]] == [("tea", "Trà sen", 5, 250000)]
    assert body["customer_id"] == customer.id


def test_dollar_orders_are_cents_and_display_as_dollars(client, shop, headers):
    order = shop.order(shop.customer("Tom"), 25.5, currency="USD")
    body = client.get(f"/api/v1/orders/{order.id}", headers=headers).json()
    assert (body["total"], body["total_display"]) == (2550, "25,50\xa0US$")


def test_orders_are_listed_newest_first_and_filtered(client, shop, headers):
    a, b = shop.customer("A"), shop.customer("B")
    first = shop.order(a, 100, at=timedelta(days=1))
    second = shop.order(b, 200, at=timedelta(days=2))
    third = shop.order(a, 300, at=timedelta(days=3))
    shop.track(a, "Order Refunded", at=timedelta(days=4), order_id=third.external_id)
    ids = lambda **p: [o["id"] for o in client.get("/api/v1/orders", params=p, headers=headers).json()["data"]]  # noqa: E731
    assert ids() == [third.id, second.id, first.id]
    assert ids(customer_id=a.id) == [third.id, first.id]
    assert ids(status="refunded") == [third.id]
    assert ids(since=(T0 + timedelta(days=2)).isoformat(), until=(T0 + timedelta(days=3)).isoformat()) == [second.id]


def test_order_pages_follow_the_cursor_through_orders_placed_at_the_same_time(client, shop, headers):
    customer = shop.customer("A")
    made = [shop.order(customer, 1000 + i, at=timedelta(hours=i // 3)).id for i in range(7)]
    seen, cursor = [], None
    while True:
        body = client.get("/api/v1/orders", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                          headers=headers).json()
        seen += [o["id"] for o in body["data"]]
        if not (cursor := body["next"]):
            break
    assert sorted(seen) == sorted(made) and len(seen) == 7


def test_an_unknown_order_or_product_is_a_404(client, headers):
    assert client.get("/api/v1/orders/31337", headers=headers).json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/products/31337", headers=headers).status_code == 404


@pytest.mark.parametrize("path,params,field", [
    ("/api/v1/orders", {"status": "lost"}, "status"), ("/api/v1/orders", {"customer_id": "me"}, "customer_id"),
    ("/api/v1/orders", {"since": "soon"}, "since"), ("/api/v1/orders", {"limit": 1000}, "limit"),
    ("/api/v1/products", {"cursor": "eyJ"}, "cursor"), ("/api/v1/orders/0", {}, "order_id"),
])
def test_bad_parameters_are_a_422_naming_them(client, headers, path, params, field):
    r = client.get(path, params=params, headers=headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_products_show_their_price_and_filter_by_category(client, shop, headers):
    customer = shop.customer("A")
    shop.track(customer, "Product Viewed", product_id="tea", name="Trà sen", price=250000, category="Trà")
    shop.track(customer, "Product Viewed", product_id="cup", name="Chén", category="Gốm")
    body = client.get("/api/v1/products", params={"category": "Trà"}, headers=headers).json()
    assert [(p["sku"], p["price"], p["price_display"]) for p in body["data"]] == [("tea", 250000, "250.000\xa0₫")]
    cup = client.get("/api/v1/products", params={"sku": "cup"}, headers=headers).json()["data"][0]
    assert cup["price_display"] is None
    assert client.get(f"/api/v1/products/{cup['id']}", headers=headers).json()["name"] == "Chén"
