"""Personas for the dashboard: one logged-in browser (TestClient with its own cookies) per role."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from clm.access import passwords
from clm.access.users import ROLES, create_user, set_active
from tests.customers.shop import Shop

PASSWORD = "correct horse battery"
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    """argon2 with tiny costs: the same code paths, without spending a second per login."""
    monkeypatch.setattr(passwords, "_hasher", CHEAP_HASHER)


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


@pytest.fixture(scope="module")
def logged_in(settings, module_session_factory) -> dict[str, tuple[httpx.Cookies, str]]:
    """For a module on tests.module_transaction: per role (and "deactivated"), a user made and logged in once
    through the login form, as as_role does; returns the browser's cookies and the CSRF token of its pages."""
    from clm.web.app import create_app

    app = create_app(settings, module_session_factory)
    sessions = {}
    with pytest.MonkeyPatch.context() as patch, module_session_factory() as db:
        patch.setattr(passwords, "_hasher", CHEAP_HASHER)
        for role in (*ROLES, "deactivated"):
            user = create_user(db, email=f"{role}@shop.vn", name=f"{role.title()} Nguyễn", password=PASSWORD,
                               role="admin" if role == "deactivated" else role)
            db.commit()
            with TestClient(app, raise_server_exceptions=False, follow_redirects=False,
                            headers={"Accept-Language": "en-US,en;q=0.9"}) as client:
                assert log_in(client, user.email).status_code == 303
                token = token_of(client)
                if role == "deactivated":
                    _deactivate(client, user.id)
                sessions[role] = (httpx.Cookies(client.cookies), token)
    return sessions


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

