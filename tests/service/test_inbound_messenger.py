"""Issue 10's "Done when": a Messenger message through the webhook opens a conversation on the desk (the Zalo
case is in test_inbound_queue.py); a bad signature stores nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import sqlalchemy as sa

from clm.customers.models import Identity
from clm.service import inbound
from clm.service.conversations import InboxIn, save_inbox
from clm.service.models import Conversation, Inbound, Message, Ticket


@pytest.fixture
def settings():
    from clm.config import Settings

    return Settings(database_url="sqlite://", dashboard_warm_up=False, _env_file=None,
                    messenger_app_secret="app-secret", messenger_verify_token="verify-me")


def _post(client, psid: str, mid: str, text: str, secret: str = "app-secret"):
    body = {"object": "page", "entry": [{"id": "PAGE1", "time": 1760000000000, "messaging": [
        {"sender": {"id": psid}, "recipient": {"id": "PAGE1"}, "timestamp": 1760000000000,
         "message": {"mid": mid, "text": text}}]}]}
    raw = json.dumps(body, ensure_ascii=False).encode()
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return client.post("/hooks/messenger", content=raw,
                       headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"})


def _count(db, model, *where) -> int:
    return db.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def test_a_messenger_message_through_the_webhook_opens_a_conversation_and_threads_the_next(client, db):
    page = save_inbox(db, InboxIn(name="Fanpage", channel="messenger", language="vi"))
    db.commit()
    assert _post(client, "PSID-7", "m_1", "Cho mình hỏi giá sofa").status_code == 200
    assert _post(client, "PSID-7", "m_1", "Cho mình hỏi giá sofa").status_code == 200  # Meta's retry
    assert _count(db, Inbound) == 1
    inbound.process(db)
    db.commit()
    customer_id = db.scalar(sa.select(Identity.customer_id).where(Identity.kind == "facebook",
                                                                  Identity.value == "PSID-7"))
    [conversation] = db.scalars(sa.select(Conversation).where(Conversation.customer_id == customer_id))
    ticket = db.get(Ticket, conversation.ticket_id)
    assert (conversation.inbox_id, conversation.channel, ticket.channel) == (page.id, "messenger", "messenger")
    assert ticket.status == "new" and ticket.subject == "Cho mình hỏi giá sofa"
    _post(client, "PSID-7", "m_2", "Loại 3 chỗ ạ")
    inbound.process(db)
    db.commit()
    bodies = list(db.scalars(sa.select(Message.body).where(Message.ticket_id == ticket.id).order_by(Message.id)))
    assert bodies == ["Cho mình hỏi giá sofa", "Loại 3 chỗ ạ"]
    assert _count(db, Ticket, Ticket.customer_id == customer_id) == 1


def test_a_messenger_delivery_with_a_bad_signature_stores_nothing(client, db):
    save_inbox(db, InboxIn(name="Fanpage", channel="messenger", language="vi"))
    db.commit()
    r = _post(client, "PSID-8", "m_9", "Alo", secret="not-the-app-secret")
    assert r.status_code in (401, 403) and r.json()["error"]["code"]
    inbound.process(db)
    db.commit()
    assert _count(db, Inbound) == 0 and _count(db, Message) == 0 and _count(db, Ticket) == 0
