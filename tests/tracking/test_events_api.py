from datetime import timedelta

import pytest

from tests.customers.shop import T0, Shop


@pytest.fixture
def shop(db) -> Shop:
    return Shop(db)


@pytest.fixture
def headers(api_key_for):
    return api_key_for("events:read")


def listed(client, headers, **params):
    r = client.get("/api/v1/events", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [(e["name"] or e["type"]) for e in r.json()["data"]]


def test_events_are_listed_newest_first_with_what_was_sent(client, shop, headers):
    customer = shop.customer("An", at=timedelta(minutes=0))
    shop.track(customer, "Product Viewed", at=timedelta(minutes=5), product_id="tea")
    body = client.get("/api/v1/events", headers=headers).json()
    assert [e["name"] or e["type"] for e in body["data"]] == ["Product Viewed", "identify"]
    assert body["data"][0]["properties"] == {"product_id": "tea"}
    assert body["data"][0]["customer_id"] == customer.id


def test_events_filter_by_customer_name_type_and_time(client, shop, headers):
    a, b = shop.customer("A", at=timedelta(hours=-1)), shop.customer("B", at=timedelta(hours=-1))
    shop.track(a, "Signed In", at=timedelta(hours=1))
    shop.track(b, "Signed In", at=timedelta(hours=2))
    shop.track(a, "Cart Viewed", at=timedelta(hours=3))
    assert listed(client, headers, customer_id=a.id) == ["Cart Viewed", "Signed In", "identify"]
    assert listed(client, headers, name="Signed In") == ["Signed In", "Signed In"]
    assert listed(client, headers, type="identify") == ["identify", "identify"]
    assert listed(client, headers, since=(T0 + timedelta(hours=2)).isoformat()) == ["Cart Viewed", "Signed In"]
    assert listed(client, headers, until=(T0 + timedelta(hours=2)).isoformat(), type="track") == ["Signed In"]


def test_naive_times_in_filters_are_taken_as_utc(client, shop, headers):
    customer = shop.customer("A", at=timedelta(hours=-1))
    shop.track(customer, "Late", at=timedelta(hours=5))
    naive = (T0 + timedelta(hours=4)).replace(tzinfo=None).isoformat()
    assert listed(client, headers, since=naive) == ["Late"]


def test_event_pages_cover_every_event_once(client, shop, headers):
    customer = shop.customer("A", at=timedelta(hours=-1))
    for i in range(9):
        shop.track(customer, f"E{i}", at=timedelta(minutes=i // 4))
    seen, cursor = [], None
    while True:
        body = client.get("/api/v1/events", params={"limit": 4, **({"cursor": cursor} if cursor else {})},
                          headers=headers).json()
        seen += [e["id"] for e in body["data"]]
        if not (cursor := body["next"]):
            break
    assert len(seen) == len(set(seen)) == 10


@pytest.mark.parametrize("params,field", [
    ({"type": "click"}, "type"), ({"customer_id": "0"}, "customer_id"), ({"until": "later"}, "until"),
    ({"cursor": "bm9wZQ"}, "cursor"), ({"limit": "-3"}, "limit"), ({"name": "x" * 300}, "name"),
])
def test_a_bad_filter_is_a_422_naming_it(client, headers, params, field):
    r = client.get("/api/v1/events", params=params, headers=headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
