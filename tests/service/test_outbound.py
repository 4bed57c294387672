"""Agents' replies go out on the conversation's channel through the outbox, under each provider's rules.

SMS to the phone, Zalo as an OA consultation message to the follower, Messenger inside its window (with the
HUMAN_AGENT tag after 24 hours, refused after 7 days before anything is stored); a retried reply queues
nothing new. Times are relative to the real clock here: the send job and the Messenger adapter read it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from clm.channels.adapters.messenger import MessengerAdapter
from clm.channels.adapters.zalo import ZaloZnsAdapter
from clm.channels.models import Message as OutboxMessage
from clm.customers.models import Identity
from clm.jobs.runner import run_due
from clm.lib.clock import utcnow
from clm.service.conversations import InboundIn, InboxIn, ReplyIn, receive, reply, save_inbox
from clm.service.errors import ServiceConflict
from clm.service.models import Message
from tests.channels.providers.fakes import FakeServer, MessengerFake, Request, as_json
from tests.channels.test_sending import Scripted, registry_for


def customer_with(db, shop, kind: str | None = None, value: str | None = None, **traits):
    customer = shop.customer("Nguyễn Văn An", **traits)
    if kind:
        db.add(Identity(customer_id=customer.id, kind=kind, value=value, verified=False, created_at=utcnow()))
        db.flush()
    return customer


def conversation_on(db, channel: str, customer, *, ago: timedelta = timedelta(minutes=5)):
    inbox = save_inbox(db, InboxIn(name=f"{channel} inbox", channel=channel))
    return receive(db, InboundIn(inbox_id=inbox.id, customer_id=customer.id, body="Cho hỏi đơn hàng",
                                 external_id=f"{channel}:in-1"), now=utcnow() - ago).ticket


def outbox(db) -> list[OutboxMessage]:
    db.expire_all()
    return list(db.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)))


def test_an_sms_reply_goes_to_the_customers_phone_once_however_often_it_is_retried(
        db, session_factory, shop, make_agent, settings):
    agent = make_agent("Lan")
    customer = customer_with(db, shop, phone="0912345678")
    ticket = conversation_on(db, "sms", customer)
    first = reply(db, ticket.id, ReplyIn(body="Dạ đơn đã giao ạ", external_id="ui-1"), by=agent.id, settings=settings)
    again = reply(db, ticket.id, ReplyIn(body="Dạ đơn đã giao ạ", external_id="ui-1"), by=agent.id, settings=settings)
    db.commit()
    assert again.id == first.id
    [row] = outbox(db)
    assert (row.channel, row.address, row.text, row.status) == ("sms", "+84912345678", "Dạ đơn đã giao ạ", "queued")
    sms = Scripted()
    assert run_due(session_factory, registry_for(settings, {"sms": sms}), "w") == 1
    assert [(o.to, o.text) for o in sms.sent] == [("+84912345678", "Dạ đơn đã giao ạ")]
    assert db.get(Message, first.id).meta["outbox_message_id"] == row.id


class ZaloOaFake(FakeServer):
    """The OA API's POST /v3.0/oa/message/cs (PROVIDERS.md section 3, "Reply within the consultation window")."""

    def __init__(self, token: str, followers: set[str]):
        super().__init__()
        self.token, self.followers = token, followers

    def answer(self, r: Request):
        if r.method != "POST" or r.path != "/v3.0/oa/message/cs" or r.headers.get("access_token") != self.token:
            self.violation(f"{r.method} {r.path} token {r.headers.get('access_token')!r}")
            return as_json(200, {"error": -124, "message": "Access token is invalid"})
        body = r.json
        user, text = body["recipient"].get("user_id"), body["message"].get("text", "")
        if user not in self.followers:
            return as_json(200, {"error": -213, "message": "User has not followed OA"})
        if not text or len(text) > 2000:
            self.violation("text length")
        return as_json(200, {"error": 0, "message": "Success", "data": {"message_id": "zcs-1", "user_id": user}})


def test_a_zalo_reply_is_an_oa_message_to_the_follower(db, session_factory, shop, make_agent, settings):
    agent = make_agent("Lan")
    customer = customer_with(db, shop, "zalo", "979122185046046317")
    ticket = conversation_on(db, "zalo", customer)
    reply(db, ticket.id, ReplyIn(body="Chào anh, shop kiểm tra ngay ạ"), by=agent.id, settings=settings)
    db.commit()
    with ZaloOaFake("oa-token", {"979122185046046317"}) as fake:
        adapter = ZaloZnsAdapter("oa-token", url=fake.url, oa_url=fake.url)
        assert run_due(session_factory, registry_for(settings, {"zalo": adapter}), "w") == 1
    assert fake.violations == []
    assert fake.requests[0].json == {"recipient": {"user_id": "979122185046046317"},
                                     "message": {"text": "Chào anh, shop kiểm tra ngay ạ"}}
    [row] = outbox(db)
    assert (row.status, row.provider_id, row.address) == ("sent", "zcs-1", "979122185046046317")


def test_a_zalo_reply_to_a_customer_who_never_wrote_to_the_oa_is_suppressed_with_why(db, shop, make_agent, settings):
    agent = make_agent("Lan")
    customer = customer_with(db, shop, phone="0912345678")
    ticket = conversation_on(db, "zalo", customer)
    answer = reply(db, ticket.id, ReplyIn(body="Chào anh"), by=agent.id, settings=settings)
    [row] = outbox(db)
    assert row.status == "suppressed" and "no Zalo user id" in row.status_reason
    assert db.get(Message, answer.id).meta["delivery"] == "suppressed"


@pytest.mark.parametrize("hours, tag_sent", [(2, None), (72, "HUMAN_AGENT")])
def test_a_messenger_reply_inside_the_window_goes_with_the_right_messaging_type(
        db, session_factory, shop, make_agent, settings, hours, tag_sent):
    agent = make_agent("Lan")
    customer = customer_with(db, shop, "facebook", "PSID-1")
    ticket = conversation_on(db, "messenger", customer, ago=timedelta(hours=hours))
    reply(db, ticket.id, ReplyIn(body="Dạ shop nghe ạ"), by=agent.id, settings=settings)
    db.commit()
    with MessengerFake("page-token", {"PSID-1": hours}) as fake:
        adapter = MessengerAdapter("page-token", graph_url=fake.url + "/v25.0")
        assert run_due(session_factory, registry_for(settings, {"messenger": adapter}), "w") == 1
    assert fake.violations == []
    sent = fake.requests[0].json
    assert sent.get("tag") == tag_sent
    assert sent["messaging_type"] == ("MESSAGE_TAG" if tag_sent else "RESPONSE")
    assert outbox(db)[0].status == "sent"


def test_a_messenger_reply_a_week_after_the_customer_wrote_is_refused_and_nothing_is_stored(
        db, shop, make_agent, settings):
    agent = make_agent("Lan")
    customer = customer_with(db, shop, "facebook", "PSID-2")
    ticket = conversation_on(db, "messenger", customer, ago=timedelta(days=8))
    with pytest.raises(ServiceConflict) as refused:
        reply(db, ticket.id, ReplyIn(body="Xin lỗi anh"), by=agent.id, settings=settings)
    assert refused.value.code == "messenger_window_closed"
    assert "8 days ago" in refused.value.message and "HUMAN_AGENT" in refused.value.message
    assert outbox(db) == []
    assert db.scalar(sa.select(sa.func.count()).select_from(Message).where(Message.direction == "out")) == 0


def test_the_api_answers_409_naming_the_messenger_window(client, db, shop, make_agent, api_key_for):
    agent = make_agent("Lan")
    customer = customer_with(db, shop, "facebook", "PSID-3")
    ticket = conversation_on(db, "messenger", customer, ago=timedelta(days=9))
    db.commit()
    response = client.post(f"/api/v1/service/tickets/{ticket.id}/replies",
                           json={"body": "Xin lỗi anh", "author_id": agent.id},
                           headers=api_key_for("service:read", "service:write"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "messenger_window_closed"


def test_a_chat_reply_is_recorded_without_an_outbox_message(db, shop, make_agent, settings):
    agent = make_agent("Lan")
    ticket = conversation_on(db, "chat", customer_with(db, shop))
    reply(db, ticket.id, ReplyIn(body="Chào bạn"), by=agent.id, settings=settings)
    assert outbox(db) == []
