from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from clm.customers.consent import has_consent
from clm.outbox.models import OutboxEvent


@pytest.fixture
def writer(api_key_for):
    return api_key_for("customers:read", "customers:write")


@pytest.fixture
def customer(shop):
    return shop.customer("Lâm Thảo", email="thao@example.vn")


def record(client, customer, headers, **fields):
    body = {"channel": "email", "purpose": "marketing", "source": "signup_form", "granted": True, **fields}
    return client.post(f"/api/v1/customers/{customer.id}/consents", json=body, headers=headers)


def test_a_recorded_consent_keeps_its_source_and_evidence(client, db, customer, writer):
    r = record(client, customer, writer, evidence="Checkbox 'Nhận tin khuyến mãi' on /dang-ky, IP 203.0.113.7")
    assert r.status_code == 201, r.text
    assert r.json()["evidence"].startswith("Checkbox")
    assert db.scalar(sa.select(OutboxEvent.payload).where(OutboxEvent.topic == "consent.changed"))["granted"] is True


def test_a_withdrawal_is_kept_in_the_history_and_becomes_the_consent_in_force(client, db, customer, writer):
    record(client, customer, writer, granted=True)
    record(client, customer, writer, granted=True, channel="sms")
    record(client, customer, writer, granted=False, source="unsubscribe_link")
    body = client.get(f"/api/v1/customers/{customer.id}/consents", headers=writer).json()
    assert [(c["channel"], c["granted"]) for c in body["current"]] == [("email", False), ("sms", True)]
    assert [(c["channel"], c["granted"]) for c in body["history"]] == [("email", False), ("sms", True),
                                                                        ("email", True)]
    assert not has_consent(db, customer.id, "email", "marketing")
    assert has_consent(db, customer.id, "sms", "marketing")


def test_a_backdated_decision_does_not_override_a_later_one(client, customer, writer):
    record(client, customer, writer, granted=False)
    past = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    record(client, customer, writer, granted=True, recorded_at=past, source="paper_form")
    body = client.get(f"/api/v1/customers/{customer.id}/consents", headers=writer).json()
    assert [c["granted"] for c in body["current"]] == [False]


def test_no_recorded_decision_means_no_consent(db, customer):
    assert not has_consent(db, customer.id, "zalo", "marketing")


@pytest.mark.parametrize("fields,field", [
    ({"channel": "pigeon"}, "channel"), ({"purpose": "Marketing!"}, "purpose"), ({"source": ""}, "source"),
    ({"granted": None}, "granted"), ({"recorded_at": "2999-01-01T00:00:00Z"}, "recorded_at"),
    ({"extra": 1}, "extra"),
])
def test_a_bad_consent_is_a_422_naming_the_field(client, customer, writer, fields, field):
    r = record(client, customer, writer, **fields)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_consents_of_an_unknown_customer_are_a_404(client, writer):
    assert client.get("/api/v1/customers/777777/consents", headers=writer).status_code == 404
    assert client.post("/api/v1/customers/777777/consents", headers=writer,
                       json={"channel": "email", "purpose": "marketing", "granted": True,
                             "source": "x"}).status_code == 404
