from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from clm.commerce.models import Order, OrderItem, Product
from clm.customers.models import Customer, CustomerMerge, Identity
from clm.outbox.models import OutboxEvent
from clm.tracking.models import Event, EventDaily


def post(client, key, path, body, **kw):
    return client.post(f"/v1/{path}", json=body, auth=(key, ""), **kw)


def count(db, model, *where):
    return db.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_it_creates_a_customer_with_normalised_contacts_from_identify(client, db, write_key):
    r = post(client, write_key, "identify", {
        "userId": "u1", "messageId": "m1",
        "traits": {"email": "An.Nguyen@Example.com", "phone": "0912 345 678", "name": "Nguyễn Văn An",
                   "city": "Hà Nội", "plan": "gold"},
    })
    assert r.status_code == 200, r.text
    customer = db.scalar(sa.select(Customer).join(Identity).where(Identity.value == "u1"))
    assert customer.email == "an.nguyen@example.com"
    assert customer.phone == "+84912345678"
    assert (customer.family_name, customer.given_name) == ("Nguyễn", "An")
    assert customer.traits == {"plan": "gold"}
    kinds = set(db.scalars(sa.select(Identity.kind).where(Identity.customer_id == customer.id)))
    assert kinds == {"user_id", "email", "phone"}


def test_a_retried_batch_creates_nothing_twice(client, db, write_key):
    batch = {"batch": [
        {"type": "track", "userId": "u2", "event": "Product Viewed", "messageId": f"b-{i}",
         "properties": {"product_id": "p1", "price": 100000}} for i in range(5)
    ]}
    first = post(client, write_key, "batch", batch).json()
    second = post(client, write_key, "batch", batch).json()
    assert (first["accepted"], second["accepted"], second["duplicates"]) == (5, 0, 5)
    assert count(db, Event, Event.message_id.like("b-%")) == 5
    assert count(db, OutboxEvent, OutboxEvent.topic == "customer.created") == 1
    assert db.scalar(sa.select(EventDaily.count).where(EventDaily.name == "Product Viewed")) == 5


def test_one_bad_event_in_a_batch_does_not_lose_the_others(client, db, write_key):
    batch = {"batch": [
        {"type": "track", "userId": "u3", "event": "Signed Up", "messageId": "ok-1"},
        {"type": "track", "userId": "u3", "messageId": "bad-1"},
        {"type": "identify", "userId": "u3", "messageId": "bad-2", "traits": {"email": "not-an-email"}},
        {"type": "track", "userId": "u3", "event": "Order Completed", "messageId": "bad-3", "properties": {}},
        {"type": "track", "userId": "u3", "event": "Signed In", "messageId": "ok-2"},
    ]}
    body = post(client, write_key, "batch", batch).json()
    assert body["accepted"] == 2
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (1, "batch[1].event"), (2, "batch[2].traits.email"), (3, "batch[3].properties.order_id")
    ]
    assert set(db.scalars(sa.select(Event.message_id))) == {"ok-1", "ok-2"}


def test_a_single_bad_call_is_a_400_naming_the_field(client, write_key):
    r = post(client, write_key, "identify", {"userId": "u", "traits": {"phone": "12"}})
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "traits.phone"


def test_malformed_json_and_bad_keys_get_json_errors(client, write_key):
    r = client.post("/v1/track", content=b"{nope", auth=(write_key, ""), headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = post(client, "wrong-key", "track", {"userId": "u", "event": "e"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = client.post("/v1/track", json={"userId": "u", "event": "e"})
    assert r.status_code == 401


def test_oversized_events_and_batches_are_refused(client, db, write_key):
    big = {"type": "track", "userId": "u", "event": "e", "messageId": "big", "properties": {"x": "a" * 33_000}}
    body = post(client, write_key, "batch", {"batch": [big, {**big, "messageId": "small", "properties": {}}]}).json()
    assert body["accepted"] == 1 and body["rejected"][0]["message"].startswith("message is larger than 32 KB")
    r = post(client, write_key, "batch", {"batch": [{**big, "messageId": str(i), "properties": {"x": "a" * 20_000}}
                                                    for i in range(30)]})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    assert count(db, Event) == 1


def test_clock_skew_is_corrected_from_sent_at(client, db, write_key):
    now = datetime.now(UTC)
    device_clock = now + timedelta(hours=3)  # the phone's clock is 3 hours fast
    post(client, write_key, "batch", {
        "sentAt": device_clock.isoformat(),
        "batch": [{"type": "track", "userId": "u", "event": "e", "messageId": "skew",
                   "timestamp": (device_clock - timedelta(minutes=10)).isoformat()}],
    })
    stored = db.scalar(sa.select(Event.timestamp).where(Event.message_id == "skew"))
    assert abs((stored - (now - timedelta(minutes=10))).total_seconds()) < 5


def test_order_completed_records_the_order_its_items_and_products(client, db, write_key):
    post(client, write_key, "track", {
        "userId": "buyer", "event": "Order Completed", "messageId": "o1",
        "properties": {"order_id": "SO-1", "total": 1250000, "currency": "VND", "coupon": "TET",
                       "products": [{"product_id": "tea", "name": "Trà sen", "price": 250000, "quantity": 5}]},
    })
    order = db.scalar(sa.select(Order).where(Order.external_id == "SO-1"))
    assert (order.total, order.currency, order.status, order.coupon) == (1250000, "VND", "completed", "TET")
    item = db.scalar(sa.select(OrderItem).where(OrderItem.order_id == order.id))
    assert (item.sku, item.quantity, item.price) == ("tea", 5, 250000)
    assert db.scalar(sa.select(Product.name).where(Product.sku == "tea")) == "Trà sen"
    assert count(db, OutboxEvent, OutboxEvent.topic == "order.completed") == 1

    post(client, write_key, "track", {"userId": "buyer", "event": "Order Refunded", "messageId": "r1",
                                      "properties": {"order_id": "SO-1", "total": 250000}})
    db.refresh(order)
    assert (order.refunded, order.status) == (250000, "partially_refunded")


def test_usd_amounts_are_stored_in_cents(client, db, write_key):
    post(client, write_key, "track", {"userId": "b", "event": "Order Completed", "messageId": "usd",
                                      "properties": {"order_id": "US-1", "revenue": 25.5, "currency": "usd"}})
    assert db.scalar(sa.select(Order.total).where(Order.external_id == "US-1")) == 2550


def test_identify_links_the_anonymous_visitor_to_the_known_user(client, db, write_key):
    post(client, write_key, "track", {"anonymousId": "anon-1", "event": "Product Viewed", "messageId": "a1",
                                      "properties": {"product_id": "p"}})
    post(client, write_key, "identify", {"userId": "user-1", "messageId": "a2", "traits": {"email": "x@y.vn"}})
    post(client, write_key, "identify", {"userId": "user-1", "anonymousId": "anon-1", "messageId": "a3"})
    owners = set(db.scalars(sa.select(Event.customer_id).where(Event.message_id.in_(["a1", "a2", "a3"]))))
    assert len(owners) == 1
    merge = db.scalar(sa.select(CustomerMerge))
    assert merge.winner_id == owners.pop()
    assert {"kind": "anonymous_id", "value": "anon-1"} in merge.moved["identities"]
    assert merge.moved["rows"]["events"] == 1


def test_alias_merges_the_two_profiles(client, db, write_key):
    post(client, write_key, "identify", {"userId": "old-id", "messageId": "x1", "traits": {"city": "Huế"}})
    post(client, write_key, "identify", {"userId": "new-id", "messageId": "x2", "traits": {"name": "Lê Thị Hoa"}})
    post(client, write_key, "alias", {"previousId": "old-id", "userId": "new-id", "messageId": "x3"})
    live = db.scalars(sa.select(Customer).where(Customer.merged_into_id.is_(None))).all()
    assert len(live) == 1 and (live[0].city, live[0].full_name) == ("Huế", "Lê Thị Hoa")
    assert db.scalar(sa.select(CustomerMerge.reason)) == "alias"


def test_a_verified_email_shared_by_two_profiles_merges_them(client, db, write_key):
    post(client, write_key, "identify", {"userId": "a", "messageId": "v1",
                                         "traits": {"email": "same@x.vn", "email_verified": True}})
    post(client, write_key, "identify", {"userId": "b", "messageId": "v2", "traits": {"phone": "0987654321"}})
    post(client, write_key, "identify", {"userId": "b", "messageId": "v3",
                                         "traits": {"email": "same@x.vn", "email_verified": True}})
    a = db.scalar(sa.select(Identity.customer_id).where(Identity.value == "a"))
    b = db.scalar(sa.select(Identity.customer_id).where(Identity.value == "b"))
    assert a == b
    assert db.scalar(sa.select(CustomerMerge.reason)) == "shared email"


def test_an_unverified_shared_email_merges_nothing(client, db, write_key):
    post(client, write_key, "identify", {"userId": "c", "messageId": "w1", "traits": {"email": "f@x.vn"}})
    post(client, write_key, "identify", {"userId": "d", "messageId": "w2", "traits": {"phone": "0987654322"}})
    post(client, write_key, "identify", {"userId": "d", "messageId": "w3", "traits": {"email": "f@x.vn"}})
    c = db.scalar(sa.select(Identity.customer_id).where(Identity.value == "c"))
    d = db.scalar(sa.select(Identity.customer_id).where(Identity.value == "d"))
    assert c != d
    assert db.scalar(sa.select(Identity.customer_id).where(Identity.value == "f@x.vn")) == c
    assert count(db, CustomerMerge) == 0


def test_the_segment_batch_context_applies_to_its_messages(client, db, write_key):
    post(client, write_key, "batch", {"context": {"library": {"name": "pos"}},
                                      "batch": [{"type": "page", "anonymousId": "v", "name": "Home", "messageId": "p1"}]})
    event = db.scalar(sa.select(Event).where(Event.message_id == "p1"))
    assert (event.type, event.name, event.context["library"]["name"]) == ("page", "Home", "pos")


def test_first_and_last_seen_follow_the_events_whatever_their_order(client, db, write_key):
    def at(day, mid):
        post(client, write_key, "track", {"userId": "seen", "event": "Visit", "messageId": mid,
                                          "timestamp": f"2026-03-{day:02d}T10:00:00+00:00"})

    at(10, "s1")
    at(20, "s2")
    at(5, "s3")  # a backfilled event older than anything seen
    customer = db.scalar(sa.select(Customer).join(Identity).where(Identity.value == "seen"))
    db.refresh(customer)
    assert (customer.first_seen_at.day, customer.last_seen_at.day) == (5, 20)
