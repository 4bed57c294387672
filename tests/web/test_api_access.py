"""Who may call what: every /api/v1 endpoint refuses a missing key, a bad key and a key without its scope."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from clm.access.keys import SCOPES, revoke
from clm.access.models import ApiKey
from clm.analytics.refresh import refresh
from clm.commerce.models import Product
from tests import module_transaction
from tests.channels import access_target as broadcasts
from tests.customers.shop import Shop
from tests.journeys import access_target as journeys
from tests.loyalty import access_target as loyalty
from tests.sales import access_target as sales
from tests.service import access_automation as service_automation
from tests.service import access_target as service
from tests.service.mail import access_target as service_mail

ENDPOINTS = [
    ("GET", "/api/v1/customers", "customers:read"),
    ("POST", "/api/v1/customers", "customers:write"),
    ("GET", "/api/v1/customers/{id}", "customers:read"),
    ("PATCH", "/api/v1/customers/{id}", "customers:write"),
    ("DELETE", "/api/v1/customers/{id}", "customers:write"),
    ("GET", "/api/v1/customers/{id}/timeline", "customers:read"),
    ("GET", "/api/v1/customers/{id}/consents", "customers:read"),
    ("POST", "/api/v1/customers/{id}/consents", "customers:write"),
    ("GET", "/api/v1/events", "events:read"),
    ("GET", "/api/v1/orders", "orders:read"),
    ("GET", "/api/v1/orders/{id}", "orders:read"),
    ("GET", "/api/v1/products", "products:read"),
    ("GET", "/api/v1/products/{id}", "products:read"),
    ("GET", "/api/v1/lifecycle/stages", "customers:read"),
    ("GET", "/api/v1/lifecycle/funnel", "customers:read"),
    ("GET", "/api/v1/lifecycle/customers/{id}/history", "customers:read"),
    ("GET", "/api/v1/customers/{id}/scores", "customers:read"),
    ("GET", "/api/v1/analytics/runs/latest", "customers:read"),
    ("GET", "/api/v1/segments", "segments:read"),
    ("POST", "/api/v1/segments", "segments:write"),
    ("GET", "/api/v1/segments/schema", "segments:read"),
    ("POST", "/api/v1/segments/preview", "segments:read"),
    ("GET", "/api/v1/segments/{id}", "segments:read"),
    ("PUT", "/api/v1/segments/{id}", "segments:write"),
    ("DELETE", "/api/v1/segments/{id}", "segments:write"),
    ("GET", "/api/v1/segments/{id}/members", "segments:read"),
    ("POST", "/api/v1/segments/{id}/members", "segments:write"),
    ("GET", "/api/v1/segments/{id}/export.csv", "segments:read"),
    *loyalty.ENDPOINTS,
    *journeys.ENDPOINTS,
    *broadcasts.ENDPOINTS,
    *sales.ENDPOINTS,
    *service.ENDPOINTS,
    *service_automation.ENDPOINTS,
    *service_mail.ENDPOINTS,
]
BODIES = {
    ("POST", "/api/v1/customers"): {"email": "new@example.vn"},
    ("PATCH", "/api/v1/customers/{id}"): {"city": "Huế"},
    ("POST", "/api/v1/customers/{id}/consents"): {"channel": "email", "purpose": "marketing", "granted": True,
                                                  "source": "test"},
    ("POST", "/api/v1/segments"): {"name": "Huế", "rules": {"type": "profile", "field": "city", "op": "eq",
                                                            "value": "Huế"}},
    ("POST", "/api/v1/segments/preview"): {"rules": {"type": "stage", "stages": ["retention"]}},
    ("PUT", "/api/v1/segments/{id}"): {"name": "VIP", "kind": "static"},
    ("POST", "/api/v1/segments/{id}/members"): {"add": []},
    **loyalty.BODIES,  # a callable body is made from the target (ids known only once it exists)
    **journeys.BODIES,
    **broadcasts.BODIES,
    **sales.BODIES,
    **service.BODIES,
    **service_automation.BODIES,
}
ids = pytest.mark.parametrize("method,path,scope", ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])


# The app and one of everything once per module and backend, each case in a savepoint rolled back at its end.
module_connection, module_session_factory, module_db, connection, settings, app, client = (
    module_transaction.module_connection, module_transaction.module_session_factory, module_transaction.module_db,
    module_transaction.connection, module_transaction.settings, module_transaction.app, module_transaction.client)


@pytest.fixture(scope="module")
def shop(module_db) -> Shop:
    return Shop(module_db)


@pytest.fixture(scope="module")
def target(shop):
    """One of everything, so that each endpoint has something to answer about: built once per module and
    backend (tests.module_transaction), each case's changes rolled back when it ends."""
    customer = shop.customer("Trần Thị Bích", email="bich@example.vn")
    order = shop.order(customer, 250000, items=[("tea", "Trà sen", 250000, 1)])
    product_id = shop.db.scalar(sa.select(Product.id))
    refresh(shop.db)  # scores and a run for the analytics endpoints
    shop.db.commit()
    from clm.segments.service import save_segment

    segment = save_segment(shop.db, name="VIP", kind="static")
    shop.db.commit()
    return {"/customers/": customer.id, "/orders/": order.id, "/products/": product_id, "/segments/": segment.id,
            **loyalty.loyalty_target(shop, customer), **journeys.journeys_target(shop),
            **broadcasts.broadcasts_target(shop, customer),
            **sales.sales_target(shop, customer), **service.service_target(shop, customer),
            **service_automation.automation_target(shop), **service_mail.mail_target(shop)}


class AnyId(dict):
    """The target of the refusal tests: any id will do, since the key is checked before anything is looked
    up (a refusal must not depend on, or reveal, whether the object exists). Building a real target costs
    about a second, and these tests are four of the six run for every endpoint."""

    def __missing__(self, prefix: str) -> int:
        return 1


@pytest.fixture
def anything() -> AnyId:
    return AnyId()


def call(client, method, template, target, headers):
    path = template
    for prefix, value in target.items():
        path = path.replace(prefix + "{id}", f"{prefix}{value}")
    path = re.sub(r"\{[a-z_]+\}", "1", path)  # AnyId: every id is 1
    body = BODIES.get((method, template))
    return client.request(method, path, json=body(target) if callable(body) else body, headers=headers)


def test_every_native_api_endpoint_has_an_access_test(app):
    documented = {(method.upper(), re.sub(r"\{[a-z_]+\}", "{id}", path))
                  for path, operations in app.openapi()["paths"].items() if path.startswith("/api/v1")
                  for method in operations}
    assert documented == {(m, p) for m, p, _ in ENDPOINTS}


@ids
def test_a_request_without_a_key_is_refused_with_401(client, anything, method, path, scope):
    r = call(client, method, path, anything, {})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"


@ids
def test_a_request_with_an_unknown_key_is_refused_with_401(client, anything, method, path, scope):
    r = call(client, method, path, anything, {"Authorization": "Bearer clm_not-a-real-key"})
    assert r.status_code == 401
    assert r.json()["error"] == {"code": "unauthorized", "message": "the API key is unknown or revoked",
                                 "field": None}


@ids
def test_a_revoked_key_is_refused_with_401(client, db, api_key_for, anything, method, path, scope):
    headers = api_key_for(scope)
    revoke(db, ApiKey, db.scalar(sa.select(sa.func.max(ApiKey.id))))
    db.commit()
    assert call(client, method, path, anything, headers).status_code == 401


@ids
def test_a_key_without_the_scope_is_refused_with_403(client, api_key_for, anything, method, path, scope):
    others = [s for s in SCOPES if s not in (scope, "admin")]
    r = call(client, method, path, anything, api_key_for(*others))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden" and scope in r.json()["error"]["message"]


@ids
def test_a_key_with_the_scope_is_let_in(client, api_key_for, target, method, path, scope):
    r = call(client, method, path, target, api_key_for(scope))
    assert r.status_code in (200, 201, 202, 204), r.text


@ids
def test_an_admin_key_is_let_in_everywhere(client, api_key_for, target, method, path, scope):
    r = call(client, method, path, target, api_key_for("admin"))
    assert r.status_code in (200, 201, 202, 204), r.text
