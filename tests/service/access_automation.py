"""Automation, satisfaction and calls endpoints of the service desk, for tests/web/test_api_access.py."""

from __future__ import annotations

import itertools

from clm.service.automation import MacroIn, TriggerIn, save_macro, save_trigger
from clm.service.canned import CannedIn, save_canned

ENDPOINTS = [
    ("GET", "/api/v1/service/triggers", "service:read"),
    ("POST", "/api/v1/service/triggers", "service:manage"),
    ("PUT", "/api/v1/service/triggers/{id}", "service:manage"),
    ("DELETE", "/api/v1/service/triggers/{id}", "service:manage"),
    ("GET", "/api/v1/service/canned-replies", "service:read"),
    ("POST", "/api/v1/service/canned-replies", "service:manage"),
    ("PUT", "/api/v1/service/canned-replies/{id}", "service:manage"),
    ("POST", "/api/v1/service/canned-replies/{id}/render", "service:read"),
    ("GET", "/api/v1/service/macros", "service:read"),
    ("POST", "/api/v1/service/macros", "service:manage"),
    ("POST", "/api/v1/service/tickets/{id}/macro", "service:write"),
    ("GET", "/api/v1/service/satisfaction", "service:read"),
    ("GET", "/api/v1/service/satisfaction/settings", "service:read"),
    ("PUT", "/api/v1/service/satisfaction/settings", "service:manage"),
    ("GET", "/api/v1/service/calls", "service:read"),
    ("POST", "/api/v1/service/cti/token", "service:manage"),
]
_counter = itertools.count(1)


def _fresh(prefix: str) -> str:
    return f"{prefix} {next(_counter)}"


BODIES = {
    ("POST", "/api/v1/service/triggers"): lambda t: {"name": _fresh("Zalo gấp"), "event": "created",
                                                     "actions": [{"type": "tag", "add": ["zalo"]}]},
    ("PUT", "/api/v1/service/triggers/{id}"): lambda t: {"name": _fresh("Đổi"), "event": "updated",
                                                         "actions": [{"type": "set_priority", "priority": "high"}]},
    ("POST", "/api/v1/service/canned-replies"): lambda t: {"key": f"chao-{next(_counter)}", "title": "Chào",
                                                           "bodies": {"vi": "Chào {{ customer.name }}"}},
    ("PUT", "/api/v1/service/canned-replies/{id}"): lambda t: {"key": f"cam-on-{next(_counter)}", "title": "Cảm ơn",
                                                               "bodies": {"vi": "Cảm ơn {{ customer.name }}"}},
    ("POST", "/api/v1/service/canned-replies/{id}/render"): lambda t: {"ticket_id": t["/tickets/"]},
    ("POST", "/api/v1/service/macros"): lambda t: {"name": _fresh("Đóng"), "actions": [
        {"type": "set_status", "status": "solved"}]},
    ("POST", "/api/v1/service/tickets/{id}/macro"): lambda t: {"macro_id": t["macro"]},
    ("PUT", "/api/v1/service/satisfaction/settings"): {"csat": True, "link_days": 14},
}


def automation_target(shop) -> dict:
    """A trigger, a canned reply, a macro (the ticket comes from tests.service.access_target)."""
    db = shop.db
    trigger = save_trigger(db, TriggerIn(name="VIP", event="created", actions=[{"type": "tag", "add": ["vip"]}]))
    reply = save_canned(db, CannedIn(key="xin-chao", title="Xin chào", bodies={"vi": "Xin chào {{ customer.name }}"}))
    macro = save_macro(db, MacroIn(name="Gắn thẻ", actions=[{"type": "tag", "add": ["đã xem"]}]))
    db.commit()
    return {"/triggers/": trigger.id, "/canned-replies/": reply.id, "macro": macro.id}
