"""The public lead form: a signed, time-stamped token, a honeypot, a rate limit per IP; errors name the field."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from clm.customers.models import Customer
from clm.lib.clock import utcnow
from clm.sales.models import Lead


def token(client) -> str:
    """A token issued a minute ago (people take a while to type)."""
    with time_machine.travel(utcnow() - timedelta(minutes=1), tick=False):
        return client.get("/forms/lead/token").json()["token"]


def leads(db) -> list[Lead]:
    db.expire_all()
    return list(db.scalars(sa.select(Lead)))


def test_the_form_page_carries_a_token_a_hidden_honeypot_and_the_framing_pages_utm(client):
    r = client.get("/forms/lead", params={"utm_campaign": "tet-2025", "anonymous_id": "a-1", "lang": "en"})
    assert r.status_code == 200
    assert 'name="token"' in r.text and 'name="website"' in r.text
    assert 'name="utm_campaign" value="tet-2025"' in r.text and 'name="anonymous_id" value="a-1"' in r.text
    assert "frame-ancestors *" in r.headers["content-security-policy"]
    assert "Phone number" in r.text


def test_a_json_submission_with_a_fresh_token_becomes_a_lead(client, db):
    r = client.post("/forms/lead", json={"token": token(client), "name": "Phạm Thu", "phone": "0912 111 222",
                                         "utm_campaign": "tet-2025", "message": "Báo giá giúp em"})
    assert r.status_code == 201, r.text
    [lead] = leads(db)
    assert lead.source == "web_form" and lead.campaign == "tet-2025" and lead.message == "Báo giá giúp em"
    assert db.get(Customer, lead.customer_id).phone == "+84912111222"


def test_a_form_post_from_the_page_is_answered_with_a_thank_you_page(client, db):
    r = client.post("/forms/lead?lang=vi", data={"token": token(client), "email": "thu@example.vn", "website": ""})
    assert r.status_code == 201 and "Cảm ơn" in r.text
    assert len(leads(db)) == 1


@pytest.mark.parametrize("body,field,code", [
    ({"phone": "123"}, "phone", "invalid"),
    ({"email": "no-at-sign"}, "email", "invalid"),
    ({"name": "Chỉ có tên"}, "phone", "invalid"),
    ({"phone": "0912111333", "website": "http://spam.example"}, "website", "spam"),
])
def test_bad_or_spam_submissions_are_refused_naming_the_field_and_store_nothing(client, db, body, field, code):
    r = client.post("/forms/lead", json={"token": token(client), **body})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == field and r.json()["error"]["code"] == code
    assert leads(db) == [] and db.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0


def test_a_missing_forged_or_instant_token_is_refused_as_spam(client, db):
    seconds, _, mac = token(client).partition(".")
    with time_machine.travel(utcnow(), tick=False):  # "instant" whatever the machine's load
        fresh = client.get("/forms/lead/token").json()["token"]
        for bad in (None, "", f"{seconds}.{'0' * 32}", fresh):
            r = client.post("/forms/lead", json={"phone": "0912111444", **({"token": bad} if bad is not None else {})})
            assert r.status_code == 422 and r.json()["error"]["field"] == "token", bad
    assert leads(db) == []


def test_a_token_for_another_form_is_refused(client):
    with time_machine.travel(utcnow() - timedelta(minutes=1), tick=False):
        other = client.get("/forms/lead/token", params={"form": "webinar"}).json()["token"]
    r = client.post("/forms/lead", json={"token": other, "form": "default", "phone": "0912111555"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "token"


def test_an_expired_token_asks_to_send_again(client):
    with time_machine.travel(utcnow() - timedelta(days=2), tick=False):
        old = client.get("/forms/lead/token").json()["token"]
    r = client.post("/forms/lead", json={"token": old, "phone": "0912111666"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "expired"


def test_too_many_posts_from_one_address_are_answered_429(client, db, settings):
    settings.lead_form_per_ip = 3  # read when the first post arrives
    answers = [client.post("/forms/lead", json={"token": token(client), "phone": f"091211170{i}"}).status_code
               for i in range(4)]
    assert answers == [201, 201, 201, 429]
    assert len(leads(db)) == 3


def test_a_refused_page_post_shows_the_form_again_with_what_was_typed(client):
    r = client.post("/forms/lead?lang=en", data={"token": token(client), "name": "Lan", "phone": "12"})
    assert r.status_code == 422
    assert "valid phone number" in r.text and 'value="Lan"' in r.text
