"""A draft broadcast to a one-customer segment, for tests/web/test_api_access.py (every endpoint has
something to answer about, and a body that succeeds)."""

from __future__ import annotations

from clm.channels import broadcasts
from clm.channels.templates import create_template
from clm.segments.service import change_list, save_segment

ENDPOINTS = [
    ("GET", "/api/v1/broadcasts", "broadcasts:read"),
    ("POST", "/api/v1/broadcasts", "broadcasts:write"),
    ("GET", "/api/v1/broadcasts/{id}", "broadcasts:read"),
    ("PATCH", "/api/v1/broadcasts/{id}", "broadcasts:write"),
    ("DELETE", "/api/v1/broadcasts/{id}", "broadcasts:write"),
    ("POST", "/api/v1/broadcasts/{id}/schedule", "broadcasts:write"),
    ("POST", "/api/v1/broadcasts/{id}/unschedule", "broadcasts:write"),
    ("POST", "/api/v1/broadcasts/{id}/cancel", "broadcasts:write"),
    ("POST", "/api/v1/broadcasts/{id}/test", "broadcasts:write"),
    ("GET", "/api/v1/broadcasts/{id}/report", "broadcasts:read"),
]
BODIES = {
    ("POST", "/api/v1/broadcasts"): lambda target: {"name": "Khuyến mãi", "template_key": "bc-hello",
                                                    "segment_id": target["/segments/"]},
    ("PATCH", "/api/v1/broadcasts/{id}"): {"name": "Khuyến mãi Tết"},
    ("POST", "/api/v1/broadcasts/{id}/schedule"): {},
    ("POST", "/api/v1/broadcasts/{id}/test"): {"to": "lan@shop.vn"},
}


def broadcasts_target(shop, customer) -> dict[str, int]:
    create_template(shop.db, key="bc-hello", channel="email",
                    variants={"vi": {"subject": "Chào {{ customer.name }}", "text": "Xin chào!"}})
    segment = save_segment(shop.db, name="Người nhận", kind="static")
    change_list(shop.db, segment.id, add=[customer.id])
    broadcast = broadcasts.create_broadcast(shop.db, name="Chào", template_key="bc-hello", segment_id=segment.id)
    shop.db.commit()
    return {"/broadcasts/": broadcast.id}
