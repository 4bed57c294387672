"""One of everything in the service desk, for tests/web/test_api_access.py."""

from __future__ import annotations

from datetime import timedelta

from clm.access.models import User
from clm.lib.clock import utcnow
from clm.service.agents import AgentIn, TeamIn, save_agent, save_team
from clm.service.conversations import InboxIn, save_inbox
from clm.service.routing import RuleIn, save_rule
from clm.service.sla import PolicyIn, save_policy
from clm.service.tickets import TicketIn, open_ticket

ENDPOINTS = [
    ("GET", "/api/v1/service/tickets", "service:read"),
    ("POST", "/api/v1/service/tickets", "service:write"),
    ("GET", "/api/v1/service/tickets/{id}", "service:read"),
    ("PATCH", "/api/v1/service/tickets/{id}", "service:write"),
    ("POST", "/api/v1/service/tickets/{id}/replies", "service:write"),
    ("POST", "/api/v1/service/tickets/{id}/notes", "service:write"),
    ("POST", "/api/v1/service/tickets/{id}/merge", "service:write"),
    ("POST", "/api/v1/service/tickets/{id}/tasks", "service:write"),
    ("POST", "/api/v1/service/messages", "service:write"),
    ("GET", "/api/v1/service/inboxes", "service:read"),
    ("POST", "/api/v1/service/inboxes", "service:manage"),
    ("GET", "/api/v1/service/agents", "service:read"),
    ("PUT", "/api/v1/service/agents/{id}", "service:write"),
    ("GET", "/api/v1/service/teams", "service:read"),
    ("POST", "/api/v1/service/teams", "service:manage"),
    ("PUT", "/api/v1/service/teams/{id}", "service:manage"),
    ("GET", "/api/v1/service/routing", "service:read"),
    ("PUT", "/api/v1/service/routing", "service:manage"),
    ("GET", "/api/v1/service/team-rules", "service:read"),
    ("POST", "/api/v1/service/team-rules", "service:manage"),
    ("DELETE", "/api/v1/service/team-rules/{id}", "service:manage"),
    ("GET", "/api/v1/service/fields", "service:read"),
    ("POST", "/api/v1/service/fields", "service:manage"),
    ("GET", "/api/v1/service/sla/policies", "service:read"),
    ("POST", "/api/v1/service/sla/policies", "service:manage"),
    ("PUT", "/api/v1/service/sla/policies/{id}", "service:manage"),
    ("GET", "/api/v1/service/sla/calendars", "service:read"),
    ("POST", "/api/v1/service/sla/calendars", "service:manage"),
    ("GET", "/api/v1/service/agents/{id}/tasks", "service:read"),
]
_counter = iter(range(1, 10**6))


def _fresh(prefix: str) -> str:
    return f"{prefix} {next(_counter)}"


BODIES = {
    ("POST", "/api/v1/service/tickets"): lambda t: {"customer_id": t["/customers/"], "subject": "Giao hàng chậm"},
    ("PATCH", "/api/v1/service/tickets/{id}"): {"priority": "high", "tags": ["giao hàng"]},
    ("POST", "/api/v1/service/tickets/{id}/replies"): {"body": "Dạ shop kiểm tra ngay ạ"},
    ("POST", "/api/v1/service/tickets/{id}/notes"): {"body": "khách quen"},
    ("POST", "/api/v1/service/tickets/{id}/merge"): lambda t: {"into": t["merge_into"]},
    ("POST", "/api/v1/service/tickets/{id}/tasks"): {"subject": "Gọi lại", "due_at": "2030-01-01T09:00:00+07:00"},
    ("POST", "/api/v1/service/messages"): lambda t: {"inbox_id": t["inbox"], "customer_id": t["/customers/"],
                                                     "body": "Cho hỏi đơn hàng"},
    ("POST", "/api/v1/service/inboxes"): lambda t: {"name": _fresh("Messenger"), "channel": "messenger"},
    ("PUT", "/api/v1/service/agents/{id}"): {"availability": "online", "capacity": 10},
    ("POST", "/api/v1/service/teams"): lambda t: {"name": _fresh("Đội")},
    ("PUT", "/api/v1/service/teams/{id}"): lambda t: {"name": _fresh("CSKH"), "members": [t["/agents/"]]},
    ("PUT", "/api/v1/service/routing"): {"follow_up_days": 5, "reoffer_minutes": 15},
    ("POST", "/api/v1/service/team-rules"): lambda t: {"team_id": t["/teams/"], "channel": "email"},
    ("POST", "/api/v1/service/fields"): {"key": "reason", "kind": "choice", "choices": ["late", "damaged"]},
    ("POST", "/api/v1/service/sla/policies"): lambda t: {"name": _fresh("Khẩn"), "first_response_minutes": 30},
    ("PUT", "/api/v1/service/sla/policies/{id}"): {"name": "Chuẩn", "first_response_minutes": 60},
    ("POST", "/api/v1/service/sla/calendars"): lambda t: {"name": _fresh("Giờ hành chính")},
}


def service_target(shop, customer) -> dict:
    """A ticket (and another of the same customer's to merge), an agent, a team, a rule, a policy, an inbox."""
    db = shop.db
    user = User(email="agent@desk.vn", name="Lan", role="agent", password_hash="x", active=True, created_at=utcnow())
    db.add(user)
    db.flush()
    save_agent(db, user.id, AgentIn(availability="online"))
    team = save_team(db, TeamIn(name="CSKH", members=[user.id]))
    rule = save_rule(db, RuleIn(team_id=team.id, channel="zalo"))
    policy = save_policy(db, PolicyIn(name="Chuẩn", first_response_minutes=60))
    inbox = save_inbox(db, InboxIn(name="Zalo OA", channel="zalo"))
    ticket = open_ticket(db, TicketIn(customer_id=customer.id, subject="Đổi hàng"))
    other = open_ticket(db, TicketIn(customer_id=customer.id, subject="Đổi hàng lần 2"),
                        now=utcnow() + timedelta(seconds=1))
    db.commit()
    return {"/tickets/": ticket.id, "merge_into": other.id, "/agents/": user.id, "/teams/": team.id,
            "/team-rules/": rule.id, "/policies/": policy.id, "inbox": inbox.id}
