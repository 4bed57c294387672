"""Whatever a client sends, the native API answers with its JSON error shape, never a 500."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

LISTINGS = {
    "/api/v1/customers": ["q", "stage", "city", "email", "phone", "has_orders", "created_since", "created_until",
                          "seen_since", "seen_until", "cursor", "limit"],
    "/api/v1/events": ["customer_id", "name", "type", "since", "until", "cursor", "limit"],
    "/api/v1/orders": ["customer_id", "status", "since", "until", "cursor", "limit"],
    "/api/v1/products": ["sku", "category", "brand", "cursor", "limit"],
}
values = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "true", "", "%", "_", "\\"]),
)
fuzz = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def admin(api_key_for):
    return api_key_for("admin")


@fuzz
@given(path=st.sampled_from(sorted(LISTINGS)), data=st.data())
def test_any_query_string_gets_an_answer_or_a_json_error(client, admin, path, data):
    params = data.draw(st.dictionaries(st.sampled_from(LISTINGS[path]), values, max_size=4))
    r = client.get(path, params=params, headers=admin)
    assert r.status_code in (200, 422), (params, r.text)
    if r.status_code == 422:
        assert set(r.json()["error"]) >= {"code", "message", "field"}


@fuzz
@given(body=st.dictionaries(
    st.sampled_from(["email", "phone", "full_name", "birthday", "gender", "city", "external_id", "traits"]),
    st.one_of(values, st.none(), st.dictionaries(st.text(max_size=8), values, max_size=3)), max_size=4))
def test_any_patch_body_gets_an_answer_or_a_json_error(client, shop, admin, body):
    customer = shop.customer("Fuzz", user_id="fuzz")
    r = client.patch(f"/api/v1/customers/{customer.id}", json=body, headers=admin)
    assert r.status_code in (200, 409, 422), (body, r.text)


def test_the_openapi_document_describes_every_answer(client):
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/v1"):
            continue
        for method, op in operations.items():
            ok = [s for s in op["responses"] if s.startswith("2")]
            assert ok, (method, path)
            content = op["responses"][ok[0]].get("content", {})
            # JSON answers name their schema; files (CSV exports, attachments) declare their type instead
            if ok != ["204"] and not {"text/csv", "application/octet-stream"} & content.keys():
                assert "$ref" in str(op["responses"][ok[0]]["content"]["application/json"]["schema"]), (method, path)
            for status in ("401", "403", "422"):
                assert status in op["responses"], (method, path, status)
            assert op.get("summary") and op.get("security"), (method, path)
