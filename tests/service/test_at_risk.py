"""The "SLA at risk" view read in two steps (due clocks' tickets, then the tickets): every ticket once, newest
first, across chunk boundaries, with the view's filters, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from clm.service import at_risk
from clm.service.models import SlaTimer, Ticket
from clm.service.tickets import TicketIn, list_tickets, open_ticket
from tests.customers.shop import T0


def _desk(db, shop, n: int = 30):
    """`n` open tickets, each with a running clock; every third due (the oldest ones), plus a solved ticket and a
    merged one whose clocks would be due."""
    customer = shop.customer("Phan Văn Đức")
    due, tickets = [], []
    for i in range(n):
        ticket = open_ticket(db, TicketIn(customer_id=customer.id, subject=f"#{i}", route=False,
                                          priority="high" if i % 2 else "normal",
                                          tags=["vip"] if i % 5 == 0 else []), now=T0)
        tickets.append(ticket)
    db.flush()
    for i, ticket in enumerate(tickets):
        soon = i % 3 == 0 or i < 6
        db.add(SlaTimer(ticket_id=ticket.id, customer_id=customer.id, metric="next_response", target_minutes=60,
                        started_at=T0, due_at=T0 + timedelta(minutes=30 if soon else 600), state="running"))
        if soon:
            due.append(ticket.id)
    closed, merged = tickets[0], tickets[3]
    db.execute(sa.update(Ticket).where(Ticket.id == closed.id).values(status="closed"))
    db.execute(sa.update(Ticket).where(Ticket.id == merged.id).values(merged_into_id=tickets[-1].id))
    db.commit()
    return sorted(set(due) - {closed.id, merged.id}, reverse=True), tickets


def test_pages_across_chunks_hold_every_due_ticket_once_newest_first(db, shop, monkeypatch):
    expected, _ = _desk(db, shop)
    monkeypatch.setattr(at_risk, "FIRST_CHUNK", 2)  # chunks of 2, 8, 32 ... ids
    seen, after = [], None
    while True:
        page = list_tickets(db, view="sla_at_risk", at_risk_before=T0 + timedelta(hours=1), after=after, limit=3)
        seen += [t.id for t in page]
        if len(page) < 3:
            break
        after = page[-1].id
    assert seen == expected
    assert list_tickets(db, view="sla_at_risk", at_risk_before=T0) == []  # nothing overdue at T0


def test_the_views_filters_apply(db, shop, monkeypatch):
    expected, tickets = _desk(db, shop)
    monkeypatch.setattr(at_risk, "FIRST_CHUNK", 2)
    by_id = {t.id: t for t in tickets}
    high = [i for i in expected if by_id[i].priority == "high"]
    got = list_tickets(db, view="sla_at_risk", at_risk_before=T0 + timedelta(hours=1), priority="high", limit=50)
    assert [t.id for t in got] == high
    vip = [i for i in expected if "vip" in by_id[i].tags]
    got = list_tickets(db, view="sla_at_risk", at_risk_before=T0 + timedelta(hours=1), tag="vip", limit=50)
    assert [t.id for t in got] == vip and vip


def test_the_count_matches_the_list_once_a_ticket(db, shop):
    expected, tickets = _desk(db, shop)
    first = expected[0]  # a second due clock on one ticket: still one ticket at risk
    db.add(SlaTimer(ticket_id=first, customer_id=tickets[0].customer_id, metric="resolution", target_minutes=60,
                    started_at=T0, due_at=T0 + timedelta(minutes=10), state="running"))
    db.add(SlaTimer(ticket_id=expected[1], customer_id=tickets[0].customer_id, metric="resolution",
                    target_minutes=60, started_at=T0, due_at=T0 + timedelta(minutes=5), state="paused"))
    db.commit()
    soon = T0 + timedelta(hours=1)
    listed = [t.id for t in list_tickets(db, view="sla_at_risk", at_risk_before=soon, limit=100)]
    assert listed == expected
    assert at_risk.count(db, soon) == len(expected) == 12
    assert at_risk.count(db, T0 + timedelta(minutes=10)) == 1  # only the second clock of `first` is due by then
    assert at_risk.count(db, T0) == 0


def test_the_count_is_exact_up_to_the_cap_then_says_more(db, shop):
    expected, _ = _desk(db, shop)  # 12 due open tickets; the closed and the merged one are the oldest due
    soon = T0 + timedelta(hours=1)
    assert at_risk.count(db, soon, cap=12) == 12  # exact: the second chunk holds only the closed ticket
    assert at_risk.count(db, soon, cap=11) == 12  # more than 11 (the first chunk of 12 ids holds the merged one)
    assert at_risk.count(db, soon, cap=2) == 3
    assert at_risk.count(db, soon, cap=0) == 1
