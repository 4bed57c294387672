"""Customers' messages are accepted fast and durably (stored once, committed before the answer) and filed by
the worker's `service.inbound` step in batches, in arrival order (clm.service.inbound)."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
import sqlalchemy as sa

from clm.access.models import User
from clm.customers.models import Customer, Identity
from clm.db.engine import for_writing, make_engine, make_session_factory
from clm.lib.clock import utcnow
from clm.service import inbound
from clm.service.agents import AgentIn, loads, save_agent
from clm.service.conversations import InboxIn, save_inbox
from clm.service.models import Change, Conversation, Inbound, Message, Ticket
from clm.tracking.models import Event
from tests.conftest import POSTGRES_URL
from tests.service.test_concurrency import run_at_once


def _count(db, model, *where) -> int:
    return db.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def _file(db) -> int:
    """What the worker does a moment after the acknowledgement."""
    done = inbound.process(db)
    db.commit()
    return done


def test_a_message_is_acknowledged_once_stored_and_filed_by_the_worker(client, db, shop, zalo, make_agent,
                                                                      api_key_for):
    agent = make_agent("Lan")
    customer = shop.customer("Nguyễn Văn An")
    db.commit()
    headers = api_key_for("service:read", "service:write")
    body = {"inbox_id": zalo.id, "customer_id": customer.id, "body": "Cho hỏi đơn hàng", "external_id": "zalo:q1"}
    first = client.post("/api/v1/service/messages", json=body, headers=headers)
    assert first.status_code == 202 and first.json()["state"] == "queued"
    assert _count(db, Inbound) == 1 and _count(db, Ticket) == 0  # stored, not filed yet

    assert _file(db) == 1
    again = client.post("/api/v1/service/messages", json=body, headers=headers)
    assert again.status_code == 200 and again.json()["created"] is False and again.json()["state"] == "processed"
    ticket = db.get(Ticket, again.json()["ticket_id"])
    assert ticket.assignee_id == agent.id and ticket.status == "new"
    assert _file(db) == 0  # the resend stored nothing to file
    assert _count(db, Inbound) == 1 and _count(db, Message, Message.external_id == "zalo:q1") == 1
    mine = client.get("/api/v1/service/tickets", params={"view": "mine", "user_id": agent.id}, headers=headers)
    assert [t["id"] for t in mine.json()["data"]] == [ticket.id]


def test_two_first_messages_of_one_customer_arriving_together_open_one_ticket(client, db, shop, zalo, api_key_for):
    customer = shop.customer("Trần Thị Bình")
    db.commit()
    headers = api_key_for("service:write")
    for n in (1, 2):
        r = client.post("/api/v1/service/messages", headers=headers, json={
            "inbox_id": zalo.id, "customer_id": customer.id, "body": f"Tin {n}", "external_id": f"zalo:b{n}"})
        assert r.status_code == 202
    assert _file(db) == 2
    tickets = db.scalars(sa.select(Ticket).where(Ticket.customer_id == customer.id)).all()
    assert len(tickets) == 1
    bodies = db.scalars(sa.select(Message.body).where(Message.ticket_id == tickets[0].id).order_by(Message.id))
    assert list(bodies) == ["Tin 1", "Tin 2"]  # in arrival order


def test_a_message_that_cannot_be_filed_keeps_its_reason_and_the_others_go_through(client, db, shop, zalo,
                                                                                  api_key_for):
    customer = shop.customer("Lê Văn Cường")
    db.commit()
    headers = api_key_for("service:write")
    bad = client.post("/api/v1/service/messages", headers=headers, json={
        "inbox_id": 987654, "customer_id": customer.id, "body": "x", "external_id": "zalo:bad"})
    good = client.post("/api/v1/service/messages", headers=headers, json={
        "inbox_id": zalo.id, "customer_id": customer.id, "body": "Chào shop", "external_id": "zalo:good"})
    assert (bad.status_code, good.status_code) == (202, 202)
    assert _file(db) == 2
    row = db.get(Inbound, bad.json()["id"])
    assert row.processed_at is not None and "no inbox 987654" in row.error and row.ticket_id is None
    assert db.get(Inbound, good.json()["id"]).ticket_id is not None
    again = client.post("/api/v1/service/messages", headers=headers, json={
        "inbox_id": 987654, "customer_id": customer.id, "body": "x", "external_id": "zalo:bad"})
    assert again.status_code == 200 and again.json()["state"] == "failed" and "987654" in again.json()["error"]


HOOKS = {"zalo_oa_secret_key": "oa-secret", "zalo_app_id": "app-1"}


@pytest.fixture
def settings():
    from clm.config import Settings

    return Settings(database_url="sqlite://", dashboard_warm_up=False, _env_file=None, **HOOKS)


def _zalo_text(client, user_id: str, msg_id: str, text: str):
    event = {"event_name": "user_send_text", "app_id": "app-1", "sender": {"id": user_id},
             "recipient": {"id": "OA1"}, "timestamp": "1760000000000", "message": {"msg_id": msg_id, "text": text}}
    raw = json.dumps(event).encode()
    mac = hashlib.sha256(b"app-1" + raw + b"1760000000000" + b"oa-secret").hexdigest()
    return client.post("/hooks/zalo", content=raw, headers={"X-ZEvent-Signature": f"mac={mac}"})


def test_a_zalo_message_through_the_webhook_is_stored_then_opens_a_conversation(client, db, zalo):
    db.commit()
    first = _zalo_text(client, "ZU-1", "zm-1", "Shop ơi còn hàng không?")
    again = _zalo_text(client, "ZU-1", "zm-1", "Shop ơi còn hàng không?")  # Zalo's retry
    assert (first.status_code, again.status_code) == (200, 200)
    assert (first.json()["replies"], again.json()["replies"]) == (1, 0)
    assert _count(db, Inbound) == 1 and _count(db, Event, Event.name == "Message Received") == 0
    assert _file(db) == 1
    customer_id = db.scalar(sa.select(Identity.customer_id).where(Identity.kind == "zalo", Identity.value == "ZU-1"))
    assert customer_id is not None
    assert _count(db, Event, Event.name == "Message Received", Event.customer_id == customer_id) == 1
    conversation = db.scalars(sa.select(Conversation).where(Conversation.customer_id == customer_id)).one()
    assert conversation.inbox_id == zalo.id and conversation.thread_key == "zalo:ZU-1"
    _zalo_text(client, "ZU-1", "zm-2", "Size M nhé")
    assert _file(db) == 1
    assert _count(db, Message, Message.conversation_id == conversation.id) == 2
    assert _count(db, Ticket, Ticket.customer_id == customer_id) == 1


def test_a_reply_on_a_channel_the_desk_has_no_inbox_for_is_only_an_event(client, db):
    first = _zalo_text(client, "ZU-2", "zm-9", "Chào")
    assert first.status_code == 200
    assert _file(db) == 1
    assert _count(db, Event, Event.name == "Message Received") == 1 and _count(db, Ticket) == 0


def _clean_committed(engine) -> None:
    with engine.begin() as conn:
        for table in ("service_inbound", "customers", "service_inboxes", "service_agents", "users",
                      "code_sequences", "outbox", "jobs", "service_settings"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
        conn.execute(sa.text("DELETE FROM outbox_cursors WHERE consumer = :step"), {"step": inbound.STEP})


@pytest.mark.skipif(not POSTGRES_URL, reason="CLM_TEST_POSTGRES_URL is not set")
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_a_burst_accepted_at_once_and_filed_by_two_workers_respects_capacity_and_customers(engine, many_connections):
    """40 messages of 20 customers (two each, sent at the same instant, 10 resent) accepted by 40 threads, then
    filed by two workers at once: every message once, one ticket per customer, agents within capacity."""
    _clean_committed(engine)  # and rows another committing test may have left
    wide = make_engine(POSTGRES_URL, pool_size=45, max_overflow=0)
    factory = make_session_factory(wide)
    try:
        with factory() as session:
            for_writing(session)
            agent_ids = []
            for n in range(3):
                user = User(email=f"burst{n}@desk.vn", name=f"Agent {n}", role="agent", password_hash="x",
                            active=True, created_at=utcnow())
                session.add(user)
                session.flush()
                save_agent(session, user.id, AgentIn(availability="online", capacity=4))
                agent_ids.append(user.id)
            customers = [Customer(full_name=f"Khách {n}", search_text="", traits={}) for n in range(20)]
            session.add_all(customers)
            inbox = save_inbox(session, InboxIn(name="Zalo", channel="zalo"))
            session.commit()
            customer_ids, inbox_id = [c.id for c in customers], inbox.id

        def arrive(n: int) -> bool:
            m = n % 40  # 40..49 resend 0..9
            with factory() as session:
                for_writing(session)
                _, created = inbound.accept(session, "api", f"zalo:burst:{m}", {
                    "inbox_id": inbox_id, "customer_id": customer_ids[m // 2], "body": f"Tin {m}",
                    "external_id": f"zalo:burst:{m}"})
                session.commit()
                return created

        accepted = run_at_once(50, arrive)
        assert [a for a in accepted if isinstance(a, Exception)] == []
        assert sum(accepted) == 40

        from clm.worker.loop import Worker
        from clm.worker.steps import Step

        def work(_n: int) -> int:
            """Rounds until nothing waits: a round finds the step claimed by the other worker now and then, so
            a fixed number of rounds filed everything only when the timing allowed (35 of 40 once)."""
            worker, step, done = Worker(factory, []), Step(inbound.STEP, inbound.InboundConsumer(batch=7)), 0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                done += worker.run_step(step)
                with factory() as session:
                    if inbound.waiting(session) == 0:
                        return done
                time.sleep(0.005)
            return done

        filed = run_at_once(2, work)
        assert [f for f in filed if isinstance(f, Exception)] == [] and sum(filed) == 40
        with factory() as session:
            # (counted on this test's own customers and agents: other tests' rows are not this test's business)
            mine = Message.customer_id.in_(customer_ids)
            assert _count(session, Inbound, Inbound.processed_at.is_(None)) == 0
            assert _count(session, Message, mine) == 40
            assert session.scalar(sa.select(sa.func.count(sa.distinct(Message.external_id))).where(mine)) == 40
            per_customer = session.execute(sa.select(Ticket.customer_id, sa.func.count()).where(
                Ticket.customer_id.in_(customer_ids)).group_by(Ticket.customer_id)).all()
            assert len(per_customer) == 20 and {n for _, n in per_customer} == {1}
            assert sorted(loads(session, agent_ids).values()) == [4, 4, 4]  # 12 assigned, 8 queued
            assignments = session.execute(sa.select(Change.ticket_id, sa.func.count()).where(
                Change.field == "assignee_id", Change.customer_id.in_(customer_ids)).group_by(Change.ticket_id)).all()
            assert len(assignments) == 12 and {n for _, n in assignments} == {1}
            numbers = session.scalars(sa.select(Ticket.number).where(Ticket.customer_id.in_(customer_ids))).all()
            assert len(set(numbers)) == 20
    finally:
        _clean_committed(engine)
        wide.dispose()
