"""The segments API: save, preview, members, CSV export; bad trees answered 422 naming the path."""

from __future__ import annotations

import csv
import io

import pytest

from tests.customers.shop import Shop

IN_HUE = {"type": "profile", "field": "city", "op": "eq", "value": "Huế"}


@pytest.fixture
def shop(db) -> Shop:
    return Shop(db)


@pytest.fixture
def key(api_key_for):
    return api_key_for("segments:read", "segments:write")


def test_a_saved_segment_answers_with_its_size_and_its_rules_in_words(client, shop, key):
    shop.customer("An", city="Huế")
    shop.customer("Bích", city="Hà Nội")
    r = client.post("/api/v1/segments", json={"name": "Huế", "rules": IN_HUE}, headers=key)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["size"] == 1 and body["kind"] == "dynamic" and body["depends_on"] == ["profile"]
    assert body["text"] == {"en": "city is “Huế”", "vi": "thành phố là “Huế”"}
    assert client.get(f"/api/v1/segments/{body['id']}", headers=key).json()["size"] == 1


@pytest.mark.parametrize("rules,field,words", [
    ({"all": [IN_HUE, {"type": "profile", "field": "shoe_size", "op": "eq", "value": "42"}]},
     "rules.all[1].field", "unknown field"),
    ({"any": [{"type": "profile", "field": "birthday", "op": "contains", "value": "12"}]},
     "rules.any[0].op", "does not apply to a date field"),
    ({"not": {"type": "orders", "metric": "last_order_at", "op": "before", "value": "2025-02-30"}},
     "rules.not.value", "not a real date"),
    ({"all": [{"type": "event", "name": "Viewed", "count": 2, "window": {"last_days": 0}}]},
     "rules.all[0].window.last_days", "greater than or equal to 1"),
    ({"all": [{"type": "nonsense"}]}, "rules.all[0].type", "unknown condition type"),
    ({"all": [{"type": "segment", "segment_id": 9999}]}, "rules.all[0].segment_id", "does not exist"),
])
def test_a_bad_rule_tree_is_refused_with_422_naming_its_path(client, key, rules, field, words):
    r = client.post("/api/v1/segments", json={"name": "Bad", "rules": rules}, headers=key)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == field and words in error["message"]


def test_a_cycle_through_another_segment_is_refused_on_save(client, key):
    a = client.post("/api/v1/segments", json={"name": "A", "rules": IN_HUE}, headers=key).json()
    b = client.post("/api/v1/segments", json={"name": "B", "rules": {"type": "segment", "segment_id": a["id"]}},
                    headers=key).json()
    r = client.put(f"/api/v1/segments/{a['id']}", headers=key,
                   json={"name": "A", "rules": {"any": [IN_HUE, {"type": "segment", "segment_id": b["id"]}]}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "rules.any[1].segment_id"
    assert r.json()["error"]["code"] == "cycle"


def test_the_preview_counts_an_unsaved_tree_and_stores_nothing(client, shop, key):
    shop.customer("An", city="Huế")
    r = client.post("/api/v1/segments/preview", json={"rules": {"not": IN_HUE}}, headers=key)
    assert r.json()["count"] == 0 and r.json()["text"]["en"] == "not (city is “Huế”)"
    assert client.get("/api/v1/segments", headers=key).json()["data"] == []


@pytest.mark.parametrize("hostile", ["' OR 1=1 --", "50%", "_", "Robert'); DROP TABLE customers;--", "Huế\u0301"])
def test_hostile_values_match_literally_through_the_api(client, shop, key, hostile):
    shop.customer("An", city="Huế")
    shop.customer("Mallory", city=hostile)
    for op in ("eq", "contains", "starts_with"):
        r = client.post("/api/v1/segments/preview", headers=key,
                        json={"rules": {"type": "profile", "field": "city", "op": op, "value": hostile}})
        assert r.status_code == 200 and r.json()["count"] == 1, (op, r.text)


def test_members_come_in_pages_and_export_as_csv_with_the_chosen_fields(client, shop, key):
    people = [shop.customer(f"Người {i}", city="Huế", phone=f"+8491234567{i}") for i in range(5)]
    shop.customer("=cmd|' /C calc'!A0", city="Huế")
    segment = client.post("/api/v1/segments", json={"name": "Huế", "rules": IN_HUE}, headers=key).json()
    first = client.get(f"/api/v1/segments/{segment['id']}/members?limit=4", headers=key).json()
    rest = client.get(f"/api/v1/segments/{segment['id']}/members?limit=4&after={first['next']}", headers=key).json()
    assert [m["customer_id"] for m in first["data"] + rest["data"]] == sorted(p.id for p in people) + [
        people[-1].id + 1]
    assert rest["next"] is None
    whole = client.get(f"/api/v1/segments/{segment['id']}/members?limit=6", headers=key).json()
    assert len(whole["data"]) == 6 and whole["next"] is None  # a page that is exactly the rest is the last
    r = client.get(f"/api/v1/segments/{segment['id']}/export.csv?fields=id,full_name,phone", headers=key)
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["id", "full_name", "phone"] and len(rows) == 7
    assert rows[1][2] == "+84912345670"
    assert rows[-1][1].startswith("'=")  # no formula runs in a spreadsheet
    bad = client.get(f"/api/v1/segments/{segment['id']}/export.csv?fields=id,password_hash", headers=key)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "fields"


def test_a_static_segment_takes_members_and_a_dynamic_one_refuses_them(client, shop, key):
    an = shop.customer("An", city="Huế")
    vip = client.post("/api/v1/segments", json={"name": "VIP", "kind": "static"}, headers=key).json()
    r = client.post(f"/api/v1/segments/{vip['id']}/members", json={"add": [an.id]}, headers=key)
    assert r.json() == {"entered": 1, "exited": 0, "size": 1}
    hue = client.post("/api/v1/segments", json={"name": "Huế", "rules": IN_HUE}, headers=key).json()
    r = client.post(f"/api/v1/segments/{hue['id']}/members", json={"add": [an.id]}, headers=key)
    assert r.status_code == 422


def test_the_rule_schema_is_published(client, key):
    schema = client.get("/api/v1/segments/schema", headers=key).json()
    assert "event" in str(schema) and "anyOf" in str(schema) or "oneOf" in str(schema)
