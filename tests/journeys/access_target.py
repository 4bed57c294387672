"""An active journey nobody entered yet, for tests/web/test_api_access.py (every endpoint has something
to answer about, and a body that succeeds)."""

from __future__ import annotations

from clm.journeys import service

FLOW = {"trigger": {"type": "api"}, "start": "w", "nodes": [
    {"id": "w", "type": "wait", "duration": {"days": 1}, "next": "end"}, {"id": "end", "type": "exit"}]}
ENDPOINTS = [
    ("GET", "/api/v1/journeys", "journeys:read"),
    ("POST", "/api/v1/journeys", "journeys:write"),
    ("GET", "/api/v1/journeys/schema", "journeys:read"),
    ("POST", "/api/v1/journeys/validate", "journeys:read"),
    ("POST", "/api/v1/journeys/import", "journeys:write"),
    ("GET", "/api/v1/journeys/{id}", "journeys:read"),
    ("PUT", "/api/v1/journeys/{id}", "journeys:write"),
    ("DELETE", "/api/v1/journeys/{id}", "journeys:write"),
    ("POST", "/api/v1/journeys/{id}/activate", "journeys:write"),
    ("POST", "/api/v1/journeys/{id}/pause", "journeys:write"),
    ("POST", "/api/v1/journeys/{id}/resume", "journeys:write"),
    ("POST", "/api/v1/journeys/{id}/archive", "journeys:write"),
    ("GET", "/api/v1/journeys/{id}/export", "journeys:read"),
    ("POST", "/api/v1/journeys/{id}/trigger", "journeys:write"),
    ("GET", "/api/v1/journeys/{id}/report", "journeys:read"),
    ("GET", "/api/v1/journeys/playbook", "journeys:read"),
    ("POST", "/api/v1/journeys/playbook/install", "journeys:write"),
]
BODIES = {
    ("POST", "/api/v1/journeys"): {"name": "Mới", "definition": FLOW},
    ("POST", "/api/v1/journeys/validate"): {"name": "Thử", "definition": FLOW},
    ("POST", "/api/v1/journeys/import"): {"name": "Nhập", "definition": FLOW},
    ("PUT", "/api/v1/journeys/{id}"): {"name": "Chào mừng", "definition": FLOW},
    ("POST", "/api/v1/journeys/{id}/trigger"): lambda target: {"customer_id": target["/customers/"]},
    ("POST", "/api/v1/journeys/playbook/install"): {"keys": ["birthday"]},
}


def journeys_target(shop) -> dict[str, int]:
    journey = service.save_journey(shop.db, name="Chào mừng", definition=FLOW)
    service.activate(shop.db, journey.id)
    shop.db.commit()
    return {"/journeys/": journey.id}
