"""The sales API end to end: leads in, conversion, stage moves, closing, forecast; refusals name the field."""

from __future__ import annotations

import pytest


@pytest.fixture
def headers(api_key_for):
    return api_key_for("sales:read", "sales:write", "sales:manage")


def test_a_lead_posted_twice_with_its_external_id_answers_the_first_one(client, headers):
    body = {"name": "Đặng Thu Hà", "phone": "0913222333", "source": "event", "external_id": "expo-17"}
    first = client.post("/api/v1/leads", json=body, headers=headers)
    again = client.post("/api/v1/leads", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["lead"]["id"] == again.json()["lead"]["id"] and again.json()["created"] is False
    lead = first.json()["lead"]
    assert lead["code"].startswith("LD-") and lead["score"]["kind"] == "prior" and lead["score"]["note"]["vi"]


@pytest.mark.parametrize("body,field", [
    ({"phone": "0000"}, "phone"), ({"email": "x@"}, "email"), ({"phone": "0913222444", "source": "tiktok"}, "source"),
    ({"phone": "0913222444", "priority": "medium"}, "priority"), ({"phone": "0913222444", "owner_id": 987654}, "owner_id"),
])
def test_bad_leads_are_refused_naming_the_field(client, headers, body, field):
    r = client.post("/api/v1/leads", json=body, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text


def test_a_lead_goes_from_new_to_a_won_deal(client, headers):
    lead = client.post("/api/v1/leads", json={"phone": "0913222555", "source": "referral"},
                       headers=headers).json()["lead"]
    r = client.patch(f"/api/v1/leads/{lead['id']}", json={"status": "qualified", "priority": "very_high"},
                     headers=headers)
    assert r.json()["status"] == "qualified" and r.json()["priority"] == "very_high"
    deal = client.post(f"/api/v1/leads/{lead['id']}/convert", headers=headers,
                       json={"products": [{"sku": "BAN-GO", "name": "Bàn gỗ", "quantity": 1, "price": 4_500_000}],
                             "expected_close_date": "2030-05-20"})
    assert deal.status_code == 201 and deal.json()["value"] == 4_500_000 and deal.json()["stage"] == "new"
    again = client.post(f"/api/v1/leads/{lead['id']}/convert", headers=headers)
    assert again.status_code == 409 and again.json()["error"] == {
        "code": "already_converted", "message": again.json()["error"]["message"], "field": "lead_id"}
    deal_id = deal.json()["id"]
    bad = client.post(f"/api/v1/opportunities/{deal_id}/stage", json={"stage": "contract"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "stage"
    moved = client.post(f"/api/v1/opportunities/{deal_id}/stage", json={"stage": "negotiation"}, headers=headers)
    assert moved.json()["stage"] == "negotiation"
    [may] = [m for m in client.get("/api/v1/sales/forecast", headers=headers).json()["months"] if m["month"] == "2030-05"]
    assert may["weighted_value"] == 3_375_000
    won = client.post(f"/api/v1/opportunities/{deal_id}/win", json={"reason": "ký hợp đồng"}, headers=headers)
    assert won.json()["status"] == "won" and won.json()["order_id"]
    assert client.get(f"/api/v1/leads/{lead['id']}", headers=headers).json()["opportunity_id"] == deal_id


def test_losing_needs_a_reason_and_a_closed_deal_does_not_move(client, headers, shop):
    customer = shop.customer("Mai Anh", email="maianh@example.vn")
    deal = client.post("/api/v1/opportunities", json={"customer_id": customer.id, "value": 1_000_000},
                       headers=headers).json()
    assert client.post(f"/api/v1/opportunities/{deal['id']}/lose", json={}, headers=headers).json()["error"][
        "field"] == "reason"
    client.post(f"/api/v1/opportunities/{deal['id']}/lose", json={"reason": "Chọn bên khác"}, headers=headers)
    r = client.post(f"/api/v1/opportunities/{deal['id']}/stage", json={"stage": "proposal"}, headers=headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "closed"


def test_the_board_lists_columns_in_stage_order(client, headers, shop):
    customer = shop.customer("Tạ Quang", email="quang@example.vn")
    client.post("/api/v1/opportunities", json={"customer_id": customer.id, "value": 2_000_000, "stage": "proposal"},
                headers=headers)
    [pipeline] = client.get("/api/v1/pipelines", headers=headers).json()["data"]
    board = client.get(f"/api/v1/pipelines/{pipeline['id']}/board", headers=headers).json()
    columns = {c["stage"]["key"]: c for c in board["columns"]}
    assert columns["proposal"]["weighted"] == 1_000_000 and columns["proposal"]["cards"][0]["title"] == "Tạ Quang"


def test_a_pipeline_without_a_lost_stage_is_refused(client, headers):
    r = client.post("/api/v1/pipelines", headers=headers, json={"name": "x", "stages": [
        {"key": "a", "probability": 10}, {"key": "b", "probability": 50}, {"key": "w", "probability": 100, "kind": "won"}]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "stages"


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/api/v1/leads?owner_id=99999999999999999999", None),
    ("GET", "/api/v1/leads?cursor=not-a-cursor", None),
    ("GET", "/api/v1/leads?order=score&cursor=WyJ4IiwxXQ", None),
    ("POST", "/api/v1/leads", {"phone": "0913222666", "owner_id": 2**70}),
    ("POST", "/api/v1/opportunities", {"customer_id": 2**70}),
    ("POST", "/api/v1/tasks", {"subject": "x", "due_at": "2030-01-01T00:00:00Z", "lead_id": 2**64}),
    ("GET", "/api/v1/opportunities?stage=new", None),
])
def test_out_of_range_or_malformed_input_is_a_json_error_not_a_crash(client, headers, method, path, body):
    r = client.request(method, path, json=body, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["field"], r.text
