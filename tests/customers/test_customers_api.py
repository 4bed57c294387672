from datetime import timedelta

import pytest
import sqlalchemy as sa

from clm.customers.models import Customer, Identity
from clm.outbox.models import OutboxEvent
from tests.customers.shop import T0


@pytest.fixture
def reader(api_key_for):
    return api_key_for("customers:read")


@pytest.fixture
def writer(api_key_for):
    return api_key_for("customers:read", "customers:write")


def names(response):
    assert response.status_code == 200, response.text
    return [c["full_name"] for c in response.json()["data"]]


def test_the_list_shows_live_customers_newest_first(client, shop, reader):
    shop.customer("Nguyễn Văn An")
    shop.customer("Lê Thị Hoa")
    assert names(client.get("/api/v1/customers", headers=reader)) == ["Lê Thị Hoa", "Nguyễn Văn An"]


def test_search_ignores_diacritics_and_case(client, shop, reader):
    shop.customer("Nguyễn Văn A")
    shop.customer("Nguyễn Thị B")
    assert names(client.get("/api/v1/customers", params={"q": "nguyen van a"}, headers=reader)) == ["Nguyễn Văn A"]
    assert names(client.get("/api/v1/customers", params={"q": "NGUYEN"}, headers=reader)) == [
        "Nguyễn Thị B", "Nguyễn Văn A"]


def test_search_needs_every_word_to_match(client, shop, reader):
    shop.customer("Phạm Đức Minh", city="Đà Nẵng")
    assert names(client.get("/api/v1/customers", params={"q": "duc minh"}, headers=reader)) == ["Phạm Đức Minh"]
    assert names(client.get("/api/v1/customers", params={"q": "duc lan"}, headers=reader)) == []


def test_search_finds_a_phone_written_the_vietnamese_way(client, shop, reader):
    shop.customer("Hoàng Yến", phone="+84912345678")
    for q in ("0912345678", "+84912345678", "0912 345 678", "912345678"):
        assert names(client.get("/api/v1/customers", params={"q": q}, headers=reader)) == ["Hoàng Yến"], q


def test_search_finds_an_email_and_treats_like_wildcards_as_text(client, shop, reader):
    shop.customer("Vũ Lan", email="vu_lan@example.vn")
    shop.customer("Vũ Long", email="vuxlong@example.vn")
    assert names(client.get("/api/v1/customers", params={"q": "vu_l"}, headers=reader)) == ["Vũ Lan"]
    assert names(client.get("/api/v1/customers", params={"q": "%"}, headers=reader)) == []


def test_filters_narrow_the_list(client, shop, reader):
    hanoi = shop.customer("Đỗ Hà", city="Hà Nội", email="ha@example.vn", phone="0987000001", at=timedelta(days=1))
    shop.customer("Bùi Sơn", city="Huế", at=timedelta(days=5))
    shop.order(hanoi, 100000, at=timedelta(days=2))
    get = lambda **p: names(client.get("/api/v1/customers", params=p, headers=reader))  # noqa: E731
    assert get(city="Hà Nội") == ["Đỗ Hà"]
    assert get(email="HA@Example.vn") == ["Đỗ Hà"]
    assert get(phone="0987 000 001") == ["Đỗ Hà"]
    assert get(has_orders="true") == ["Đỗ Hà"]
    assert get(has_orders="false") == ["Bùi Sơn"]
    assert get(seen_since=(T0 + timedelta(days=3)).isoformat()) == ["Bùi Sơn"]
    assert get(seen_until=(T0 + timedelta(days=3)).isoformat()) == ["Đỗ Hà"]


def test_the_stage_filter_matches_the_lifecycle_stage(client, db, shop, reader):
    vip = shop.customer("Mai Anh")
    shop.customer("Mai Chi")
    vip.lifecycle_stage = "loyal"
    db.commit()
    assert names(client.get("/api/v1/customers", params={"stage": "loyal"}, headers=reader)) == ["Mai Anh"]


def test_pages_follow_the_next_cursor_to_the_end(client, shop, reader):
    for i in range(7):
        shop.customer(f"Khách {i}")
    seen, cursor = [], None
    while True:
        body = client.get("/api/v1/customers", params={"limit": 3, **({"cursor": cursor} if cursor else {})},
                          headers=reader).json()
        seen += [c["full_name"] for c in body["data"]]
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == [f"Khách {i}" for i in reversed(range(7))]


@pytest.mark.parametrize("params,field", [
    ({"limit": 201}, "limit"), ({"limit": 0}, "limit"), ({"cursor": "garbage!"}, "cursor"),
    ({"email": "not-an-email"}, "email"), ({"phone": "12"}, "phone"), ({"has_orders": "maybe"}, "has_orders"),
    ({"seen_since": "yesterday"}, "seen_since"), ({"q": "a\x00b"}, "q"),
])
def test_a_bad_query_parameter_is_a_422_naming_it(client, reader, params, field):
    r = client.get("/api/v1/customers", params=params, headers=reader)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_merged_customers_are_left_out_of_the_list_and_redirect_to_the_winner(client, shop, reader):
    from clm.customers.merge import merge_customers

    winner, loser = shop.customer("Lý Thu"), shop.customer("Lý Thu (cũ)")
    merge_customers(shop.db, winner.id, loser.id, "test")
    shop.db.commit()
    assert names(client.get("/api/v1/customers", params={"q": "ly thu"}, headers=reader)) == ["Lý Thu"]
    r = client.get(f"/api/v1/customers/{loser.id}", headers=reader, follow_redirects=False)
    assert r.status_code == 308
    assert r.headers["location"] == f"/api/v1/customers/{winner.id}"
    assert r.json()["error"]["merged_into_id"] == winner.id
    assert client.get(f"/api/v1/customers/{loser.id}", headers=reader).json()["id"] == winner.id


def test_a_customer_shows_identities_and_the_consents_in_force(client, shop, writer):
    customer = shop.customer("Đặng Nga", email="nga@example.vn", user_id="shop-42")
    consent = {"channel": "email", "purpose": "marketing", "source": "signup_form"}
    client.post(f"/api/v1/customers/{customer.id}/consents", json={**consent, "granted": True}, headers=writer)
    client.post(f"/api/v1/customers/{customer.id}/consents", json={**consent, "granted": False}, headers=writer)
    body = client.get(f"/api/v1/customers/{customer.id}", headers=writer).json()
    assert (body["full_name"], body["email"]) == ("Đặng Nga", "nga@example.vn")
    assert {(i["kind"], i["value"]) for i in body["identities"]} == {("user_id", "shop-42"),
                                                                     ("email", "nga@example.vn")}
    assert [(c["channel"], c["granted"]) for c in body["consents"]] == [("email", False)]


def test_an_unknown_customer_is_a_404(client, reader):
    r = client.get("/api/v1/customers/999999", headers=reader)
    assert r.status_code == 404
    assert r.json()["error"] == {"code": "not_found", "message": "customer 999999 does not exist", "field": None}


@pytest.mark.parametrize("bad_id", ["abc", "0", "-1", str(2**63), "99999999999999999999999"])
def test_an_id_that_cannot_be_one_is_a_422_not_a_server_error(client, reader, bad_id):
    r = client.get(f"/api/v1/customers/{bad_id}", headers=reader)
    assert r.status_code == 422 and r.json()["error"]["field"] == "customer_id"


def test_patch_normalises_contacts_the_way_identify_does(client, db, shop, writer):
    customer = shop.customer("Cao Lan")
    r = client.patch(f"/api/v1/customers/{customer.id}", headers=writer,
                     json={"email": " Lan.Cao@Example.COM ", "phone": "0912 000 111", "birthday": "15/08/1990",
                           "traits": {"plan": "gold"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["email"], body["phone"], body["birthday"]) == ("lan.cao@example.com", "+84912000111", "1990-08-15")
    assert body["traits"] == {"plan": "gold"}
    assert {"email", "phone"} <= {i["kind"] for i in body["identities"]}
    topics = db.execute(sa.select(OutboxEvent.topic, OutboxEvent.payload)
                        .where(OutboxEvent.customer_id == customer.id, OutboxEvent.topic == "customer.updated")).all()
    assert topics[-1].payload["fields"] == ["email", "phone", "birthday", "traits"]


@pytest.mark.parametrize("body,field", [
    ({"email": "nope"}, "email"), ({"phone": "12"}, "phone"), ({"birthday": "tomorrow"}, "birthday"),
    ({"traits": {"email": "nope"}}, "traits.email"), ({"colour": "red"}, "colour"),
    ({"owner_id": 424242}, "owner_id"), ({"city": "x" * 129}, "city"), ({"traits": {"k": "a\x00"}}, "traits.k"),
])
def test_patch_refuses_invalid_fields_with_a_422_naming_the_field(client, shop, writer, body, field):
    customer = shop.customer("Cao Lan")
    r = client.patch(f"/api/v1/customers/{customer.id}", json=body, headers=writer)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_patch_clears_fields_sent_as_null_and_removes_null_traits(client, shop, writer):
    customer = shop.customer("Tô Vy", city="Huế", plan="gold", pet="cat")
    r = client.patch(f"/api/v1/customers/{customer.id}", json={"city": None, "traits": {"pet": None}}, headers=writer)
    assert (r.json()["city"], r.json()["traits"]) == (None, {"plan": "gold"})


def test_patching_a_name_updates_what_search_finds(client, shop, writer):
    customer = shop.customer("Tô Vy")
    client.patch(f"/api/v1/customers/{customer.id}", json={"full_name": "Trịnh Tường Vy"}, headers=writer)
    assert names(client.get("/api/v1/customers", params={"q": "trinh tuong"}, headers=writer)) == ["Trịnh Tường Vy"]


def test_patching_the_given_name_keeps_the_middle_name_of_the_full_name(client, shop, writer):
    customer = shop.customer("Cao Thị Lan")
    body = client.patch(f"/api/v1/customers/{customer.id}", json={"given_name": "Hoa"}, headers=writer).json()
    assert (body["full_name"], body["given_name"], body["family_name"]) == ("Cao Thị Hoa", "Hoa", "Cao")


def test_patch_refuses_an_email_that_belongs_to_another_customer(client, shop, writer):
    shop.customer("A", email="taken@example.vn")
    other = shop.customer("B")
    r = client.patch(f"/api/v1/customers/{other.id}", json={"email": "taken@example.vn"}, headers=writer)
    assert r.status_code == 409
    assert r.json()["error"]["field"] == "email"


def test_writes_to_a_merged_customer_are_a_409_naming_the_winner(client, shop, writer):
    from clm.customers.merge import merge_customers

    winner, loser = shop.customer("X"), shop.customer("Y")
    merge_customers(shop.db, winner.id, loser.id, "test")
    shop.db.commit()
    r = client.patch(f"/api/v1/customers/{loser.id}", json={"city": "Huế"}, headers=writer)
    assert r.status_code == 409 and r.json()["error"]["merged_into_id"] == winner.id
    assert client.delete(f"/api/v1/customers/{loser.id}", headers=writer).status_code == 409


def test_post_creates_a_customer_recognised_by_their_identities(client, db, writer):
    r = client.post("/api/v1/customers", headers=writer,
                    json={"user_id": "pos-7", "full_name": "Ngô Bảo Châu", "phone": "0903 123 456"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/api/v1/customers/{body['id']}"
    assert (body["family_name"], body["given_name"], body["phone"]) == ("Ngô", "Châu", "+84903123456")
    assert db.scalar(sa.select(Identity.customer_id).where(Identity.kind == "user_id", Identity.value == "pos-7")) \
        == body["id"]
    assert db.scalar(sa.select(OutboxEvent.topic).where(OutboxEvent.customer_id == body["id"])) == "customer.created"


def test_post_needs_a_way_to_recognise_the_customer(client, writer):
    r = client.post("/api/v1/customers", json={"full_name": "Ai Đó"}, headers=writer)
    assert r.status_code == 422


def test_post_refuses_a_user_id_that_exists(client, shop, writer):
    shop.customer("A", user_id="u-1")
    r = client.post("/api/v1/customers", json={"user_id": "u-1"}, headers=writer)
    assert r.status_code == 409 and r.json()["error"]["field"] == "user_id"


def test_an_invalid_json_body_is_a_json_error(client, shop, writer):
    customer = shop.customer("A")
    r = client.patch(f"/api/v1/customers/{customer.id}", content=b"{nope",
                     headers={**writer, "content-type": "application/json"})
    assert r.status_code in (400, 422) and "error" in r.json()


def test_a_failed_write_changes_nothing(client, db, shop, writer):
    customer = shop.customer("Cao Lan", city="Huế")
    client.patch(f"/api/v1/customers/{customer.id}", json={"city": "Vinh", "email": "nope"}, headers=writer)
    db.expire_all()
    assert db.get(Customer, customer.id).city == "Huế"
