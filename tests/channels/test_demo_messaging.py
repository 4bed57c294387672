"""The demo's messaging: templates that render, and a past broadcast whose report has every figure filled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from clm.channels import broadcasts
from clm.channels.demo import TEMPLATES, install_for_demo, install_templates
from clm.channels.models import Broadcast, Template
from clm.channels.templates import preview
from clm.commerce.models import Order
from clm.customers.models import Customer
from clm.segments.service import change_list, save_segment

NOW = datetime(2026, 2, 20, 5, 0, tzinfo=UTC)


def test_the_demo_gets_templates_and_a_past_broadcast_with_results(db, session_factory, channel_settings):
    people = [Customer(email=f"khach{i}@example.vn", full_name=f"Nguyễn Văn {i}", given_name=str(i), traits={})
              for i in range(120)] + [Customer(phone=f"+8491234{i:04d}", full_name="Chỉ có số", traits={})
                                      for i in range(10)]
    db.add_all(people)
    db.flush()
    segment = save_segment(db, name="RFM: loyal", kind="static", now=NOW - timedelta(days=30))
    change_list(db, segment.id, add=[c.id for c in people], now=NOW - timedelta(days=30))
    db.commit()

    line = install_for_demo(session_factory, channel_settings, now=NOW)

    assert line == "5 message templates, a past broadcast to 130 customers"
    b = db.scalar(sa.select(Broadcast))
    assert (b.status, b.recipients, b.template_key) == ("sent", 130, "tet-sale")
    report = broadcasts.report(db, b.id)
    assert report.recipients == 130 and report.waiting == 0
    assert 0 < report.clicked <= report.opened <= report.delivered <= report.sent <= 120
    assert report.suppressed >= 10  # no email address, or no consent
    placed = db.scalars(sa.select(Order.placed_at).where(Order.external_id.like(f"TET-{b.id}-%"))).all()
    assert report.orders == len(placed) > 0 and all(p <= NOW for p in placed)
    assert report.revenue["VND"] > 0
    for key, *_ in TEMPLATES:
        if key != "order-thanks":
            assert preview(db, key, people[0].id).text
    assert install_templates(db) == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(Template)) == 5
