"""Routing: follow-up only while available, the owner, team rules, least load in turn, the queue drained by
priority then oldest, VIPs first, re-offer, capacity that is never exceeded."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from clm.customers.models import Customer
from clm.service import audit
from clm.service.agents import AgentIn, TeamIn, loads, save_agent, save_team
from clm.service.conversations import InboundIn, ReplyIn, receive, reply
from clm.service.models import Ticket
from clm.service.routing import (
    RoutingSettings,
    RuleIn,
    drain,
    reoffer,
    route,
    save_routing_settings,
    save_rule,
)
from clm.service.tickets import TicketIn, TicketUpdate, open_ticket, update_ticket
from tests.customers.shop import T0


def write(db, zalo, customer, body="Xin chào", at=T0, **extra):
    return receive(db, InboundIn(inbox_id=zalo.id, customer_id=customer.id, body=body, **extra), now=at).ticket


def test_follow_up_goes_to_the_agent_who_last_helped_the_customer_while_available(db, shop, zalo, make_agent):
    lan, minh = make_agent("Lan"), make_agent("Minh")
    customer = shop.customer("Nguyễn Văn An")
    first = open_ticket(db, TicketIn(customer_id=customer.id, subject="đơn 1", assignee_id=lan.id), now=T0)
    update_ticket(db, first.id, TicketUpdate(status="solved"), now=T0 + timedelta(hours=1))
    second = write(db, zalo, customer, at=T0 + timedelta(days=2))
    assert second.assignee_id == lan.id
    assert second.assignment_reason.startswith("follow-up: Lan handled this customer 2 days ago, online, 0 of 8")
    update_ticket(db, second.id, TicketUpdate(status="solved"), now=T0 + timedelta(days=2, hours=1))
    save_agent(db, lan.id, AgentIn(availability="offline"), now=T0)
    third = write(db, zalo, customer, body="lại là tôi", at=T0 + timedelta(days=3), thread_key="new")
    assert third.id != second.id
    assert third.assignee_id == minh.id and third.assignment_reason.startswith("least load")


def test_follow_up_ends_after_the_configured_days(db, shop, zalo, make_agent):
    lan = make_agent("Lan")
    make_agent("Minh")
    save_routing_settings(db, RoutingSettings(follow_up_days=3))
    customer = shop.customer("Trần Thị Bình")
    old = open_ticket(db, TicketIn(customer_id=customer.id, subject="cũ", assignee_id=lan.id), now=T0)
    update_ticket(db, old.id, TicketUpdate(status="closed"), now=T0)
    later = write(db, zalo, customer, at=T0 + timedelta(days=5))
    assert later.assignment_reason.startswith("least load")


def test_the_customers_owner_comes_before_the_least_loaded(db, shop, zalo, make_agent):
    owner = make_agent("Hoa")
    make_agent("Minh")
    customer = shop.customer("Lê Văn Cường")
    open_ticket(db, TicketIn(customer_id=shop.customer("x").id, subject="load", assignee_id=owner.id), now=T0)
    db.get(Customer, customer.id).owner_id = owner.id
    ticket = write(db, zalo, customer)
    assert ticket.assignee_id == owner.id
    assert ticket.assignment_reason == "owner: Hoa owns this customer, online, 1 of 8"


def test_a_team_rule_limits_the_choice_to_the_teams_members(db, shop, zalo, make_agent):
    lan, minh, tuan = make_agent("Lan"), make_agent("Minh"), make_agent("Tuấn")
    team = save_team(db, TeamIn(name="Zalo team", members=[minh.id, tuan.id]))
    save_rule(db, RuleIn(team_id=team.id, channel="zalo"))
    for n in range(4):
        ticket = write(db, zalo, shop.customer(f"khách {n}"))
        assert ticket.team_id == team.id and ticket.assignee_id in (minh.id, tuan.id)
        assert ticket.assignment_reason.startswith("team rule")
    assert loads(db) == {minh.id: 2, tuan.id: 2}
    assert lan.id not in loads(db)


def test_equal_loads_take_turns(db, shop, zalo, make_agent):
    agents = [make_agent(n) for n in ("A", "B", "C")]
    got = [write(db, zalo, shop.customer(f"k{n}"), at=T0 + timedelta(minutes=n)).assignee_id for n in range(6)]
    assert got == [a.id for a in agents] * 2


def test_nobody_available_leaves_the_ticket_queued_then_oldest_and_most_urgent_go_first(db, shop, zalo, make_agent):
    agent = make_agent("Lan", availability="offline", capacity=2)
    low = open_ticket(db, TicketIn(customer_id=shop.customer("a").id, subject="old low", priority="low"), now=T0)
    old = open_ticket(db, TicketIn(customer_id=shop.customer("b").id, subject="old normal"),
                      now=T0 + timedelta(minutes=1))
    new = open_ticket(db, TicketIn(customer_id=shop.customer("c").id, subject="new normal"),
                      now=T0 + timedelta(minutes=2))
    urgent = open_ticket(db, TicketIn(customer_id=shop.customer("d").id, subject="urgent", priority="urgent"),
                         now=T0 + timedelta(minutes=3))
    assert all(t.assignee_id is None for t in (low, old, new, urgent))
    assert low.assignment_reason == "queued: no agent is online with room"
    save_agent(db, agent.id, AgentIn(availability="online"), now=T0 + timedelta(minutes=5))
    db.expire_all()
    assert [db.get(Ticket, t.id).assignee_id for t in (urgent, old, new, low)] == [agent.id, agent.id, None, None]
    assert db.get(Ticket, urgent.id).assignment_reason.startswith("from the queue: least load")
    # Solving one frees room: the next oldest takes it.
    update_ticket(db, urgent.id, TicketUpdate(status="solved"), now=T0 + timedelta(minutes=6))
    db.expire_all()
    assert db.get(Ticket, new.id).assignee_id == agent.id and db.get(Ticket, low.id).assignee_id is None


def test_vips_go_first_when_the_business_says_so(db, shop, make_agent):
    from clm.loyalty.models import Member

    save_routing_settings(db, RoutingSettings(vip_first=True, vip_tiers=["gold"]))
    plain = open_ticket(db, TicketIn(customer_id=shop.customer("a").id, subject="x", priority="high"), now=T0)
    vip_customer = shop.customer("vip")
    db.add(Member(customer_id=vip_customer.id, tier="gold"))
    db.flush()
    vip = open_ticket(db, TicketIn(customer_id=vip_customer.id, subject="y"), now=T0 + timedelta(minutes=1))
    assert vip.vip and not plain.vip
    agent = make_agent("Lan", capacity=1)
    db.expire_all()
    assert db.get(Ticket, vip.id).assignee_id == agent.id
    assert db.get(Ticket, plain.id).assignee_id is None


def test_a_ticket_without_a_reply_is_offered_to_another_agent(db, shop, zalo, make_agent):
    save_routing_settings(db, RoutingSettings(reoffer_minutes=10))
    lan = make_agent("Lan")
    ticket = write(db, zalo, shop.customer("a"))
    assert ticket.assignee_id == lan.id
    minh = make_agent("Minh")
    assert not reoffer(db, ticket.id, "2000-01-01T00:00:00+00:00", T0 + timedelta(minutes=10))
    assert reoffer(db, ticket.id, ticket.assigned_at.isoformat(), T0 + timedelta(minutes=10))
    assert ticket.assignee_id == minh.id
    assert ticket.assignment_reason.startswith("re-offered after 10 min without a reply from Lan; least load")
    # Minh answers: his re-offer does nothing.
    reply(db, ticket.id, ReplyIn(body="Dạ em nghe"), by=minh.id, now=T0 + timedelta(minutes=12))
    assert not reoffer(db, ticket.id, ticket.assigned_at.isoformat(), T0 + timedelta(minutes=20))
    assert ticket.assignee_id == minh.id


def test_a_reopened_ticket_does_not_go_back_to_an_offline_agent(db, shop, zalo, make_agent):
    lan = make_agent("Lan")
    customer = shop.customer("a")
    ticket = write(db, zalo, customer)
    update_ticket(db, ticket.id, TicketUpdate(status="solved"), now=T0 + timedelta(minutes=5))
    save_agent(db, lan.id, AgentIn(availability="offline"))
    minh = make_agent("Minh")
    again = write(db, zalo, customer, body="chưa được", at=T0 + timedelta(hours=1))
    assert again.id == ticket.id and again.status == "open"
    assert again.assignee_id == minh.id
    assert "while Lan is offline" in again.assignment_reason


def test_manual_assignment_respects_capacity_and_is_audited(db, shop, make_agent):
    import pytest

    from clm.service.errors import ServiceConflict

    lan = make_agent("Lan", capacity=1)
    boss = make_agent("Sếp", role="manager")
    first = open_ticket(db, TicketIn(customer_id=shop.customer("a").id, subject="1", route=False))
    second = open_ticket(db, TicketIn(customer_id=shop.customer("b").id, subject="2", route=False))
    update_ticket(db, first.id, TicketUpdate(assignee_id=lan.id), by=boss.id)
    with pytest.raises(ServiceConflict) as err:
        update_ticket(db, second.id, TicketUpdate(assignee_id=lan.id), by=boss.id)
    assert err.value.code == "agent_full" and err.value.field == "assignee_id"
    [change] = audit.history(db, first.id, "assignee_id")
    assert change.user_id == boss.id and change.reason.startswith("manual: assigned by Sếp")


def test_agents_coming_online_take_from_the_queue_up_to_their_capacity_never_beyond(db, make_agent):
    agents = [make_agent(f"A{n}", availability="offline", capacity=20) for n in range(10)]
    db.add_all(Customer(full_name=f"c{n}", search_text="", traits={}) for n in range(250))
    db.flush()
    ids = list(db.scalars(sa.select(Customer.id).order_by(Customer.id.desc()).limit(250)))
    db.add_all(Ticket(number=f"TK-9{n:05d}", customer_id=cid, subject="hi", channel="zalo", tags=[], fields={},
                      created_at=T0 + timedelta(seconds=n), updated_at=T0) for n, cid in enumerate(ids))
    db.flush()
    for agent in agents:  # they come online one by one: the queue is drained each time, then evened out
        save_agent(db, agent.id, AgentIn(availability="online"), now=T0 + timedelta(hours=1))
    assert drain(db, T0 + timedelta(hours=1)) == 0
    counts = loads(db)
    assert counts == {a.id: 20 for a in agents}
    waiting = db.scalars(sa.select(Ticket.created_at).where(Ticket.assignee_id.is_(None))).all()
    assert len(waiting) == 50 and min(waiting) == T0 + timedelta(seconds=200)  # the oldest went first


def test_a_thousand_conversations_spread_over_ten_agents_within_one_of_each_other(db, make_agent):
    agents = [make_agent(f"A{n}", capacity=100) for n in range(10)]
    db.add_all(Customer(full_name=f"c{n}", search_text="", traits={}) for n in range(1000))
    db.flush()
    ids = list(db.scalars(sa.select(Customer.id).order_by(Customer.id.desc()).limit(1000)))
    tickets = [Ticket(number=f"TK-8{n:05d}", customer_id=cid, subject="hi", channel="zalo", tags=[], fields={},
                      created_at=T0, updated_at=T0) for n, cid in enumerate(ids)]
    db.add_all(tickets)
    db.flush()
    ticket_ids = [t.id for t in tickets]
    db.expunge_all()  # each arrival is routed in a small transaction of its own in production
    spread = []
    for n, ticket_id in enumerate(ticket_ids):
        route(db, ticket_id, T0 + timedelta(seconds=n))
        db.expunge_all()
        if n % 100 == 99:
            counts = loads(db)
            spread.append(max(counts.values()) - min(counts.get(a.id, 0) for a in agents))
    assert spread == [0] * 10
    assert sum(loads(db).values()) == 1000
