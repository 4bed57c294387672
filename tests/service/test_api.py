"""The service desk API: bad input names the field, state conflicts are 409, retries store once."""

from __future__ import annotations

from clm.service.conversations import InboxIn, save_inbox
from clm.service.inbound import process


def test_a_message_posted_twice_opens_one_ticket_and_the_ticket_shows_its_history(client, db, shop, api_key_for):
    customer = shop.customer("Nguyễn Văn An")
    inbox = save_inbox(db, InboxIn(name="Zalo OA", channel="zalo"))
    db.commit()
    headers = api_key_for("service:read", "service:write")
    body = {"inbox_id": inbox.id, "customer_id": customer.id, "body": "Cho hỏi đơn hàng", "external_id": "zalo:1"}
    first = client.post("/api/v1/service/messages", json=body, headers=headers)
    assert first.status_code == 202 and first.json()["state"] == "queued"
    process(db)  # the worker files it a moment later
    db.commit()
    again = client.post("/api/v1/service/messages", json=body, headers=headers)
    assert again.status_code == 200 and again.json()["state"] == "processed"
    detail = client.get(f"/api/v1/service/tickets/{again.json()['ticket_id']}", headers=headers).json()
    assert detail["ticket"]["number"].startswith("TK-")
    assert [m["body"] for m in detail["messages"]] == ["Cho hỏi đơn hàng"]
    assert detail["changes"][0]["field"] == "created"


def test_bad_input_is_a_422_naming_the_field(client, shop, api_key_for):
    customer = shop.customer("Trần Thị Bình")
    headers = api_key_for("service:write", "service:manage")
    r = client.post("/api/v1/service/tickets", json={"customer_id": customer.id, "subject": "x", "priority": "asap"},
                    headers=headers)
    assert r.status_code == 422 and r.json()["error"]["field"] == "priority"
    r = client.post("/api/v1/service/tickets", json={"customer_id": customer.id, "subject": "x",
                                                     "fields": {"colour": "red"}}, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["field"] == "fields.colour"
    r = client.post("/api/v1/service/sla/calendars", json={"name": "x", "hours": {"mon": [["9", "17:00"]]}},
                    headers=headers)
    assert r.status_code == 422 and r.json()["error"]["field"] == "hours.mon[0]"


def test_merging_two_customers_tickets_is_a_409(client, shop, api_key_for):
    headers = api_key_for("service:write")
    a = client.post("/api/v1/service/tickets", json={"customer_id": shop.customer("A").id, "subject": "a"},
                    headers=headers).json()
    b = client.post("/api/v1/service/tickets", json={"customer_id": shop.customer("B").id, "subject": "b"},
                    headers=headers).json()
    r = client.post(f"/api/v1/service/tickets/{a['id']}/merge", json={"into": b["id"]}, headers=headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "other_customer"
