"""Property: whatever happened to a broadcast's messages and whenever its recipients ordered, the report's
funnel never grows downstream and its orders are exactly those a brute-force reading of the rule finds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clm.channels import broadcasts
from clm.channels.models import ACCEPTED, Broadcast, Message
from clm.channels.status import record_status
from clm.commerce.models import Order
from clm.customers.models import Customer

T0 = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)
AFTER_SENT = st.lists(st.sampled_from(["delivered", "opened", "clicked", "replied", "unsubscribed", "failed"]),
                      max_size=4)
RECIPIENT = st.fixed_dictionaries({
    "sent": st.booleans(),  # False: suppressed by a guardrail
    "sent_after_hours": st.integers(0, 72),  # deferred messages go out later
    "then": AFTER_SENT,
    "orders": st.lists(st.tuples(st.integers(-5 * 24, 12 * 24), st.integers(1, 2_000_000), st.booleans()),
                       max_size=3),  # (hours after T0, total, refunded half)
})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recipients=st.lists(RECIPIENT, min_size=1, max_size=5), days=st.integers(1, 10))
def test_the_report_funnel_shrinks_and_orders_follow_the_attribution_rule(db, recipients, days):
    nested = db.begin_nested()
    try:
        b = Broadcast(name="p", channel="email", template_key="t", purpose="marketing", context={}, status="sent",
                      attribution_days=days, recipients=len(recipients), created_at=T0, updated_at=T0)
        db.add(b)
        db.flush()
        expected_orders, expected_revenue, n = set(), 0, 0
        for i, r in enumerate(recipients):
            c = Customer(email=f"p{i}@example.vn", traits={})
            db.add(c)
            db.flush()
            sent_at = T0 + timedelta(hours=r["sent_after_hours"])
            m = Message(customer_id=c.id, channel="email", purpose="marketing", template_key="t", text="x", data={},
                        idempotency_key=f"p:{b.id}:{c.id}", status="queued", attempts=0, broadcast_id=b.id,
                        created_at=T0, updated_at=T0, sent_at=sent_at if r["sent"] else None)
            db.add(m)
            db.flush()
            if r["sent"]:
                record_status(db, m, "sent", at=sent_at, force=True)
                for status in r["then"]:
                    record_status(db, m, status, at=sent_at + timedelta(minutes=1))
            else:
                record_status(db, m, "suppressed", reason="no consent", at=T0, force=True)
            for hours, total, half in r["orders"]:
                n += 1
                placed = T0 + timedelta(hours=hours)
                refunded = total // 2 if half else 0
                db.add(Order(external_id=f"P-{b.id}-{n}", customer_id=c.id, status="completed", currency="VND",
                             total=total, refunded=refunded, placed_at=placed, properties={}))
                if m.status in ACCEPTED and sent_at <= placed < sent_at + timedelta(days=days):
                    expected_orders.add(n)
                    expected_revenue += total - refunded
        db.flush()

        report = broadcasts.report(db, b.id)

        assert report.recipients == len(recipients)
        assert report.clicked <= report.opened <= report.delivered <= report.sent <= report.recipients
        assert report.sent + report.suppressed + report.waiting <= report.recipients + report.failed
        assert report.orders == len(expected_orders)
        assert report.revenue.get("VND", 0) == expected_revenue
    finally:
        nested.rollback()
