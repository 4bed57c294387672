"""The service desk's demo on SQLite and PostgreSQL: agents and inboxes, past tickets shaped like a desk's
history (each with the customer's message, the answer and a first-response clock met or breached), and a
live inbox that went through routing."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from clm.customers.models import Customer
from clm.service.models import Agent, ChatSite, Message, SlaTimer, Ticket
from clm.service.reports import report

NOW = datetime(2025, 6, 30, 5, 0, tzinfo=UTC)


def test_the_demo_has_agents_a_history_across_channels_and_a_live_inbox(db, session_factory):
    from clm.service.demo import LIVE, install_for_demo

    db.add_all([Customer(full_name=f"Khách {i}", search_text="", traits={}, created_at=NOW, updated_at=NOW)
                for i in range(60)])
    db.commit()
    line = install_for_demo(session_factory, seed=7, now=NOW, past=400)
    assert "400 past tickets" in line and f"{LIVE} open" in line
    assert db.scalar(sa.select(sa.func.count()).select_from(Agent)) == 5
    site = db.scalar(sa.select(ChatSite))
    assert site.public_key in line
    past = db.scalars(sa.select(Ticket).where(Ticket.assignment_reason == "demo history")).all()
    assert len(past) == 400 and {t.status for t in past} <= {"solved", "closed"}
    assert len({t.channel for t in past}) == 5 and all(t.first_response_at > t.created_at for t in past)
    assert db.scalar(sa.select(sa.func.count()).select_from(Message)
                     .where(Message.ticket_id.in_([t.id for t in past]))) == 800
    states = set(db.scalars(sa.select(SlaTimer.state).where(SlaTimer.ticket_id.in_([t.id for t in past]))))
    assert states == {"met", "breached"}
    live = db.scalars(sa.select(Ticket).where(Ticket.status.in_(("new", "open")))).all()
    assert len(live) == LIVE and any(t.assignee_id for t in live)
    loads = {}
    for t in live:
        if t.assignee_id:
            loads[t.assignee_id] = loads.get(t.assignee_id, 0) + 1
    capacity = {a.user_id: a.capacity for a in db.scalars(sa.select(Agent))}
    assert all(n <= capacity[agent] for agent, n in loads.items())
    figures = report(db, NOW, days=92)  # the history reaches back 90 days, to the hour
    assert figures.opened == 400 + LIVE and figures.first_response.median is not None
