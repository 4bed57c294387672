"""From the outbox to a local provider and back: the worker sends, the provider's webhook reports."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import sqlalchemy as sa

from clm.channels.models import Message, MessageEvent
from clm.channels.sending import send_handler
from clm.channels.service import enqueue_message
from clm.channels.templates import create_template
from clm.config import Settings
from clm.customers.models import Customer, Identity
from clm.jobs.runner import Registry, run_due
from clm.service.inbound import process

from .conftest import HOOKS
from .fakes import EsmsFake, MessengerFake, ZaloFake


def worker_settings(**values) -> Settings:
    return Settings(database_url="sqlite://", dashboard_warm_up=False, _env_file=None, quiet_hours="",
                    public_url="https://shop.example.vn", provider_timeout_seconds=2, **HOOKS, **values)


def run_worker(session_factory, settings) -> int:
    registry = Registry()
    registry.register("channels.send", send_handler(settings))
    return run_due(session_factory, registry, "w")


def customer(db, **fields) -> Customer:
    c = Customer(full_name="Nguyễn Văn An", given_name="An", **fields)
    db.add(c)
    db.flush()
    return c


def history(db, message: Message) -> list[str]:
    db.expire_all()
    return list(db.scalars(sa.select(MessageEvent.status).where(MessageEvent.message_id == message.id)
                           .order_by(MessageEvent.id)))


def test_an_sms_goes_to_esms_and_its_delivery_report_marks_it_delivered(db, session_factory, client):
    an = customer(db, phone="+84912345678")
    create_template(db, key="otp", channel="sms", variants={"vi": {"text": "Ma xac minh cua ban la 1234"}})
    with EsmsFake("key", "secret", "Baotrixemay") as esms:
        settings = worker_settings(esms_api_key="key", esms_secret_key="secret", esms_brandname="Baotrixemay",
                                   esms_url=esms.url)
        message = enqueue_message(db, customer_id=an.id, channel="sms", template_key="otp", purpose="transactional",
                                  idempotency_key="otp:an:1", settings=settings)
        db.commit()
        assert run_worker(session_factory, settings) == 1
    assert esms.violations == []
    body = esms.requests[0].json
    assert body["Phone"] == "0912345678" and body["RequestId"] == "otp:an:1"
    assert body["CallbackUrl"] == "https://shop.example.vn/hooks/esms/hook-t0ken"
    db.expire_all()
    assert (db.get(Message, message.id).status, db.get(Message, message.id).provider) == ("sent", "esms")

    client.get("/hooks/esms/hook-t0ken", params={"SMSID": db.get(Message, message.id).provider_id,
                                                 "SendStatus": "5", "SendSuccess": "1", "SendFailed": "0"})
    assert history(db, message) == ["queued", "sending", "sent", "delivered"]


def test_a_zns_message_is_sent_then_delivered_through_the_zalo_webhook(db, session_factory, client):
    an = customer(db, phone="0912345678")
    create_template(db, key="order-shipped", channel="zalo", variants={"vi": {"text": ""}},
                    provider={"zns_template_id": "7895417a7d3f9461cd2e",
                              "template_data": {"customer": "{{ customer.name }}", "order": "{{ context.order_code }}",
                                                "amount": "150000"}})
    with ZaloFake("oa-token", {"7895417a7d3f9461cd2e": {"customer", "order", "amount"}}, {"84912345678"}) as zalo:
        settings = worker_settings(zalo_access_token="oa-token", zalo_zns_url=zalo.url)
        message = enqueue_message(db, customer_id=an.id, channel="zalo", template_key="order-shipped",
                                  purpose="transactional", idempotency_key="ship:DH12",
                                  context={"order_code": "DH12"}, settings=settings)
        db.commit()
        run_worker(session_factory, settings)
    assert zalo.violations == []
    assert zalo.requests[0].json["template_data"] == {"customer": "Nguyễn Văn An", "order": "DH12", "amount": "150000"}

    event = {"event_name": "user_received_message", "app_id": HOOKS["zalo_app_id"], "sender": {"id": "OA1"},
             "recipient": {"id": "84912345678"}, "timestamp": "1602560967477",
             "message": {"delivery_time": "1602960467432", "msg_id": "zmsg1", "tracking_id": "ship:DH12"}}
    raw = json.dumps(event).encode()
    mac = hashlib.sha256(HOOKS["zalo_app_id"].encode() + raw + b"1602560967477" + b"oa-secret").hexdigest()
    assert client.post("/hooks/zalo", content=raw, headers={"X-ZEvent-Signature": f"mac={mac}"}).status_code == 200
    assert history(db, message)[-2:] == ["sent", "delivered"]


def customer_writes_on_messenger(client, db, psid: str, at_ms: int) -> int:
    event = {"object": "page", "entry": [{"id": "PAGE1", "time": at_ms, "messaging": [
        {"sender": {"id": psid}, "recipient": {"id": "PAGE1"}, "timestamp": at_ms,
         "message": {"mid": f"m_{psid}", "text": "Shop ơi còn size M không?"}}]}]}
    raw = json.dumps(event).encode()
    signature = "sha256=" + hmac.new(b"app-secret", raw, hashlib.sha256).hexdigest()
    assert client.post("/hooks/messenger", content=raw, headers={"X-Hub-Signature-256": signature}).status_code == 200
    process(db)  # the worker files the stored message a moment later (clm.service.inbound)
    db.commit()
    return db.scalar(sa.select(Identity.customer_id).where(Identity.kind == "facebook", Identity.value == psid))


def send_on_messenger(db, session_factory, customer_id: int, key: str, hours_by_psid: dict[str, float]):
    with MessengerFake("page-token", hours_by_psid) as graph:
        settings = worker_settings(messenger_page_token="page-token", messenger_graph_url=graph.url + "/v25.0")
        message = enqueue_message(db, customer_id=customer_id, channel="messenger", template_key="reply",
                                  purpose="transactional", idempotency_key=key, settings=settings)
        db.commit()
        run_worker(session_factory, settings)
    db.expire_all()
    return graph, db.get(Message, message.id)


def test_a_customer_who_just_wrote_on_messenger_gets_a_response(db, session_factory, client):
    create_template(db, key="reply", channel="messenger", variants={"vi": {"text": "Dạ còn ạ"}})
    owner = customer_writes_on_messenger(client, db, "PSID-9", int(time.time() * 1000))

    graph, message = send_on_messenger(db, session_factory, owner, "reply:1", {"PSID-9": 0.1})

    assert graph.violations == [] and message.status == "sent"
    assert graph.requests[0].json["messaging_type"] == "RESPONSE"
    assert graph.requests[0].json["recipient"] == {"id": "PSID-9"}


def test_three_days_after_the_customer_wrote_an_untagged_message_is_not_sent(db, session_factory, client):
    create_template(db, key="reply", channel="messenger", variants={"vi": {"text": "Dạ còn ạ"}})
    owner = customer_writes_on_messenger(client, db, "PSID-8", int((time.time() - 72 * 3600) * 1000))

    graph, message = send_on_messenger(db, session_factory, owner, "reply:2", {"PSID-8": 72})

    assert graph.requests == [] and message.status == "failed"
    assert "3 days ago" in message.status_reason and "message tag" in message.status_reason
