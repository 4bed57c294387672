"""Who may open what: every dashboard route, for an outsider, a deactivated user and every role."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute

from clm.access.keys import create_api_key, create_write_key
from clm.access.users import PERMISSIONS, ROLES, create_user
from clm.segments.service import save_segment
from clm.web.pages.base import DashboardRoute
from tests import module_transaction
from tests.customers.shop import Shop
from tests.dashboard.conftest import PASSWORD, csrf_of, token_of

# (method, path, what it needs): "public" needs nothing, "login" any active user, else a permission.
ROUTES = [
    ("GET", "/login", "public"),
    ("POST", "/login", "public"),
    ("POST", "/logout", "public"),
    ("POST", "/locale", "public"),
    ("GET", "/", "login"),
    ("GET", "/overview", "overview"),
    ("GET", "/overview/funnel", "overview"),
    ("GET", "/customers", "customers"),
    ("GET", "/customers/{id}", "customers"),
    ("GET", "/customers/{id}/timeline", "customers"),
    ("GET", "/customers/{id}/scores", "customers"),
    ("GET", "/analytics", "analytics"),
    ("GET", "/analytics/clv", "analytics"),
    ("GET", "/analytics/rfm", "analytics"),
    ("GET", "/analytics/cohorts", "analytics"),
    ("GET", "/analytics/fit", "analytics"),
    ("GET", "/segments", "segments:read"),
    ("GET", "/segments/{id}", "segments:read"),
    ("GET", "/segments/new", "segments:write"),
    ("GET", "/segments/{id}/edit", "segments:write"),
    ("GET", "/segments/{id}/members", "segments:read"),
    ("POST", "/segments/builder", "segments:write"),
    ("POST", "/segments/builder/count", "segments:write"),
    ("POST", "/segments/new", "segments:write"),
    ("POST", "/segments/{id}/edit", "segments:write"),
    ("GET", "/jobs", "jobs"),
    ("POST", "/jobs/{id}/retry", "jobs"),
    ("POST", "/jobs/{id}/cancel", "jobs"),
    ("GET", "/channels/broadcasts", "channels"),
    ("GET", "/channels/broadcasts/new", "channels"),
    ("POST", "/channels/broadcasts/new", "channels"),
    ("POST", "/channels/broadcasts/test", "channels"),
    ("POST", "/channels/broadcasts/preview", "channels"),
    ("GET", "/channels/tests/{id}", "channels"),
    ("GET", "/channels/broadcasts/{id}", "channels"),
    ("GET", "/channels/broadcasts/{id}/edit", "channels"),
    ("POST", "/channels/broadcasts/{id}/edit", "channels"),
    ("POST", "/channels/broadcasts/{id}/cancel", "channels"),
    ("GET", "/channels/templates", "channels"),
    ("GET", "/channels/templates/new", "channels"),
    ("POST", "/channels/templates/new", "channels"),
    ("POST", "/channels/templates/preview", "channels"),
    ("GET", "/channels/templates/{id}", "channels"),
    ("POST", "/channels/templates/{id}", "channels"),
    ("GET", "/channels/messages", "channels"),
    ("GET", "/channels/messages/{id}", "channels"),
    ("GET", "/channels/providers", "channels"),
    ("POST", "/channels/providers/test", "channels"),
    ("GET", "/journeys", "journeys"),
    ("GET", "/journeys/new", "journeys"),
    ("GET", "/journeys/{id}", "journeys"),
    ("GET", "/journeys/{id}/edit", "journeys"),
    ("GET", "/journeys/{id}/export", "journeys"),
    ("POST", "/journeys/builder", "journeys"),
    ("POST", "/journeys/playbook/install", "journeys"),
    ("POST", "/journeys/new", "journeys"),
    ("POST", "/journeys/{id}/edit", "journeys"),
    ("POST", "/journeys/{id}/activate", "journeys"),
    ("POST", "/journeys/{id}/pause", "journeys"),
    ("POST", "/journeys/{id}/resume", "journeys"),
    ("POST", "/journeys/{id}/archive", "journeys"),
    ("GET", "/loyalty", "loyalty"),
    ("GET", "/loyalty/members", "loyalty"),
    ("GET", "/loyalty/members/{id}", "loyalty"),
    ("GET", "/loyalty/program", "loyalty"),
    ("POST", "/loyalty/members/{id}/adjust", "loyalty:manage"),
    ("POST", "/loyalty/program", "loyalty:manage"),
    ("POST", "/loyalty/tiers", "loyalty:manage"),
    ("POST", "/loyalty/rules", "loyalty:manage"),
    ("POST", "/loyalty/rules/{id}", "loyalty:manage"),
    ("POST", "/loyalty/rewards", "loyalty:manage"),
    ("POST", "/loyalty/rewards/{id}", "loyalty:manage"),
    ("GET", "/sales", "sales"),
    ("GET", "/sales/board", "sales"),
    ("POST", "/sales/opportunities/{id}/stage", "sales"),
    ("GET", "/sales/opportunities/{id}", "sales"),
    ("POST", "/sales/opportunities/{id}", "sales"),
    ("POST", "/sales/opportunities/{id}/products", "sales"),
    ("POST", "/sales/opportunities/{id}/activities", "sales"),
    ("POST", "/sales/opportunities/{id}/tasks", "sales"),
    ("POST", "/sales/leads/{id}/tasks", "sales"),
    ("POST", "/sales/tasks/{id}/done", "sales"),
    ("POST", "/sales/notifications/read", "sales"),
    ("GET", "/sales/leads", "sales"),
    ("GET", "/sales/leads/{id}", "sales"),
    ("POST", "/sales/leads/{id}", "sales"),
    ("POST", "/sales/leads/{id}/activities", "sales"),
    ("POST", "/sales/leads/{id}/convert", "sales"),
    ("POST", "/sales/leads/bulk", "sales"),
    ("GET", "/sales/reports", "sales"),
    ("GET", "/sales/forecast", "sales"),
    ("GET", "/sales/forms", "sales:manage"),
    ("GET", "/sales/forms/new", "sales:manage"),
    ("POST", "/sales/forms/new", "sales:manage"),
    ("GET", "/sales/forms/{id}", "sales:manage"),
    ("POST", "/sales/forms/{id}", "sales:manage"),
    ("GET", "/sales/assignment", "sales:manage"),
    ("POST", "/sales/assignment/new", "sales:manage"),
    ("POST", "/sales/assignment/{id}/delete", "sales:manage"),
    ("GET", "/sales/points", "sales:manage"),
    ("GET", "/sales/points/new", "sales:manage"),
    ("POST", "/sales/points/new", "sales:manage"),
    ("POST", "/sales/points/builder", "sales:manage"),
    ("GET", "/sales/points/{id}", "sales:manage"),
    ("POST", "/sales/points/{id}", "sales:manage"),
    ("POST", "/sales/points/{id}/delete", "sales:manage"),
    ("GET", "/service", "service"),
    ("GET", "/service/inbox", "service"),
    ("POST", "/service/availability", "service"),
    ("GET", "/service/tickets/{id}", "service"),
    ("GET", "/service/tickets/{id}/thread", "service"),
    ("GET", "/service/tickets/{id}/side", "service"),
    ("POST", "/service/tickets/{id}", "service"),
    ("POST", "/service/tickets/{id}/reply", "service"),
    ("POST", "/service/tickets/{id}/note", "service"),
    ("GET", "/service/live", "service"),
    ("GET", "/service/reports", "service"),
    ("GET", "/service/attachments/{id}", "service"),
    ("GET", "/service/chat-sites", "service:manage"),
    ("POST", "/service/chat-sites/new", "service:manage"),
    ("GET", "/service/chat-sites/{id}", "service:manage"),
    ("POST", "/service/chat-sites/{id}", "service:manage"),
    ("POST", "/service/chat-sites/{id}/disable", "service:manage"),
    ("POST", "/service/chat-sites/{id}/enable", "service:manage"),
    ("GET", "/settings", "settings:read"),
    ("POST", "/settings/api-keys", "settings:write"),
    ("POST", "/settings/api-keys/{id}/revoke", "settings:write"),
    ("POST", "/settings/write-keys", "settings:write"),
    ("POST", "/settings/write-keys/{id}/revoke", "settings:write"),
    ("POST", "/settings/users", "settings:write"),
    ("POST", "/settings/users/{id}/role", "settings:write"),
    ("POST", "/settings/users/{id}/deactivate", "settings:write"),
    ("POST", "/settings/users/{id}/activate", "settings:write"),
]
GUARDED = [r for r in ROUTES if r[2] != "public"]
# The journey builder's form of: on an API call, exit.
# A points rule's form: a rule tree as the segment builder posts it.
POINT_FORM = {"name": "Khách Huế", "points": "10", "active": "1", "r.kind": "group", "r.mode": "all", "r.0.kind": "cond",
              "r.0.type": "profile", "r.0.field": "city", "r.0.op": "eq", "r.0.value": "Huế"}
JOURNEY_FORM = {"name": "Huế", "start": "end", "t.type": "api", "e.reentry": "never", "n.0.id": "end", "n.0.type": "exit",
                "n.0.previous_type": "exit"}
BODIES = {
    "/login": {"email": "nobody@shop.vn", "password": "wrong password"},
    "/locale": {"locale": "en"},
    "/settings/api-keys": {"name": "export", "scope": "customers:read"},
    "/settings/write-keys": {"name": "website"},
    "/settings/users": {"email": "new@shop.vn", "name": "Mới", "role": "agent", "password": PASSWORD},
    "/settings/users/{id}/role": {"role": "sales"},
    "/segments/new": {"name": "Huế", "r.kind": "group", "r.mode": "all", "r.0.kind": "cond", "r.0.type": "profile",
                      "r.0.field": "city", "r.0.op": "eq", "r.0.value": "Huế"},
    "/segments/{id}/edit": {"name": "Huế", "r.kind": "group", "r.mode": "all", "r.0.kind": "cond",
                            "r.0.type": "profile", "r.0.field": "city", "r.0.op": "eq", "r.0.value": "Huế"},
    # a callable body is made from the target (ids known only once it exists)
    "/channels/broadcasts/new": lambda target: {"name": "Tết", "template_key": "acc-hello", "when": "now",
                                               "segment_id": str(target["/segments/"]), "action": "draft"},
    "/channels/broadcasts/{id}/edit": lambda target: {"name": "Tết", "template_key": "acc-hello", "when": "now",
                                                      "segment_id": str(target["/segments/"]), "action": "draft"},
    "/channels/broadcasts/test": {"template_key": "acc-hello", "to": "lan@shop.vn"},
    "/channels/broadcasts/preview": lambda target: {"template_key": "acc-hello", "segment_id": str(target["/segments/"])},
    "/channels/templates/new": {"key": "acc-new", "channel": "email", "vi.subject": "Chào", "vi.text": "Xin chào"},
    "/channels/templates/{id}": {"vi.subject": "Chào", "vi.text": "Xin chào"},
    "/channels/templates/preview": {"channel": "email", "vi.subject": "Chào", "vi.text": "Xin chào"},
    "/channels/providers/test": {"channel": "email", "to": "lan@shop.vn"},
    "/journeys/new": JOURNEY_FORM,
    "/journeys/{id}/edit": JOURNEY_FORM,
    "/journeys/builder": {**JOURNEY_FORM, "add.start": "wait"},
    "/journeys/playbook/install": {"key": "welcome"},
    "/sales/opportunities/{id}/stage": {"stage": "proposal"},
    "/sales/leads/{id}": {"priority": "high"},
    "/sales/leads/{id}/activities": {"kind": "note", "subject": "Ghi chú"},
    "/sales/opportunities/{id}": {"priority": "high"},
    "/sales/opportunities/{id}/products": {"sku": "SOFA-L", "quantity": "1", "price": "1000000"},
    "/sales/opportunities/{id}/activities": {"kind": "note", "subject": "Ghi chú"},
    "/sales/opportunities/{id}/tasks": {"subject": "Gọi lại", "due_at": "2031-03-02T10:00"},
    "/sales/leads/{id}/tasks": {"subject": "Gọi lại", "due_at": "2031-03-02T10:00"},
    "/sales/points/new": POINT_FORM,
    "/sales/points/{id}": POINT_FORM,
    "/sales/points/builder": {**POINT_FORM, "action": "add:r"},
    "/sales/leads/bulk": lambda target: {"action": "priority", "priority": "high",
                                         "lead_ids": str(target["/sales/leads/"])},
    "/sales/forms/new": {"key": "acc-form", "title": "Báo giá", "fields": "phone"},
    "/sales/forms/{id}": {"key": "acc-sofa", "title": "Báo giá sofa", "fields": "phone"},
    "/sales/assignment/new": lambda target: {"name": "Cả đội", "user_ids": str(target["/users/"])},
    "/loyalty/members/{id}/adjust": {"points": "10", "reason": "Quà xin lỗi", "key": "access-1"},
    "/loyalty/program": {"name": "Thân thiết", "active": "1"},
    "/loyalty/tiers": {"count": "1", "tiers.0.key": "member", "tiers.0.name": "Thành viên", "tiers.0.threshold": "0",
                       "tiers.0.earn_percent": "100"},
    "/loyalty/rules": {"name": "Mới", "kind": "spend", "active": "1", "config": '{"points": 1, "per_amount": 10000}'},
    "/loyalty/rules/{id}": {"name": "Cơ bản", "kind": "spend", "active": "1", "config": '{"points": 2}'},
    "/loyalty/rewards": {"name": "Phiếu 50k", "kind": "voucher", "points": "50", "value": "50000", "active": "1"},
    "/loyalty/rewards/{id}": {"name": "Phiếu 20k", "kind": "voucher", "points": "20", "value": "20000"},
    "/service/availability": {"availability": "online"},
    "/service/tickets/{id}": {"priority": "high", "tags": "giao hàng"},
    "/service/tickets/{id}/reply": {"body": "Dạ shop kiểm tra ngay ạ"},
    "/service/tickets/{id}/note": {"body": "khách quen"},
    "/service/chat-sites/new": {"name": "Cửa hàng mới", "origins": "https://moi.shop.vn", "language": "vi"},
    "/service/chat-sites/{id}": {"name": "Website", "origins": "https://shop.vn\nhttps://www.shop.vn",
                                 "greeting_vi": "Chào bạn!"},
}


def body_of(template: str, target: dict) -> dict:
    body = BODIES.get(template, {})
    return body(target) if callable(body) else body
guarded = pytest.mark.parametrize("method,path,needs", GUARDED, ids=[f"{m} {p}" for m, p, _ in GUARDED])


def dashboard_routes(routes) -> set[tuple[str, str]]:
    found = set()
    for route in routes:
        if isinstance(route, DashboardRoute):
            found |= {(m, re.sub(r"\{[a-z_]+\}", "{id}", route.path)) for m in route.methods - {"HEAD"}}
        elif hasattr(route, "original_router"):
            found |= dashboard_routes(route.original_router.routes)
        elif isinstance(route, APIRoute) is False and hasattr(route, "routes"):
            found |= dashboard_routes(route.routes)
    return found


# One of everything and one logged-in user per role once per module and backend, each case in a savepoint
# rolled back at its end (tests/module_transaction.py).
module_connection, module_session_factory, module_db, connection, settings = (
    module_transaction.module_connection, module_transaction.module_session_factory, module_transaction.module_db,
    module_transaction.connection, module_transaction.settings)


@pytest.fixture(scope="module")
def app(settings, module_session_factory):
    """The app, once per module and backend (a new one costs half a second of CPU: FastAPI prepares its
    routes at the first request); the live stream answers once and ends (it would last a minute)."""
    from clm.web.app import create_app
    from clm.web.sse import Timing

    app = create_app(settings, module_session_factory)
    app.state.sse_timing = Timing(interval=0, duration=0)
    return app


@pytest.fixture(autouse=True)
def own_caches(app):
    """Each case with an empty figures cache and login throttle, as on a new app."""
    from clm.web.auth import LoginThrottle
    from clm.web.pages.metrics import TTLCache

    cache = app.state.dashboard_cache
    app.state.dashboard_cache = TTLCache(cache.ttl, session_factory=cache.session_factory)
    app.state.login_throttle = LoginThrottle()


@pytest.fixture
def as_role(browser, logged_in):
    """as_role("marketer"): a new browser holding the session of the module's marketer, who logged in once
    through the login form (tests/dashboard/conftest.py's logged_in), and the CSRF token its pages carry.
    Also "outsider" (nobody logged in) and "deactivated" (an admin switched off after logging in)."""

    def make(role: str):
        client = browser()
        if role != "outsider":
            client.cookies, client.csrf_token = logged_in[role]
        return client

    return make


@pytest.fixture(scope="module")
def target(module_db):
    """One of everything a path can name: a customer, an API key, a write key, a staff user."""
    db, shop = module_db, Shop(module_db)
    customer = shop.customer("Trần Thị Bích", email="bich@example.vn")
    api_key, _ = create_api_key(db, "old", ["customers:read"])
    write_key, _ = create_write_key(db, "old")
    staff = create_user(db, email="target@shop.vn", name="Target", role="agent", password=PASSWORD)
    segment = save_segment(db, name="Đà Nẵng", rules={"type": "profile", "field": "city", "op": "eq", "value": "Đà Nẵng"})
    from clm.jobs import queue

    job = queue.enqueue(db, "send.email", max_attempts=1)
    db.commit()
    [claimed] = queue.claim(db, "w")
    queue.fail(db, claimed, "SMTP refused")  # dead: both retry and cancel apply
    db.commit()
    return {"/customers/": customer.id, "/api-keys/": api_key.id, "/write-keys/": write_key.id, "/users/": staff.id,
            "/segments/": segment.id, "/jobs/": job.id, **channels_target(db, customer, segment),
            "/journeys/": journeys_target(db), **sales_target(db, staff.id), **loyalty_target(db, customer),
            **service_target(db, customer)}


def service_target(db, customer) -> dict:
    """A ticket for the /service pages, a customer's mail with an attachment, a web chat site."""
    from clm.config import Settings
    from clm.service.chat import SiteIn, save_site
    from clm.service.mail.inbound import accept
    from clm.service.mail.models import Attachment
    from clm.service.tickets import TicketIn, open_ticket
    from tests.service.mail.conftest import sample

    ticket = open_ticket(db, TicketIn(customer_id=customer.id, subject="Giao hàng chậm", route=False))
    accept(db, sample("gmail_utf8_attachment.eml"), source="test", settings=Settings(database_url="sqlite://",
                                                                                     _env_file=None))
    site = save_site(db, SiteIn(name="Website", origins=["https://shop.vn"]))
    db.commit()
    return {"/service/tickets/": ticket.id, "/attachments/": db.scalar(sa.select(sa.func.max(Attachment.id))),
            "/chat-sites/": site.id}


def loyalty_target(db, customer) -> dict:
    """A program with its default tiers, an earning rule and a reward, for the /loyalty pages."""
    from clm.loyalty.program import ProgramSettings, save_program
    from clm.loyalty.rewards import RewardIn, save_reward
    from clm.loyalty.rules import RuleIn, create_rule
    from clm.loyalty.tiers import DEFAULT_TIERS, TierIn, save_tiers

    save_program(db, ProgramSettings())
    save_tiers(db, [TierIn(**t) for t in DEFAULT_TIERS])
    rule = create_rule(db, RuleIn(name="Cơ bản", kind="spend", config={"points": 1, "per_amount": 10_000}))
    reward = save_reward(db, RewardIn(name="Phiếu 20k", kind="voucher", points=20, value=20_000))
    db.commit()
    return {"/members/": customer.id, "/rules/": rule.id, "/rewards/": reward.id}


def sales_target(db, staff_id: int) -> dict:
    """A lead, an open deal and its task, a lead form, an assignment rule and a points rule for the /sales pages."""
    from clm.sales.assignment import RuleIn, save_rule
    from clm.sales.lead_forms import FormIn, save_form
    from clm.sales.leads import LeadIn, capture_lead
    from clm.sales.opportunities import DealIn, convert_lead
    from clm.sales.points import PointRuleIn, save_point_rule
    from clm.sales.tasks import TaskIn, create_task

    lead = capture_lead(db, LeadIn(phone="0909000111", name="Khách tiềm năng"), score=False).lead
    other = capture_lead(db, LeadIn(phone="0909000222", name="Khách có cơ hội"), score=False).lead
    deal = convert_lead(db, other.id, DealIn(value=1_000_000))
    form = save_form(db, FormIn(key="acc-sofa", title="Báo giá sofa"))
    rule = save_rule(db, RuleIn(name="Cả đội", user_ids=[staff_id]))
    task = create_task(db, TaskIn(subject="Gửi báo giá", due_at=datetime(2031, 3, 2, 3, tzinfo=UTC), opportunity_id=deal.id))
    points = save_point_rule(db, PointRuleIn(name="Khách Huế", points=10, rule={
        "type": "profile", "field": "city", "op": "eq", "value": "Huế"}))
    db.commit()
    return {"/sales/leads/": lead.id, "/sales/opportunities/": deal.id, "/sales/forms/": form.id,
            "/sales/assignment/": rule.id, "/sales/tasks/": task.id, "/sales/points/": points.id}


def journeys_target(db) -> int:
    """An active journey: every state button answers it (pausing, resuming and archiving included)."""
    from clm.journeys import service

    journey = service.save_journey(db, name="Đà Nẵng", definition={
        "trigger": {"type": "api"}, "start": "end", "nodes": [{"id": "end", "type": "exit"}]})
    service.activate(db, journey.id)
    db.commit()
    return journey.id


def channels_target(db, customer, segment) -> dict:
    """A template, a draft broadcast, a message and a test send for the /channels pages."""
    from clm.channels import broadcasts, testsend
    from clm.channels.service import enqueue_message
    from clm.channels.templates import create_template
    from clm.config import Settings

    settings = Settings(_env_file=None)
    create_template(db, key="acc-hello", channel="email", variants={"vi": {"subject": "Chào", "text": "Xin chào"}})
    broadcast = broadcasts.create_broadcast(db, name="Tết", template_key="acc-hello", segment_id=segment.id,
                                            settings=settings)
    message = enqueue_message(db, customer_id=customer.id, channel="email", template_key="acc-hello",
                              idempotency_key="acc:1", settings=settings)
    test = testsend.queue_test(db, testsend.check_content("email", "en"), "lan@shop.vn", settings=settings)
    db.commit()
    return {"/broadcasts/": broadcast.id, "/templates/": "acc-hello", "/messages/": message.id, "/tests/": test.id}


class AnyId(dict):
    """The target of the tests where nobody may look anything up (an outsider, a deactivated user): any id
    will do, and building one of everything costs more than the request."""

    def __missing__(self, prefix: str) -> int:
        return 1


def call(client, method: str, template: str, target: dict):
    path = template
    for prefix, value in target.items():
        path = path.replace(prefix + "{id}", f"{prefix}{value}")
    path = re.sub(r"\{[a-z_]+\}", "1", path)  # AnyId: every id is 1
    if method == "GET":
        return client.get(path)
    token = getattr(client, "csrf_token", None) or token_of(client)
    return client.post(path, data={**body_of(template, target), "csrf_token": token})


def allowed(role: str, needs: str) -> bool:
    return needs in ("public", "login") or needs in PERMISSIONS[role]


def test_every_dashboard_route_has_an_access_test(app):
    assert dashboard_routes(app.routes) == {(m, p) for m, p, _ in ROUTES}


def test_every_role_has_a_permission_row_and_admins_can_do_everything():
    assert set(PERMISSIONS) == set(ROLES)
    assert all(PERMISSIONS[role] <= PERMISSIONS["admin"] for role in ROLES)


@guarded
def test_an_outsider_is_sent_to_the_login_page(as_role, method, path, needs):
    r = call(as_role("outsider"), method, path, AnyId())
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")
    if method == "GET" and path != "/":
        assert "next=" in r.headers["location"]


@guarded
def test_a_deactivated_user_is_logged_out_everywhere(as_role, method, path, needs):
    r = call(as_role("deactivated"), method, path, AnyId())
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


@pytest.mark.parametrize("role", ROLES)
@guarded
def test_each_role_gets_a_403_page_where_it_has_no_access_and_in_where_it_has(as_role, target, role, method, path,
                                                                            needs):
    r = call(as_role(role), method, path, target)
    if allowed(role, needs):
        assert r.status_code in (200, 201, 303), r.text[:500]
        if r.status_code == 303:
            assert not r.headers["location"].startswith("/login")
    else:
        assert r.status_code == 403
        assert "No access" in r.text and r.headers["content-type"].startswith("text/html")


UNSAFE = [r for r in ROUTES if r[0] == "POST"]


@pytest.mark.parametrize("method,path,needs", UNSAFE, ids=[f"{m} {p}" for m, p, _ in UNSAFE])
def test_every_form_is_refused_without_the_csrf_token(as_role, target, method, path, needs):
    client = as_role("admin")
    concrete = path
    for prefix, value in target.items():
        concrete = concrete.replace(prefix + "{id}", f"{prefix}{value}")
    r = client.post(concrete, data=body_of(path, target))
    assert r.status_code == 403 and "The form has expired" in r.text
    r = client.post(concrete, data={**body_of(path, target), "csrf_token": "forged"})
    assert r.status_code == 403


def test_an_htmx_request_without_a_session_is_told_to_navigate_to_the_login_page(as_role):
    r = as_role("outsider").get("/customers?q=an", headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.headers["HX-Redirect"] == "/login?next=%2Fcustomers%3Fq%3Dan"


def test_the_json_api_keeps_answering_json_to_a_logged_in_browser(as_role):
    client = as_role("admin")
    r = client.get("/api/v1/customers")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_the_forms_carry_the_token_and_htmx_sends_it_as_a_header(as_role):
    html = as_role("admin").get("/settings").text
    token = csrf_of(html)
    assert html.count(f'name="csrf_token" value="{token}"') == len(re.findall(r"<form[^>]*method=\"post\"", html))
    assert f'hx-headers=\'{{"X-CSRF-Token": "{token}"}}\'' in html
