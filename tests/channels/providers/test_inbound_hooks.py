"""Provider webhooks end to end: signatures, delivery reports on messages, replies on the timeline."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from clm.channels.models import Message, MessageEvent
from clm.customers.models import Customer, Identity
from clm.service.inbound import process
from clm.tracking.models import Event, EventDaily

from .conftest import HOOKS
from .fakes import esms_mo_query

APP_ID = "2553928453557884079"


def meta_post(client, body: dict, secret: str = "app-secret", raw: bytes | None = None):
    raw = raw if raw is not None else json.dumps(body, ensure_ascii=True).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return client.post("/hooks/messenger", content=raw,
                       headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"})


def zalo_post(client, body: dict, key: str = "oa-secret"):
    raw = json.dumps(body, ensure_ascii=False).encode()
    mac = hashlib.sha256(str(body.get("app_id", "")).encode() + raw + str(body.get("timestamp", "")).encode()
                         + key.encode()).hexdigest()
    return client.post("/hooks/zalo", content=raw, headers={"X-ZEvent-Signature": f"mac={mac}"})


def page_event(*messaging: dict) -> dict:
    return {"object": "page", "entry": [{"id": "PAGE1", "time": 1457764198246, "messaging": list(messaging)}]}


def inbound_text(psid: str, mid: str, text: str) -> dict:
    return {"sender": {"id": psid}, "recipient": {"id": "PAGE1"}, "timestamp": 1457764197627,
            "message": {"mid": mid, "text": text}}


def zalo_text(user: str, msg_id: str, text: str) -> dict:
    return {"event_name": "user_send_text", "app_id": APP_ID, "sender": {"id": user}, "recipient": {"id": "OA1"},
            "message": {"text": text, "msg_id": msg_id}, "timestamp": "1699003881354"}


def filed(db) -> None:
    """A moment later: the webhook only stored the customers' messages; the worker's `service.inbound` step
    turns them into events (clm.service.inbound)."""
    process(db)
    db.commit()


def received(db) -> list[Event]:
    filed(db)
    return list(db.scalars(sa.select(Event).where(Event.name == "Message Received").order_by(Event.id)))


def status_of(db, message: Message) -> str:
    filed(db)
    db.expire_all()
    return db.get(Message, message.id).status


# --- Messenger ---------------------------------------------------------------------------------------

def test_the_messenger_handshake_echoes_the_challenge_only_for_the_right_token(client):
    ok = client.get("/hooks/messenger", params={"hub.mode": "subscribe", "hub.challenge": "1158201444",
                                                "hub.verify_token": "verify-me"})
    bad = client.get("/hooks/messenger", params={"hub.mode": "subscribe", "hub.challenge": "1158201444",
                                                 "hub.verify_token": "guess"})
    assert ok.status_code == 200 and ok.text == "1158201444"
    assert bad.status_code == 403 and bad.json()["error"]["field"] == "hub.verify_token"


def test_a_messenger_reply_becomes_an_event_on_a_new_customer_found_by_psid(client, db):
    response = meta_post(client, page_event(inbound_text("PSID-1", "m_abc", "Cho mình hỏi giá áo")))

    assert response.status_code == 200 and response.json()["replies"] == 1
    [event] = received(db)
    assert event.message_id == "messenger:m_abc"
    assert event.properties["channel"] == "messenger" and event.properties["text"] == "Cho mình hỏi giá áo"
    assert event.properties["provider_message_id"] == "m_abc" and event.properties["sender_id"] == "PSID-1"
    identity = db.scalar(sa.select(Identity).where(Identity.kind == "facebook", Identity.value == "PSID-1"))
    assert identity.customer_id == event.customer_id
    assert db.scalar(sa.select(EventDaily.count).where(EventDaily.customer_id == event.customer_id,
                                                       EventDaily.name == "Message Received")) == 1


def test_a_reply_marks_the_latest_message_on_that_channel_replied(client, db, sent):
    older = sent("messenger", "m_1", identity=("facebook", "PSID-2"), minutes_ago=60)
    customer = db.get(Customer, older.customer_id)
    latest = sent("messenger", "m_2", customer=customer, status="delivered", minutes_ago=5)
    other_channel = sent("zalo", "z_1", customer=customer, minutes_ago=1)

    meta_post(client, page_event(inbound_text("PSID-2", "m_reply", "Dạ em cảm ơn")))

    assert [e.customer_id for e in received(db)] == [customer.id]
    assert (status_of(db, older), status_of(db, latest), status_of(db, other_channel)) == ("sent", "replied", "sent")


def test_a_duplicate_messenger_delivery_stores_once(client, db):
    body = page_event(inbound_text("PSID-3", "m_dup", "alo"))
    first, second = meta_post(client, body), meta_post(client, body)
    assert first.json()["replies"] == 1 and second.json()["replies"] == 0
    assert len(received(db)) == 1


def test_a_bad_messenger_signature_is_refused_and_nothing_is_stored(client, db, sent):
    message = sent("messenger", "m_9", identity=("facebook", "PSID-4"))
    body = page_event(inbound_text("PSID-4", "m_x", "hi"), {"sender": {"id": "PSID-4"}, "delivery": {"mids": ["m_9"]}})

    wrong = meta_post(client, body, secret="not-the-app-secret")
    missing = client.post("/hooks/messenger", json=body)

    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "bad_signature"
    assert missing.status_code == 401 and missing.json()["error"]["field"] == "X-Hub-Signature-256"
    assert received(db) == [] and status_of(db, message) == "sent"


def test_the_signature_is_checked_over_the_raw_bytes_not_a_reserialisation(client, db):
    raw = (b'{ "entry" : [{"messaging": [{"message": {"text": "Gi\\u00e1 bao nhi\\u00eau?", "mid": "m_raw"},'
           b' "sender": {"id": "PSID-5"}, "timestamp": 1457764197627}], "id": "PAGE1"}], "object": "page" }')
    response = meta_post(client, {}, raw=raw)
    assert response.status_code == 200
    assert received(db)[0].properties["text"] == "Giá bao nhiêu?"


def test_delivery_receipts_and_read_watermarks_move_messenger_messages(client, db, sent):
    delivered = sent("messenger", "m_d1", identity=("facebook", "PSID-6"), minutes_ago=30)
    customer = db.get(Customer, delivered.customer_id)
    read_later = sent("messenger", "m_d2", customer=customer, minutes_ago=20)
    meta_post(client, page_event({"sender": {"id": "PSID-6"}, "recipient": {"id": "PAGE1"},
                                  "delivery": {"mids": ["m_d1"], "watermark": 1457764197627}}))
    assert status_of(db, delivered) == "delivered"

    import time
    meta_post(client, page_event({"sender": {"id": "PSID-6"}, "recipient": {"id": "PAGE1"},
                                  "read": {"watermark": int(time.time() * 1000)}}))
    assert (status_of(db, delivered), status_of(db, read_later)) == ("opened", "opened")


def test_echoes_of_the_pages_own_messages_are_not_replies(client, db):
    echo = inbound_text("PAGE1", "m_echo", "Cảm ơn bạn")
    echo["message"]["is_echo"] = True
    assert meta_post(client, page_event(echo)).json()["ignored"] == 1
    assert received(db) == []


# --- Zalo --------------------------------------------------------------------------------------------

def test_a_zalo_reply_joins_the_customer_who_has_that_zalo_id(client, db, sent):
    message = sent("zalo", "zmsg1", identity=("zalo", "ZU-77"))

    response = zalo_post(client, zalo_text("ZU-77", "cb31dff1c39642cc1b83", "Chào shop"))

    assert response.status_code == 200
    [event] = received(db)
    assert event.customer_id == message.customer_id and event.properties["text"] == "Chào shop"
    assert event.message_id == "zalo:cb31dff1c39642cc1b83"
    assert status_of(db, message) == "replied"
    assert db.scalar(sa.select(sa.func.count()).select_from(Customer)) == 1


def test_a_zns_delivery_event_marks_the_message_delivered_by_msg_id_or_tracking_id(client, db, sent):
    by_id = sent("zalo", "zmsg-a")
    by_key = sent("zalo", None, key="msg-41")  # the send's answer was lost: no provider id yet
    for msg_id, tracking in (("zmsg-a", "whatever"), ("zmsg-b", "msg-41")):
        zalo_post(client, {"event_name": "user_received_message", "app_id": APP_ID, "sender": {"id": "OA1"},
                           "recipient": {"id": "84912345678"}, "timestamp": "1602560967477",
                           "message": {"delivery_time": "1602960467432", "msg_id": msg_id, "tracking_id": tracking}})
    assert (status_of(db, by_id), status_of(db, by_key)) == ("delivered", "delivered")
    assert db.get(Message, by_key.id).provider_id == "zmsg-b"


@pytest.mark.parametrize("key", ["app-secret", "wrong"])
def test_a_zalo_event_signed_with_anything_but_the_oa_secret_key_is_refused(client, db, key):
    response = zalo_post(client, zalo_text("ZU-1", "m1", "hi"), key=key)
    assert response.status_code == 401 and response.json()["error"]["field"] == "X-ZEvent-Signature"
    assert received(db) == [] and db.scalar(sa.select(sa.func.count()).select_from(Identity)) == 0


def test_a_zalo_event_for_another_app_is_refused(client, db):
    body = zalo_text("ZU-1", "m1", "hi") | {"app_id": "999"}
    assert zalo_post(client, body).status_code == 403
    assert received(db) == []


def zalo_unfollow(user: str, timestamp: str = "1699003881354") -> dict:
    return {"event_name": "unfollow", "app_id": APP_ID, "sender": {"id": user}, "recipient": {"id": "OA1"},
            "source": "oa_profile", "timestamp": timestamp, "user_id_by_app": "979122185046046317"}


def test_unfollowing_the_zalo_oa_suppresses_zalo_marketing_for_that_customer(client, db):
    from clm.channels import guardrails
    from clm.channels.models import Suppression
    from clm.customers.consent import record_consent

    customer = Customer(full_name="Lê Thu", phone="+84912345678")
    db.add(customer)
    db.flush()
    db.add(Identity(customer_id=customer.id, kind="zalo", value="ZU-9"))
    record_consent(db, customer.id, channel="zalo", purpose="marketing", granted=True, source="test")
    waiting = {purpose: Message(customer_id=customer.id, channel="zalo", purpose=purpose, template_key="t",
                                idempotency_key=f"w-{purpose}", status="queued", address="+84912345678")
               for purpose in ("marketing", "transactional")}
    db.add_all(waiting.values())
    db.commit()

    response = zalo_post(client, zalo_unfollow("ZU-9"))

    assert response.status_code == 200 and response.json()["updated"] == 1
    db.expire_all()
    [row] = db.scalars(sa.select(Suppression).where(Suppression.channel == "zalo")).all()
    assert (row.address, row.reason, row.customer_id) == ("+84912345678", "unsubscribe", customer.id)
    assert (status_of(db, waiting["marketing"]), status_of(db, waiting["transactional"])) == ("suppressed", "queued")
    assert db.get(Message, waiting["marketing"].id).status_reason == "the customer unfollowed the Zalo OA"
    assert guardrails.blocked(db, customer.id, "zalo", "marketing", "+84912345678") is not None
    assert guardrails.blocked(db, customer.id, "zalo", "transactional", "+84912345678") is None
    [event] = db.scalars(sa.select(Event).where(Event.name == "Zalo OA Unfollowed")).all()
    assert event.customer_id == customer.id and event.properties["sender_id"] == "ZU-9"
    assert zalo_post(client, zalo_unfollow("ZU-9")).json()["updated"] == 0  # a redelivery changes nothing


def test_an_unfollow_from_someone_clm_never_met_is_counted_unmatched_and_creates_nobody(client, db):
    response = zalo_post(client, zalo_unfollow("ZU-stranger"))
    assert response.status_code == 200 and response.json()["unmatched"] == 1
    assert db.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0


def test_an_unfollow_needs_the_oa_signature_like_every_zalo_event(client, db):
    assert zalo_post(client, zalo_unfollow("ZU-9"), key="app-secret").status_code == 401


def zalo_seen(user: str, *msg_ids: str, timestamp: str = "1699003991354") -> dict:
    """Zalo's user_seen_message: the OA is the sender, the user who read is the recipient."""
    return {"event_name": "user_seen_message", "app_id": APP_ID, "sender": {"id": "OA1"}, "recipient": {"id": user},
            "message": {"msg_ids": list(msg_ids)}, "timestamp": timestamp, "user_id_by_app": "979122185046046317"}


def test_a_zalo_seen_event_marks_the_messages_it_lists_opened_with_an_event_on_the_timeline(client, db, sent):
    answer = sent("zalo", "oa-msg-1", identity=("zalo", "ZU-5"), minutes_ago=30)
    customer = db.get(Customer, answer.customer_id)
    zns = sent("zalo", "zns-msg-2", customer=customer, status="delivered", minutes_ago=20)
    clicked = sent("zalo", "oa-msg-3", customer=customer, status="clicked", minutes_ago=15)
    unlisted = sent("zalo", "oa-msg-4", customer=customer, minutes_ago=10)
    sms_same_id = sent("sms", "oa-msg-1", minutes_ago=10)  # another channel's id that happens to be the same
    db.commit()

    response = zalo_post(client, zalo_seen("ZU-5", "oa-msg-1", "zns-msg-2", "oa-msg-3", "not-ours"))

    assert response.status_code == 200 and response.json()["updated"] == 2
    assert [status_of(db, m) for m in (answer, zns, clicked, unlisted, sms_same_id)] == [
        "opened", "opened", "clicked", "sent", "sent"]  # a read never moves a message backwards
    history = db.scalars(sa.select(MessageEvent).where(MessageEvent.message_id == answer.id,
                                                       MessageEvent.status == "opened")).all()
    assert [(h.reason, h.detail["source"], h.at) for h in history] == [
        ("read on zalo", "seen event", datetime(2023, 11, 3, 9, 33, 11, 354000, tzinfo=UTC))]
    events = db.scalars(sa.select(Event).where(Event.name == "Message Seen").order_by(Event.id)).all()
    assert [(e.customer_id, e.properties["message_id"], e.properties["channel"]) for e in events] == [
        (customer.id, answer.id, "zalo"), (customer.id, zns.id, "zalo"), (customer.id, clicked.id, "zalo")]
    assert events[0].properties["provider_message_id"] == "oa-msg-1" and events[0].properties["viewer_id"] == "ZU-5"
    assert db.scalar(sa.select(EventDaily.count).where(EventDaily.customer_id == customer.id,
                                                       EventDaily.name == "Message Seen")) == 3

    again = zalo_post(client, zalo_seen("ZU-5", "oa-msg-1", "zns-msg-2"))  # Zalo delivers webhooks again
    assert again.status_code == 200 and again.json()["updated"] == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.name == "Message Seen")) == 3


def test_a_zalo_seen_event_without_message_ids_is_ignored_and_a_forged_one_changes_nothing(client, db, sent):
    message = sent("zalo", "oa-msg-9", identity=("zalo", "ZU-6"))
    db.commit()

    empty = zalo_post(client, zalo_seen("ZU-6"))
    forged = zalo_post(client, zalo_seen("ZU-6", "oa-msg-9"), key="app-secret")

    assert empty.status_code == 200 and empty.json()["ignored"] == 1 and empty.json()["updated"] == 0
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "bad_signature"
    assert status_of(db, message) == "sent"
    assert db.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.name == "Message Seen")) == 0


# --- eSMS and SpeedSMS (secret URL token) ------------------------------------------------------------

def esms_callback(client, token="hook-t0ken", **query):
    base = {"SMSID": "sms-1", "SendFailed": "0", "SendStatus": "5", "SendSuccess": "1", "TotalPrice": "700",
            "TotalReceiver": "1", "TotalSent": "1", "RequestId": "", "TypeId": "2", "telcoid": "1",
            "phonenumber": "0912345678"}
    return client.get(f"/hooks/esms/{token}", params=base | query)


def test_an_esms_report_marks_the_sms_delivered(client, db, sent):
    message = sent("sms", "sms-1")
    response = esms_callback(client)
    assert response.json()["updated"] == 1 and status_of(db, message) == "delivered"
    history = db.scalars(sa.select(MessageEvent.status).where(MessageEvent.message_id == message.id)).all()
    assert "delivered" in history


def test_an_esms_failure_is_recorded_with_the_reason(client, db, sent):
    message = sent("sms", "sms-2")
    esms_callback(client, SMSID="sms-2", SendSuccess="0", SendFailed="1")
    db.expire_all()
    stored = db.get(Message, message.id)
    assert stored.status == "failed" and "could not deliver" in stored.status_reason


def test_esms_progress_reports_change_nothing_and_unknown_ids_are_counted(client, db, sent):
    message = sent("sms", "sms-3")
    assert esms_callback(client, SMSID="sms-3", SendStatus="7").json()["ignored"] == 1
    assert esms_callback(client, SMSID="nobody").json()["unmatched"] == 1
    assert status_of(db, message) == "sent"


def test_an_esms_report_with_a_wrong_token_is_refused(client, db, sent):
    message = sent("sms", "sms-1")
    response = esms_callback(client, token="guess")
    assert response.status_code == 401 and response.json()["error"]["code"] == "bad_signature"
    assert status_of(db, message) == "sent"


def esms_mo(client, **values):
    query = esms_mo_query(cpid=HOOKS["esms_mo_cpid"], private_key=HOOKS["esms_mo_private_key"], **values)
    return client.get("/hooks/esms-mo", params=query)


def test_an_sms_texted_to_the_esms_short_code_lands_on_the_customers_timeline(client, db, sent):
    customer = Customer(full_name="Phạm Thị Dung", phone="+84912345678")
    db.add(customer)
    db.flush()
    answered = sent("sms", "sms-7", customer=customer, identity=("phone", "+84912345678"), minutes_ago=30)
    db.commit()

    response = esms_mo(client, sender="84912345678", content="HUY đơn DH-1042 giúp em", smsid="mo-1")

    assert response.status_code == 200 and response.headers["content-type"].startswith("application/xml")
    assert response.text == ("<ClientResponse><Message></Message><Smsid>mo-1</Smsid>"
                             "<Receiver>84912345678</Receiver></ClientResponse>")
    [event] = received(db)
    assert event.customer_id == customer.id and event.message_id == "sms:esms:mo-1"
    assert event.properties["text"] == "HUY đơn DH-1042 giúp em" and event.properties["provider"] == "esms"
    assert (event.properties["service_number"], event.properties["keyword"]) == ("8079", "HUY")
    assert event.timestamp.astimezone(UTC) == datetime(2026, 3, 2, 2, 30, tzinfo=UTC)  # 09:30 in Hà Nội
    assert status_of(db, answered) == "replied"
    again = esms_mo(client, sender="84912345678", content="HUY đơn DH-1042 giúp em", smsid="mo-1")
    assert again.status_code == 200 and len(received(db)) == 1  # eSMS retries: stored once


def test_an_esms_sms_from_a_number_clm_never_met_makes_a_customer_with_that_phone(client, db):
    esms_mo(client, sender="84987654321", content="Shop còn size M không?", smsid="mo-2", hex_sign=True)
    [event] = received(db)
    identity = db.scalar(sa.select(Identity).where(Identity.kind == "phone", Identity.value == "+84987654321"))
    assert identity is not None and identity.customer_id == event.customer_id


@pytest.mark.parametrize("tamper", [{"content": "changed"}, {"cpid": "OTHER"}, {"sign": ""}, {"smsid": "mo-x"}])
def test_an_esms_sms_with_a_sign_that_does_not_match_is_refused_and_stores_nothing(client, db, tamper):
    query = esms_mo_query(cpid=HOOKS["esms_mo_cpid"], private_key=HOOKS["esms_mo_private_key"],
                          sender="84912345678", content="HUY", smsid="mo-3")
    response = client.get("/hooks/esms-mo", params=query | tamper)
    assert response.status_code == 401 and response.json()["error"]["field"] == "sign"
    assert received(db) == []


def test_an_esms_sms_signed_with_another_key_is_refused(client, db):
    query = esms_mo_query(cpid=HOOKS["esms_mo_cpid"], private_key="not-ours", sender="84912345678",
                          content="HUY", smsid="mo-4")
    assert client.get("/hooks/esms-mo", params=query).status_code == 401 and received(db) == []


def test_speedsms_reports_and_incoming_sms(client, db, sent):
    customer = Customer(full_name="Lê Văn Cường", phone="+84912345678")
    db.add(customer)
    db.flush()
    delivered = sent("sms", "1001", customer=customer, identity=("phone", "+84912345678"), minutes_ago=20)
    failed = sent("sms", "1002", minutes_ago=15)
    url = "/hooks/speedsms/hook-t0ken"

    client.post(url, json={"type": "report", "tranId": 1001, "phone": "84912345678", "status": 0})
    client.post(url, json={"type": "report", "tranId": 1002, "phone": "84987654321", "status": 7})
    reply = {"type": "incoming", "phone": "84912345678", "content": "HUY"}
    first, again = client.post(url, json=reply), client.post(url, json=reply)

    assert status_of(db, failed) == "failed"
    assert status_of(db, delivered) == "replied"  # delivered, then answered
    assert first.json()["replies"] == 1 and again.json()["replies"] == 0
    [event] = received(db)
    assert event.customer_id == customer.id and event.properties["text"] == "HUY"


def test_a_webhook_whose_secret_is_not_configured_is_off(client, settings):
    settings.hooks_token = None
    response = client.get("/hooks/esms/anything")
    assert response.status_code == 404 and "CLM_HOOKS_TOKEN" in response.json()["error"]["message"]


def test_a_body_that_is_not_json_is_a_400(client):
    raw = b"not json"
    signature = "sha256=" + hmac.new(b"app-secret", raw, hashlib.sha256).hexdigest()
    response = client.post("/hooks/messenger", content=raw, headers={"X-Hub-Signature-256": signature})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


def test_replies_of_several_customers_filed_together_mark_each_ones_latest_message(db, sent):
    """The worker marks a batch's replies with one query (replies.mark_replied_many): per customer and channel
    the latest answerable message, once however many replies, nothing older, nothing failed or bounced."""
    from clm.channels.inbound.replies import mark_replied_many
    from clm.lib.clock import utcnow

    a_old = sent("zalo", "a1", minutes_ago=60)
    a = db.get(Customer, a_old.customer_id)
    a_new = sent("zalo", "a2", customer=a, minutes_ago=5)
    a_sms = sent("sms", "a3", customer=a, minutes_ago=1)
    b_new = sent("zalo", "b1", minutes_ago=30)
    b_failed = sent("zalo", "b2", customer=db.get(Customer, b_new.customer_id), status="failed", minutes_ago=2)
    c_done = sent("zalo", "c1", status="replied", minutes_ago=3)
    c_older = sent("zalo", "c2", customer=db.get(Customer, c_done.customer_id), minutes_ago=50)
    db.flush()

    mark_replied_many(db, [(a.id, "zalo", "r1"), (b_new.customer_id, "zalo", "r2"), (a.id, "zalo", "r3"),
                           (c_done.customer_id, "zalo", "r4"), (987654, "zalo", "r5")], utcnow())

    assert [status_of(db, m) for m in (a_old, a_new, a_sms, b_new, b_failed, c_done, c_older)] == [
        "sent", "replied", "sent", "replied", "failed", "replied", "sent"]
    detail = db.scalars(sa.select(MessageEvent.detail).where(MessageEvent.message_id == a_new.id,
                                                            MessageEvent.status == "replied")).all()
    assert detail == [{"provider_message_id": "r1"}]  # the customer's first reply, once
