"""Logging in and out: the session cookie, where people land, throttling, languages."""

from __future__ import annotations

import pytest

from clm.web.auth import COOKIE, LoginThrottle, Signer
from tests.dashboard.conftest import PASSWORD, csrf_of, log_in, token_of


def test_a_user_with_the_right_password_lands_on_the_page_they_asked_for(browser, user_factory):
    user_factory("marketer")
    client = browser()
    assert client.get("/customers?stage=retention").headers["location"] == "/login?next=%2Fcustomers%3Fstage%3Dretention"
    token = csrf_of(client.get("/login?next=/customers?stage=retention").text)
    r = client.post("/login", data={"email": "Marketer@Shop.vn ", "password": PASSWORD, "csrf_token": token,
                                    "next": "/customers?stage=retention"})
    assert r.status_code == 303 and r.headers["location"] == "/customers?stage=retention"
    assert client.get("/customers").status_code == 200


@pytest.mark.parametrize("role,home", [("marketer", "/overview"), ("sales", "/customers"), ("agent", "/customers")])
def test_without_a_target_each_role_lands_on_its_start_page(browser, user_factory, role, home):
    user_factory(role)
    r = log_in(browser(), f"{role}@shop.vn")
    assert r.headers["location"] == home


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
def test_a_next_link_to_another_site_is_ignored(browser, user_factory, target):
    user_factory("marketer")
    client = browser()
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"email": "marketer@shop.vn", "password": PASSWORD, "csrf_token": token,
                                    "next": target})
    assert r.headers["location"] == "/overview"


def test_a_wrong_password_shows_the_form_again_with_one_message_for_every_cause(browser, user_factory):
    user_factory("marketer")
    client = browser()
    wrong = log_in(client, "marketer@shop.vn", "not the password")
    unknown = log_in(client, "ghost@shop.vn")
    for r in (wrong, unknown):
        assert r.status_code == 401
        assert "The email or password is wrong" in r.text
    assert client.get("/overview").status_code == 303


def test_the_session_cookie_is_signed_httponly_and_lax(browser, user_factory):
    user_factory("marketer")
    r = log_in(browser(), "marketer@shop.vn")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie


def test_the_cookie_is_secure_when_configured(app, browser, user_factory):
    app.state.settings = app.state.settings.model_copy(update={"session_cookie_secure": True})
    user_factory("marketer")
    assert "Secure" in log_in(browser(), "marketer@shop.vn").headers["set-cookie"]


def test_a_forged_or_expired_cookie_is_a_logged_out_visitor(browser, user_factory, settings):
    user = user_factory("admin")
    signer = Signer("some other secret")
    client = browser()
    client.cookies.set(COOKIE, signer.dump({"u": user.id, "c": "x", "t": 2_000_000_000}))
    assert client.get("/overview").status_code == 303
    real = Signer(settings.secret_key.get_secret_value())
    assert real.load(real.dump({"u": 1, "t": 1000}), max_age=60, now=1061) is None
    assert real.load(real.dump({"u": 1, "t": 1000}), max_age=60, now=1059) == {"u": 1, "t": 1000}


def test_logging_out_ends_the_session_and_changes_the_csrf_token(as_role):
    client = as_role("admin")
    before = token_of(client)
    r = client.post("/logout", data={"csrf_token": before})
    assert r.headers["location"] == "/login"
    assert client.get("/overview").status_code == 303
    assert token_of(client) != before


def test_a_changed_password_ends_existing_sessions(as_role, db):
    from clm.access.models import User
    from clm.access.passwords import hash_password

    client = as_role("admin")
    user = db.query(User).filter_by(email="admin@shop.vn").one()
    user.password_hash = hash_password("a brand new password")
    db.commit()
    assert client.get("/overview").status_code == 303


def test_after_ten_failures_logins_are_refused_for_a_while(browser, user_factory):
    user_factory("admin")
    client = browser()
    for _ in range(10):
        assert log_in(client, "admin@shop.vn", "guess").status_code == 401
    r = log_in(client, "admin@shop.vn")
    assert r.status_code == 429 and "Too many failed attempts" in r.text


def test_the_throttle_forgets_failures_after_its_window():
    now = [0.0]
    throttle = LoginThrottle(limit=2, window=60, clock=lambda: now[0])
    throttle.failed("ip:1")
    throttle.failed("ip:1")
    assert throttle.blocked("ip:1") and not throttle.blocked("ip:2")
    now[0] = 61
    assert not throttle.blocked("ip:1")


@pytest.mark.parametrize("header,title", [("vi-VN,vi;q=0.9,en;q=0.8", "Đăng nhập"), ("en-GB,en;q=0.9", "Log in"),
                                          ("fr-FR,fr;q=0.9", "Đăng nhập"), ("fr;q=0.9,en;q=0.5", "Log in")])
def test_the_login_page_speaks_the_browsers_language_or_vietnamese(browser, header, title):
    html = browser().get("/login", headers={"Accept-Language": header}).text
    assert f"<h1>{title}</h1>" in html


def test_the_language_switch_is_remembered_for_the_user(as_role, browser, db):
    client = as_role("manager")
    r = client.post("/locale", data={"locale": "vi", "next": "/settings", "csrf_token": token_of(client)})
    assert r.headers["location"] == "/settings"
    assert "Cài đặt" in client.get("/settings").text
    again = browser()  # a new browser that prefers English: the user's choice wins
    log_in(again, "manager@shop.vn")
    assert "Tổng quan" in again.get("/overview").text
