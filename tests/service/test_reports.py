"""The service desk's reports on SQLite and PostgreSQL: volume by channel and local hour, first response and
resolution times (median and 90th percentile), SLA attainment, load per agent; the page draws them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from clm.service.models import SlaTimer
from clm.service.reports import report
from clm.service.tickets import TicketIn, open_ticket
from tests.dashboard.conftest import as_role, browser, cheap_hashing, user_factory  # noqa: F401

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def _ticket(db, customer, channel, opened, *, answered=None, solved=None):
    ticket = open_ticket(db, TicketIn(customer_id=customer.id, subject="Hỏi", channel=channel, route=False),
                         now=opened, at=opened)
    if answered is not None:
        ticket.first_response_at = opened + timedelta(minutes=answered)
    if solved is not None:
        ticket.solved_at, ticket.status = opened + timedelta(minutes=solved), "solved"
    db.flush()
    return ticket


@pytest.fixture
def history(db, shop):
    an = shop.customer("Lê Thị An")
    day = datetime(2025, 6, 20, 2, 30, tzinfo=UTC)  # 09:30 in Hồ Chí Minh City
    for minutes in (10, 20, 30, 40, 100):
        _ticket(db, an, "zalo", day, answered=minutes, solved=minutes * 3)
    _ticket(db, an, "email", day + timedelta(hours=12))  # 21:30 local, not answered yet
    _ticket(db, an, "email", NOW - timedelta(days=40), answered=5)  # outside the window
    db.commit()
    return an


def test_volume_is_counted_by_channel_and_by_the_businesss_hour(db, history):
    data = report(db, NOW, days=30, timezone="Asia/Ho_Chi_Minh")
    assert data.opened == 6 and data.by_channel == {"zalo": 5, "email": 1}
    assert data.by_hour["zalo"][9] == 5 and sum(data.by_hour["zalo"]) == 5
    assert data.by_hour["email"][21] == 1


def test_response_and_resolution_times_give_the_median_and_the_90th_percentile(db, history):
    data = report(db, NOW, days=30)
    # 10, 20, 30, 40, 100 minutes: the median is 30; the 90th percentile lies 60% of the way from 40 to 100
    assert (data.first_response.count, data.first_response.median, data.first_response.p90) == (5, 30.0, 76.0)
    assert (data.resolution.median, data.resolution.p90) == (90.0, 228.0)
    assert data.first_response_by_channel["zalo"].median == 30.0 and "email" not in data.first_response_by_channel


def test_sla_attainment_counts_a_running_clock_past_its_deadline_as_breached(db, history):
    ticket = _ticket(db, history, "zalo", NOW - timedelta(days=1))
    for state, due in (("met", None), ("breached", None), ("running", NOW - timedelta(hours=1)),
                       ("running", NOW + timedelta(hours=1))):
        db.add(SlaTimer(ticket_id=ticket.id, customer_id=history.id, metric="first_response", target_minutes=60,
                        started_at=NOW - timedelta(days=1), due_at=due, state=state))
    db.flush()
    first = next(a for a in report(db, NOW).sla if a.metric == "first_response")
    assert (first.met, first.breached, first.rate) == (1, 2, 1 / 3)


def test_the_reports_page_draws_its_charts_from_the_figures(db, app, as_role, history):  # noqa: F811
    app.state.dashboard_clock = lambda: NOW
    r = as_role("manager").get("/service/reports?days=30")
    assert r.status_code == 200
    assert 'id="opened">6<' in r.text and "/static/vendor/chartjs/chart.umd.min.js" in r.text
    data = json.loads(re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', r.text, re.S)[1])
    assert data["channels"] == {"labels": ["Zalo", "Email"], "values": [5, 1]}
    assert [s["values"][9] for s in data["hours"]["series"]] == [5, 0]
    assert "30 min" in r.text and "90th percentile: 76 min" in r.text
