"""Personas for the dashboard: one logged-in browser (TestClient with its own cookies) per role."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from clm.access import passwords
from clm.access.users import create_user, set_active
from tests.customers.shop import Shop

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    """argon2 with tiny costs: the same code paths, without spending a second per login."""
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def token_of(client: TestClient) -> str:
    """The CSRF token of this browser's session, read from a page as a browser would."""
    r = client.get("/login")
    if r.status_code == 303:  # logged in: the start page carries it too
        r = client.get(r.headers["location"])
    return csrf_of(r.text)


def log_in(client: TestClient, email: str, password: str = PASSWORD):
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                       follow_redirects=False)


@pytest.fixture
def browser(app) -> Callable[[], TestClient]:
    """A new browser (its own cookie jar) on the app; not following redirects, so tests see them."""
    made = []

    def make() -> TestClient:
        client = TestClient(app, raise_server_exceptions=False, follow_redirects=False,
                            headers={"Accept-Language": "en-US,en;q=0.9"})
        made.append(client)
        return client

    yield make
    for c in made:
        c.close()


@pytest.fixture
def user_factory(db):
    def make(role: str, email: str | None = None, locale: str | None = None, password: str = PASSWORD):
        user = create_user(db, email=email or f"{role}@shop.vn", name=f"{role.title()} Nguyễn", role=role,
                           password=password, locale=locale)
        db.commit()
        return user

    return make


@pytest.fixture
def as_role(browser, user_factory) -> Callable[[str], TestClient]:
    """as_role("marketer"): a browser logged in as a new user with that role. Also "outsider"
    (nobody logged in) and "deactivated" (an admin whose account was switched off after logging in)."""

    def make(role: str) -> TestClient:
        client = browser()
        if role == "outsider":
            return client
        user = user_factory("admin" if role == "deactivated" else role, email=f"{role}@shop.vn")
        assert log_in(client, user.email).status_code == 303
        if role == "deactivated":
            _deactivate(client, user.id)
        return client

    return make


def _deactivate(client: TestClient, user_id: int) -> None:
    session = client.app.state.session_factory()
    try:
        # Another admin must exist for the last-admin guard to let go.
        create_user(session, email="boss@shop.vn", name="Boss", role="admin", password=PASSWORD)
        set_active(session, user_id, False)
        session.commit()
    finally:
        session.close()


@pytest.fixture
def shop(db) -> Shop:
    return Shop(db)

