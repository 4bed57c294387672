"""What a journey's page reports, from runs the engine really made: per-node counts and message statuses,
revenue inside the goal window only, the A/B split against its control, the list's counts, the customer 360."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from clm.channels.models import Message
from clm.journeys import report, service, stats
from clm.journeys.consumers import handle_events
from clm.journeys.engine import graph_of
from tests.customers.shop import Shop
from tests.dashboard.conftest import as_role, browser, cheap_hashing, token_of, user_factory  # noqa: F401
from tests.journeys.conftest import END, graph, trait, wait

TZ = "Asia/Ho_Chi_Minh"
AB = graph({"id": "hi", "type": "send_message", "channel": "email", "template": "welcome", "next": "ab"},
           {"id": "ab", "type": "random_split", "branches": [
               {"name": "A", "weight": 50, "next": "a"}, {"name": "control", "weight": 50, "control": True,
                                                           "next": "end"}]},
           trait("a", "offer", "A"), END, goal={"event": "Order Completed", "within_days": 7})


def order(db, shop: Shop, customer, total: int, days_from_now: float, clock) -> None:
    """An order placed `days_from_now` after the clock's now, seen by the journeys' event consumer."""
    at = clock.now + timedelta(days=days_from_now)
    shop.order(customer, total, at=at - shop_t0())
    from clm.tracking.models import Event

    event = db.scalars(sa.select(Event).where(Event.customer_id == customer.id).order_by(Event.id.desc())).first()
    handle_events(db, [event], at, TZ)
    db.commit()


def shop_t0():
    from tests.customers.shop import T0

    return T0


def test_node_counts_messages_revenue_and_the_split_come_from_the_runs(db, clock, drain, live):
    from clm.channels.templates import create_template

    shop = Shop(db)
    people = [shop.customer(f"Khách {k}", email=f"k{k}@example.vn") for k in range(24)]
    create_template(db, key="welcome", channel="email", variants={"vi": {"subject": "Chào", "text": "Xin chào"}})
    db.commit()
    journey = live(AB)
    for c in people:
        service.trigger(db, journey, c.id, None, {})
    db.commit()
    drain()
    variant = {c.id: db.scalar(sa.text("SELECT variant FROM journey_runs WHERE customer_id = :c"), {"c": c.id})
               for c in people}
    a_group = [c for c in people if variant[c.id] == "A"]
    control = [c for c in people if variant[c.id] == "control"]
    assert a_group and control
    buyers = a_group[:3] + control[:1]
    for c in buyers:
        order(db, shop, c, 500_000, 2, clock)  # inside the 7-day window: converts and counts
    order(db, shop, a_group[0], 300_000, 9, clock)  # after the window: neither
    order(db, shop, control[-1], 700_000, -1, clock)  # before entering: neither

    counts = report.node_counts(db, journey)
    assert (counts["hi"].entered, counts["hi"].passed, counts["hi"].waiting) == (24, 24, 0)
    statuses = dict(db.execute(sa.select(Message.status, sa.func.count()).where(Message.journey_id == journey)
                               .group_by(Message.status)).all())
    assert counts["hi"].messages == statuses and sum(statuses.values()) == 24
    assert counts["ab"].outcomes == {"A": len(a_group), "control": len(control)}
    assert counts["a"].entered == len(a_group)
    assert (counts["end"].entered, counts["end"].completed, counts["end"].converted) == (24, 24, len(buyers))

    money = report.revenue(db, journey)
    assert (money.orders, money.buyers, money.amounts) == (4, 4, {"VND": 2_000_000})

    [split] = report.splits(db, journey, graph_of(db, service.current_version(db, service.get_journey(db, journey)).id))
    by_name = {v.name: v for v in split.variants}
    assert (by_name["A"].entered, by_name["A"].converted) == (len(a_group), 3)
    assert (by_name["control"].entered, by_name["control"].converted) == (len(control), 1)
    assert by_name["A"].revenue == {"VND": 1_500_000} and by_name["control"].revenue == {"VND": 500_000}
    assert by_name["A"].comparison == stats.compare(3, len(a_group), 1, len(control))
    assert by_name["control"].comparison is None
    assert report.list_counts(db)[journey] == {"entered": 24, "open": 0, "converted": 4}


def test_the_journey_page_draws_each_node_with_its_counts_and_the_ab_test(db, clock, drain, live, as_role):  # noqa: F811
    from clm.channels.templates import create_template

    shop = Shop(db)
    people = [shop.customer(f"Khách {k}", email=f"k{k}@example.vn") for k in range(10)]
    create_template(db, key="welcome", channel="email", variants={"vi": {"subject": "Chào", "text": "Xin chào"}})
    db.commit()
    journey = live(AB)
    for c in people:
        service.trigger(db, journey, c.id, None, {})
    db.commit()
    drain()
    order(db, shop, people[0], 1_250_000, 1, clock)
    page = as_role("marketer").get(f"/journeys/{journey}")
    assert page.status_code == 200
    node = re.search(r'id="node-hi".*?</dl>', page.text, re.S)[0]
    assert re.search(r'data-count="entered">10<', node) and re.search(r'data-count="passed">10<', node)
    counts = report.node_counts(db, journey)
    for outcome in ("A", "control"):
        assert f'data-branch="{outcome}">{counts["ab"].outcomes.get(outcome, 0)}<' in page.text
    assert 'id="kpi-revenue">₫1,250,000<' in page.text and 'id="kpi-converted">1<' in page.text
    assert 'id="split-ab"' in page.text and "p-value" in page.text
    assert 'id="chart-data"' in page.text and 'id="chart-split-ab"' in page.text


def test_waiting_runs_are_counted_where_they_wait_and_archived_ones_exit_there(db, clock, drain, live):
    from clm.customers.models import Customer

    ids = []
    for k in range(3):
        c = Customer(full_name=f"Khách {k}", traits={}, search_text="")
        db.add(c)
        db.flush()
        ids.append(c.id)
    db.commit()
    journey = live(graph(wait("w", "end", days=3), END))
    for c in ids:
        service.trigger(db, journey, c, None, {})
    db.commit()
    drain()
    assert (report.node_counts(db, journey)["w"].waiting, report.node_counts(db, journey)["w"].passed) == (3, 0)
    assert report.list_counts(db)[journey]["open"] == 3
    days = report.daily(db, journey, clock.now, TZ)
    assert days["entered"][-1] == 3 and sum(days["entered"]) == 3 and len(days["days"]) == 30
    service.archive(db, journey)
    db.commit()
    w = report.node_counts(db, journey)["w"]
    assert (w.entered, w.waiting, w.exited) == (3, 0, 3)


def test_the_customer_360_shows_where_the_customer_is_since_when_and_past_runs(db, clock, drain, live, as_role):  # noqa: F811
    shop = Shop(db)
    anna = shop.customer("Nguyễn Thị <b>Anna</b>", email="anna@example.vn")
    waiting = live(graph({"id": "w", "label": "Chờ 3 ngày", "type": "wait", "duration": {"days": 3}, "next": "end"},
                         END), name="Nhắc giỏ hàng")
    done = live(graph(trait("t", "welcomed", True), END), name="Chào mừng")
    for journey in (waiting, done):
        service.trigger(db, journey, anna.id, None, {})
    db.commit()
    drain()
    runs = report.customer_runs(db, anna.id)
    assert [(r.journey_name, r.node_id, r.status, r.open) for r in runs] == [
        ("Nhắc giỏ hàng", "w", "waiting", True), ("Chào mừng", "end", "completed", False)]
    assert runs[0].node_label == "Chờ 3 ngày" and runs[0].due_at == clock.now + timedelta(days=3)
    page = as_role("marketer").get(f"/customers/{anna.id}")
    section = re.search(r'<section class="card" id="journeys">.*?</section>', page.text, re.S)[0]
    assert f'href="/journeys/{waiting}#node-w"' in section and "Chờ 3 ngày" in section and "Waiting" in section
    assert "Past journeys" in section and "Chào mừng" in section and "Completed" in section
    agent = as_role("agent").get(f"/customers/{anna.id}")  # sees where the customer is, without links
    assert "Nhắc giỏ hàng" in agent.text and f'href="/journeys/{waiting}' not in agent.text
    assert "<b>Anna</b>" not in page.text
