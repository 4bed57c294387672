"""Open pixel, signed click links, RFC 8058 one-click unsubscribe and the preference page, over HTTP."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from clm.channels.models import Message, Suppression
from clm.channels.service import enqueue_message
from clm.channels.tracking import Links
from clm.customers.consent import has_consent, record_consent
from clm.tracking.models import Event


@pytest.fixture
def app(channel_settings, session_factory):
    from clm.web.app import create_app

    return create_app(channel_settings, session_factory)


@pytest.fixture
def sent(db, channel_settings, make_customer, welcome):
    customer = make_customer("an@example.vn")
    message = enqueue_message(db, customer_id=customer.id, channel="email", template_key="welcome",
                              idempotency_key="welcome:an", settings=channel_settings)
    message.status = "sent"
    db.commit()
    return message


def path(url: str) -> str:
    return url.replace("https://shop.example.vn", "")


def names(db, customer_id) -> list[str]:
    return list(db.scalars(sa.select(Event.name).where(Event.customer_id == customer_id).order_by(Event.id)))


def status(db, message) -> str:
    db.expire_all()
    return db.get(Message, message.id).status


def test_the_open_pixel_records_one_open_and_answers_a_gif(client, db, sent, channel_settings):
    url = path(Links(channel_settings, sent.id).open_pixel())
    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 200 and response.headers["content-type"] == "image/gif"
    assert status(db, sent) == "opened"
    assert names(db, sent.customer_id) == ["Email Opened"]


def test_a_click_link_redirects_to_the_signed_url_and_records_the_click(client, db, sent):
    href = re.search(r'href="(https://shop.example.vn/t/c/[^"]+)"', sent.html).group(1)
    response = client.get(path(href), follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "https://shop.example.vn/sale?a=1&b=2"
    assert status(db, sent) == "clicked"
    event = db.scalar(sa.select(Event).where(Event.name == "Email Link Clicked"))
    assert event.properties["url"] == "https://shop.example.vn/sale?a=1&b=2"
    assert event.properties["message_id"] == sent.id


@pytest.mark.parametrize("kind", ["o", "c", "u", "p"])
def test_a_tampered_link_is_refused_and_changes_nothing(client, db, sent, channel_settings, kind):
    links = Links(channel_settings, sent.id)
    url = {"o": links.open_pixel(), "c": links.click("https://shop.example.vn/"), "u": links.unsubscribe(),
           "p": links.preferences()}[kind]
    token = path(url).split("/")[3].removesuffix(".gif")
    body, mac = token.split(".")
    forged_body = Links(channel_settings, sent.id + 1).unsubscribe().split("/")[-1].split(".")[0]
    # the signature's first character changed (all six of its bits are signature bits; the last character's
    # low bits are padding, so changing only the end could leave the same signature now and then)
    tampered_mac = ("B" if mac[0] == "A" else "A") + mac[1:]
    for bad in (f"{forged_body}.{mac}", f"{body}.{tampered_mac}", "garbage"):
        bad_url = f"/t/{kind}/{bad}" + (".gif" if kind == "o" else "")
        assert client.get(bad_url, follow_redirects=False).status_code == 400
        assert client.post(bad_url).status_code in (400, 405)
    assert status(db, sent) == "sent"
    assert has_consent(db, sent.customer_id, "email", "marketing")
    assert names(db, sent.customer_id) == []


def test_a_link_signed_with_another_secret_is_refused(client, sent, channel_settings):
    other = channel_settings.model_copy(update={"tracking_secret": SecretStr("another")})
    evil = Links(other, sent.id).click("https://evil.example.com/")
    assert client.get(path(evil), follow_redirects=False).status_code == 400


def test_one_click_unsubscribe_by_post_without_cookies_withdraws_consent_and_never_redirects(
        client, db, sent, channel_settings, make_customer):
    other = make_customer("binh@example.vn")
    url = path(Links(channel_settings, sent.id).unsubscribe())
    client.cookies.clear()
    response = client.post(url, content=b"List-Unsubscribe=One-Click",
                           headers={"Content-Type": "application/x-www-form-urlencoded"}, follow_redirects=False)
    assert response.status_code == 200 and "location" not in response.headers
    assert not has_consent(db, sent.customer_id, "email", "marketing")
    assert has_consent(db, other.id, "email", "marketing")  # that recipient only
    assert status(db, sent) == "unsubscribed"
    assert names(db, sent.customer_id) == ["Unsubscribed"]
    suppression = db.scalar(sa.select(Suppression))
    assert (suppression.address, suppression.reason) == ("an@example.vn", "unsubscribe")
    again = client.post(url, files={"List-Unsubscribe": (None, "One-Click")})  # multipart, and a repeat
    assert again.status_code == 200
    from clm.customers.consent import consent_history

    assert [c.granted for c in consent_history(db, sent.customer_id)] == [False, True]
    assert names(db, sent.customer_id) == ["Unsubscribed"]


def test_the_unsubscribe_page_by_get_asks_and_unsubscribes_nobody(client, db, sent, channel_settings):
    response = client.get(path(Links(channel_settings, sent.id).unsubscribe()))
    assert response.status_code == 200
    assert "Hủy đăng ký" in response.text and "<form method=\"post\"" in response.text
    assert has_consent(db, sent.customer_id, "email", "marketing")


def test_unsubscribing_stops_the_marketing_still_queued_for_that_customer(client, db, sent, channel_settings):
    later = enqueue_message(db, customer_id=sent.customer_id, channel="email", template_key="welcome",
                            idempotency_key="second", settings=channel_settings)
    db.commit()
    assert later.status == "queued"
    client.post(path(Links(channel_settings, sent.id).unsubscribe()))
    db.expire_all()
    row = db.get(Message, later.id)
    assert (row.status, row.status_reason) == ("suppressed", "consent for email marketing was withdrawn")
    blocked = enqueue_message(db, customer_id=sent.customer_id, channel="email", template_key="welcome",
                              idempotency_key="third", settings=channel_settings)
    assert blocked.status == "suppressed"


def test_the_preference_page_shows_and_saves_choices_per_channel(client, db, sent, channel_settings):
    url = path(Links(channel_settings, sent.id).preferences())
    page = client.get(url, headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert 'name="email" value="1" checked' in page.text
    assert 'name="zalo" value="1" >' in page.text
    saved = client.post(url, data={"zalo": "1"})
    assert saved.status_code == 200
    assert has_consent(db, sent.customer_id, "zalo", "marketing")
    assert not has_consent(db, sent.customer_id, "email", "marketing")
    record_consent(db, sent.customer_id, channel="sms", purpose="marketing", granted=True, source="test")
    db.commit()
    assert 'name="sms" value="1" checked' in client.get(url).text


def test_the_customer_360_lists_the_customers_messages_with_their_status(client, db, sent):
    from clm.access.users import create_user

    create_user(db, email="boss@example.vn", name="Boss", password="correct horse battery", role="admin")
    db.commit()
    login = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    client.post("/login", data={"email": "boss@example.vn", "password": "correct horse battery",
                                "csrf_token": token})
    page = client.get(f"/customers/{sent.customer_id}", headers={"Accept-Language": "vi"})
    assert page.status_code == 200
    section = page.text.split('id="messages"')[1].split("</section>")[0]
    assert "welcome" in section and "Đã gửi" in section
