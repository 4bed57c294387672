"""The agent workspace through a browser (TestClient), on SQLite and PostgreSQL: the views with their counts,
filters and pages; a ticket with its conversation, notes, audit and the customer beside it; replies, notes
and controls going through the service functions (refusals named); live updates by server-sent events;
the 360's open tickets."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from clm.analytics.models import CustomerScore
from clm.lib.errors import FieldError
from clm.outbox.service import emit
from clm.service import audit, live, workspace
from clm.service.agents import AgentIn, TeamIn, save_agent, save_team
from clm.service.conversations import InboundIn, InboxIn, receive, save_inbox
from clm.service.models import Message, Ticket
from clm.service.tickets import TicketIn, add_note, open_ticket
from clm.web.sse import Timing
from tests.customers.shop import T0
from tests.dashboard.conftest import as_role, browser, cheap_hashing, token_of, user_factory  # noqa: F401

NOW = T0 + timedelta(days=2)


@pytest.fixture
def desk(db, app, shop, user_factory):  # noqa: F811
    """An agent (logged in by `agent_browser`), a colleague, a Zalo inbox, a customer with an order."""
    app.state.dashboard_clock = lambda: NOW
    app.state.sse_timing = Timing(interval=0, duration=0, heartbeat=60)
    me = user_factory("agent", email="lan@shop.vn")
    other = user_factory("agent", email="minh@shop.vn")
    for user in (me, other):
        save_agent(db, user.id, AgentIn(availability="online", capacity=5), now=T0)
    zalo = save_inbox(db, InboxIn(name="Zalo OA", channel="zalo", language="vi"))
    an = shop.customer("Nguyễn Văn An", phone="0912345678")
    shop.order(an, 1_250_000, order_id="SO-777", at=timedelta(hours=-5))
    db.commit()
    return {"me": me, "other": other, "zalo": zalo, "an": an}


def _client(browser, email):  # noqa: F811
    from tests.dashboard.conftest import log_in

    client = browser()
    assert log_in(client, email).status_code == 303
    return client


def _inbound(db, desk, body, key, *, customer=None, at=NOW):
    got = receive(db, InboundIn(inbox_id=desk["zalo"].id, customer_id=(customer or desk["an"]).id, body=body,
                                external_id=key, thread_key="zalo:an"), now=at)
    db.commit()
    return got


def test_the_views_count_and_list_mine_unassigned_team_and_sla_at_risk(db, browser, desk):  # noqa: F811
    me, other = desk["me"], desk["other"]
    team = save_team(db, TeamIn(name="CSKH", members=[me.id]))
    mine = open_ticket(db, TicketIn(customer_id=desk["an"].id, subject="Giao hàng chậm", assignee_id=me.id), now=T0)
    theirs = open_ticket(db, TicketIn(customer_id=desk["an"].id, subject="Đổi size", assignee_id=other.id,
                                      team_id=team.id, priority="high"), now=T0)
    queued = open_ticket(db, TicketIn(customer_id=desk["an"].id, subject="Hỏi giá", route=False), now=T0)
    db.commit()
    client = _client(browser, me.email)

    r = client.get("/service/inbox?view=mine")
    assert r.status_code == 200
    assert f'id="ticket-{mine.id}"' in r.text and f'id="ticket-{theirs.id}"' not in r.text
    counts = dict(re.findall(r'id="view-(\w+)">[^<]*<span class="count">(\d+)</span>', r.text))
    assert counts == {"mine": "1", "unassigned": "1", "team": "1", "sla_at_risk": "0", "all": "3"}
    r = client.get("/service/inbox?view=unassigned")
    assert f'id="ticket-{queued.id}"' in r.text and f'id="ticket-{mine.id}"' not in r.text
    r = client.get("/service/inbox?view=team")
    assert f'id="ticket-{theirs.id}"' in r.text and f'id="ticket-{mine.id}"' not in r.text
    r = client.get("/service/inbox?view=all&priority=high")
    assert f'id="ticket-{theirs.id}"' in r.text and f'id="ticket-{queued.id}"' not in r.text
    r = client.get("/service/inbox?view=all&status=nonsense")
    assert r.status_code == 422 and "status: &#39;nonsense&#39; is not a status" in r.text


def test_sla_at_risk_holds_tickets_whose_clock_is_due_within_the_hour(db, desk):
    from clm.service.sla import PolicyIn, save_policy

    save_policy(db, PolicyIn(name="Nhanh", first_response_minutes=30))
    urgent = open_ticket(db, TicketIn(customer_id=desk["an"].id, subject="Gấp", route=False), now=NOW)
    page = workspace.view_page(db, "sla_at_risk", desk["me"], workspace.Filters(), NOW)
    assert [t.id for t in page.tickets] == [urgent.id] and page.due[urgent.id] > NOW
    assert page.counts["sla_at_risk"] == 1  # the count agrees with the list
    earlier = workspace.view_page(db, "sla_at_risk", desk["me"], workspace.Filters(), NOW - timedelta(days=3))
    assert earlier.tickets == [] and earlier.counts["sla_at_risk"] == 0


def test_a_large_sla_at_risk_count_shows_the_cap_and_a_plus(db, browser, desk, monkeypatch):  # noqa: F811
    from clm.service import at_risk
    from clm.service.sla import PolicyIn, save_policy

    save_policy(db, PolicyIn(name="Nhanh", first_response_minutes=30))
    for i in range(3):
        open_ticket(db, TicketIn(customer_id=desk["an"].id, subject=f"Gấp {i}", route=False), now=NOW)
    db.commit()
    page = workspace.view_page(db, "sla_at_risk", desk["me"], workspace.Filters(), NOW)
    assert page.counts["sla_at_risk"] == len(page.tickets) == 3 and page.capped == set()
    monkeypatch.setattr(at_risk, "COUNT_CAP", 2)
    page = workspace.view_page(db, "sla_at_risk", desk["me"], workspace.Filters(), NOW)
    assert page.counts["sla_at_risk"] == 2 and page.capped == {"sla_at_risk"} and len(page.tickets) == 3
    r = _client(browser, desk["me"].email).get("/service/inbox?view=mine")
    assert re.search(r'id="view-sla_at_risk">[^<]*<span class="count">2\+</span>', r.text), r.text[:2000]


def test_a_view_pages_by_the_last_id_and_every_ticket_shows_once(db, desk):
    made = [open_ticket(db, TicketIn(customer_id=desk["an"].id, subject=f"Phiếu {i}", route=False), now=T0).id
            for i in range(7)]
    seen, after = [], None
    while True:
        page = workspace.view_page(db, "all", desk["me"], workspace.Filters(after=after), NOW, limit=3)
        seen += [t.id for t in page.tickets]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == sorted(made, reverse=True)
    with pytest.raises(FieldError) as refused:
        workspace.Filters.read(after="12abc")
    assert refused.value.field == "after"


def test_the_ticket_page_shows_the_conversation_notes_audit_and_the_customer(db, browser, desk):  # noqa: F811
    from clm.loyalty.models import Member
    from clm.sales.tasks import TaskIn, create_task

    an = desk["an"]
    got = _inbound(db, desk, "Đơn SO-777 của em chưa tới <script>alert(1)</script>", "z-1")
    add_note(db, got.ticket.id, "khách quen, ưu tiên", by=desk["other"].id, now=NOW)
    db.add(CustomerScore(customer_id=an.id, status="scored", p_alive=0.82, predicted_clv_12m=4_500_000, currency="VND",
                         run_id=1, computed_at=NOW))
    db.add(Member(customer_id=an.id, available=1200, pending=40, tier=None))
    create_task(db, TaskIn(subject="Gọi lại cho anh An", due_at=NOW + timedelta(hours=2), customer_id=an.id))
    db.commit()
    client = _client(browser, desk["me"].email)

    r = client.get(f"/service/tickets/{got.ticket.id}")
    assert r.status_code == 200
    html = r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "khách quen, ưu tiên" in html and 'class="msg msg-note"' in html
    assert re.search(r'id="panel-clv">₫4,500,000<', html) and re.search(r'id="panel-p-alive">82.0%<', html)
    assert re.search(r'id="panel-points">1,200 <span class="muted small">\+40 pending', html)
    assert "SO-777" in html and "Gọi lại cho anh An" in html
    assert f'id="ticket-assignee">{desk["me"].name}' in html or f'id="ticket-assignee">{desk["other"].name}' in html
    assert "Routing" in html  # the assignment is in the audit, by routing


def test_a_reply_from_the_page_is_recorded_by_the_agent_and_announced(db, browser, desk):  # noqa: F811
    got = _inbound(db, desk, "Cho em hỏi size áo", "z-2")
    client = _client(browser, desk["me"].email)
    token = token_of(client)
    r = client.post(f"/service/tickets/{got.ticket.id}/reply", data={"body": "Dạ, shop tư vấn size M ạ", "key": "k1",
                                                                     "csrf_token": token},
                    headers={"HX-Request": "true"})
    assert r.status_code == 200 and 'id="thread"' in r.text and "Dạ, shop tư vấn size M ạ" in r.text
    again = client.post(f"/service/tickets/{got.ticket.id}/reply", data={"body": "Dạ, shop tư vấn size M ạ",
                                                                         "key": "k1", "csrf_token": token})
    assert again.status_code == 303  # the same form sent twice: one reply
    db.expire_all()
    replies = db.scalars(sa.select(Message).where(Message.ticket_id == got.ticket.id, Message.direction == "out")).all()
    assert [(m.body, m.author_id) for m in replies] == [("Dạ, shop tư vấn size M ạ", desk["me"].id)]
    ticket = db.get(Ticket, got.ticket.id)
    assert ticket.status == "open" and ticket.first_response_at == NOW


@pytest.mark.parametrize("body,needle", [
    ("   ", "body: write the reply first"),
    ("x" * 2001, "body: a zalo reply is at most 2,000 characters (2,001 written)"),
])
def test_a_bad_reply_is_refused_by_name_and_nothing_is_stored(db, browser, desk, body, needle):  # noqa: F811
    got = _inbound(db, desk, "Alo shop", "z-3")
    client = _client(browser, desk["me"].email)
    r = client.post(f"/service/tickets/{got.ticket.id}/reply", data={"body": body, "csrf_token": token_of(client)},
                    headers={"HX-Request": "true"})
    assert r.status_code == 422 and needle in r.text
    assert db.scalar(sa.select(sa.func.count()).select_from(Message).where(Message.direction == "out")) == 0


def test_the_controls_change_status_priority_tags_and_assignee_audited_by_the_user(db, browser, desk):  # noqa: F811
    got = _inbound(db, desk, "Hàng bị vỡ", "z-4")
    me, other = desk["me"], desk["other"]
    client = _client(browser, me.email)
    r = client.post(f"/service/tickets/{got.ticket.id}", headers={"HX-Request": "true"}, data={
        "csrf_token": token_of(client), "status": "pending_customer", "priority": "urgent", "tags": "vỡ hàng, Đổi trả",
        "assignee": str(other.id)})
    assert r.status_code == 200 and 'id="side"' in r.text
    db.expire_all()
    ticket = db.get(Ticket, got.ticket.id)
    assert (ticket.status, ticket.priority, ticket.tags, ticket.assignee_id) == (
        "pending_customer", "urgent", ["vỡ hàng", "đổi trả"], other.id)
    changes = {c.field: c.user_id for c in audit.history(db, ticket.id) if c.actor == "user"}
    assert changes == {"status": me.id, "priority": me.id, "tags": me.id, "assignee_id": me.id}


def test_assigning_an_agent_at_capacity_is_refused_with_409_and_nothing_changes(db, browser, desk):  # noqa: F811
    other = desk["other"]
    save_agent(db, other.id, AgentIn(capacity=0), now=T0)
    got = _inbound(db, desk, "Hỏi bảo hành", "z-5")
    before = db.get(Ticket, got.ticket.id).assignee_id
    client = _client(browser, desk["me"].email)
    r = client.post(f"/service/tickets/{got.ticket.id}", headers={"HX-Request": "true"},
                    data={"csrf_token": token_of(client), "assignee": str(other.id), "priority": "high"})
    assert r.status_code == 409 and "assignee_id: agent" in r.text and "capacity" in r.text
    db.expire_all()
    ticket = db.get(Ticket, got.ticket.id)
    assert ticket.assignee_id == before and ticket.priority == "normal"


def test_an_agent_sets_their_availability(db, browser, desk):  # noqa: F811
    from clm.service.models import Agent

    client = _client(browser, desk["me"].email)
    r = client.post("/service/availability", data={"availability": "busy", "csrf_token": token_of(client)})
    assert r.status_code == 303
    db.expire_all()
    assert db.get(Agent, desk["me"].id).availability == "busy"


def _events(text: str) -> list[dict]:
    return [json.loads(block.split("data: ", 1)[1]) for block in text.split("\n\n") if "data: " in block]


def test_the_live_stream_sends_what_happened_after_the_page_opened(db, browser, desk):  # noqa: F811
    first = _inbound(db, desk, "Tin thứ nhất", "z-6")
    start = live.head(db)
    second = _inbound(db, desk, "Tin thứ hai", "z-7", customer=desk["an"])
    other = open_ticket(db, TicketIn(customer_id=desk["an"].id, subject="Khác", route=False), now=NOW)
    db.commit()
    client = _client(browser, desk["me"].email)

    r = client.get(f"/service/live?after={start}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.text)
    assert {"topic": "service.message_received", "ticket_id": second.ticket.id} in events
    assert {"topic": "service.ticket_opened", "ticket_id": other.id} in events
    assert all(e["topic"].startswith("service.") for e in events)
    r = client.get(f"/service/live?ticket={first.ticket.id}", headers={"Last-Event-ID": str(start)})
    assert {e["ticket_id"] for e in _events(r.text)} == {first.ticket.id}


def test_the_feed_sends_an_event_that_committed_after_a_later_one_and_never_twice(db):
    emit(db, "service.reply", None, {"ticket_id": 1})
    db.flush()
    behind = live.head(db)
    emit(db, "service.reply", None, {"ticket_id": 2})
    db.flush()
    feed = live.Feed(live.head(db))
    feed.sent.add(feed.last)  # the later one was sent; the earlier one "committed" after it
    got = feed.read(db)
    assert [u.id for u in got] == [behind]
    assert feed.read(db) == []


def test_the_customer_360_lists_the_open_tickets(db, browser, desk):  # noqa: F811
    got = _inbound(db, desk, "Hỏi đơn hàng", "z-8")
    client = _client(browser, desk["me"].email)
    r = client.get(f"/customers/{desk['an'].id}")
    assert r.status_code == 200 and 'id="tickets"' in r.text
    assert f'href="/service/tickets/{got.ticket.id}">{got.ticket.number}</a>' in r.text


def test_the_workspace_speaks_vietnamese(db, browser, user_factory, desk):  # noqa: F811
    user = user_factory("agent", email="vi@shop.vn", locale="vi")
    client = _client(browser, user.email)
    r = client.get("/service/inbox?view=unassigned")
    assert 'lang="vi"' in r.text and "Chưa phân công" in r.text and "Chăm sóc khách hàng" in r.text
