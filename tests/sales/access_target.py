"""One of everything in sales, for tests/web/test_api_access.py (each endpoint has something to answer
about, and a body that succeeds)."""

from __future__ import annotations

from datetime import timedelta

from clm.lib.clock import utcnow
from clm.sales.leads import LeadIn, capture_lead
from clm.sales.opportunities import DealIn, convert_lead
from clm.sales.pipelines import default_pipeline, stages_of
from clm.sales.points import PointRuleIn, save_point_rule
from clm.sales.tasks import TaskIn, create_task

ENDPOINTS = [
    ("GET", "/api/v1/leads", "sales:read"),
    ("POST", "/api/v1/leads", "sales:write"),
    ("GET", "/api/v1/leads/{id}", "sales:read"),
    ("PATCH", "/api/v1/leads/{id}", "sales:write"),
    ("POST", "/api/v1/leads/{id}/convert", "sales:write"),
    ("GET", "/api/v1/pipelines", "sales:read"),
    ("POST", "/api/v1/pipelines", "sales:manage"),
    ("PUT", "/api/v1/pipelines/{id}", "sales:manage"),
    ("GET", "/api/v1/pipelines/{id}/board", "sales:read"),
    ("GET", "/api/v1/sales/forecast", "sales:read"),
    ("GET", "/api/v1/sales/scoring", "sales:read"),
    ("GET", "/api/v1/sales/reports", "sales:read"),
    ("GET", "/api/v1/opportunities", "sales:read"),
    ("POST", "/api/v1/opportunities", "sales:write"),
    ("GET", "/api/v1/opportunities/{id}", "sales:read"),
    ("PATCH", "/api/v1/opportunities/{id}", "sales:write"),
    ("POST", "/api/v1/opportunities/{id}/stage", "sales:write"),
    ("POST", "/api/v1/opportunities/{id}/win", "sales:write"),
    ("POST", "/api/v1/opportunities/{id}/lose", "sales:write"),
    ("GET", "/api/v1/activities", "sales:read"),
    ("POST", "/api/v1/activities", "sales:write"),
    ("GET", "/api/v1/tasks", "sales:read"),
    ("POST", "/api/v1/tasks", "sales:write"),
    ("PATCH", "/api/v1/tasks/{id}", "sales:write"),
    ("GET", "/api/v1/sales/point-rules", "sales:read"),
    ("POST", "/api/v1/sales/point-rules", "sales:manage"),
    ("PUT", "/api/v1/sales/point-rules/{id}", "sales:manage"),
    ("DELETE", "/api/v1/sales/point-rules/{id}", "sales:manage"),
]
_CART = {"type": "event", "name": "Product Added", "op": "at_least", "count": 1, "window": {"last_days": 30}}
_STAGES = [{"key": "new", "probability": 10}, {"key": "won", "probability": 100, "kind": "won"},
           {"key": "lost", "probability": 0, "kind": "lost"}]
BODIES = {
    ("POST", "/api/v1/leads"): {"phone": "0912999000", "source": "manual"},
    ("PATCH", "/api/v1/leads/{id}"): {"priority": "urgent"},
    ("POST", "/api/v1/pipelines"): {"name": "Dự án", "stages": _STAGES},
    ("PUT", "/api/v1/pipelines/{id}"): lambda t: {"name": "Bán hàng", "stages": t["stages"]},
    ("POST", "/api/v1/opportunities"): lambda t: {"customer_id": t["/customers/"], "value": 1_000_000},
    ("PATCH", "/api/v1/opportunities/{id}"): {"value": 2_000_000},
    ("POST", "/api/v1/opportunities/{id}/stage"): {"stage": "proposal"},
    ("POST", "/api/v1/opportunities/{id}/win"): {"reason": "ok"},
    ("POST", "/api/v1/opportunities/{id}/lose"): {"reason": "giá"},
    ("POST", "/api/v1/activities"): lambda t: {"kind": "note", "subject": "ghi chú", "customer_id": t["/customers/"]},
    ("POST", "/api/v1/tasks"): lambda t: {"subject": "Gửi báo giá", "due_at": "2030-01-01T09:00:00+07:00",
                                          "remind_at": "2029-12-31T09:00:00+07:00", "lead_id": t["/leads/"]},
    ("PATCH", "/api/v1/tasks/{id}"): {"done": True},
    ("POST", "/api/v1/sales/point-rules"): {"name": "Giỏ hàng", "points": 20, "rule": _CART},
    ("PUT", "/api/v1/sales/point-rules/{id}"): {"name": "Giỏ hàng", "points": 30, "half_life_days": 14, "rule": _CART},
}


def sales_target(shop, customer) -> dict:
    """A lead to read, change and convert; an open opportunity; a pipeline; a task."""
    db = shop.db
    lead = capture_lead(db, LeadIn(phone="0912999111")).lead
    other = capture_lead(db, LeadIn(phone="0912999222")).lead
    opportunity = convert_lead(db, other.id, DealIn(value=3_000_000))
    task = create_task(db, TaskIn(subject="Gọi lại", due_at=utcnow() + timedelta(days=1), lead_id=lead.id))
    rule = save_point_rule(db, PointRuleIn(name="Xem", points=5, rule={**_CART, "name": "Product Viewed"}))
    pipeline = default_pipeline(db)
    db.commit()
    stages = [{"key": s.key, "name": s.name, "probability": s.probability, "kind": s.kind}
              for s in stages_of(db, pipeline.id)]
    return {"/leads/": lead.id, "/opportunities/": opportunity.id, "/pipelines/": pipeline.id, "/tasks/": task.id,
            "/point-rules/": rule.id, "stages": stages}

