"""One transaction per test module and backend, one savepoint per test: for the access matrices.

The access matrices run thousands of one-request tests, and building the app and one of everything for
each case cost far more than the request (about a second a case on this project's 2-core machine). A
module that imports these fixtures gets, per backend:

- `module_connection`: a connection whose transaction stays open for the whole module, rolled back at
  its end (nothing reaches the database's committed state, as with tests/conftest.py's `connection`);
- `module_db`: a session on it, for module-scoped fixtures that build what every case reads (users, keys,
  one of everything); its commits are savepoint releases inside that transaction;
- `connection` (autouse here, overriding tests/conftest.py's): a savepoint around each test, rolled back
  when the test ends. Whatever a case changes (a successful POST or DELETE, a revoked key, a login) is
  undone before the next case, so every case still starts from the same data;
- `settings`, `app` and `client`: the real app, built once per module and backend on that connection.

Import them by name into the test module (`from tests.module_transaction import app, client, ...`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from clm.config import Settings


@pytest.fixture(scope="module")
def module_connection(engine) -> Iterator[sa.Connection]:
    with engine.connect() as conn:
        outer = conn.begin()
        try:
            yield conn
        finally:
            outer.rollback()


@pytest.fixture(scope="module")
def module_session_factory(module_connection) -> sessionmaker[Session]:
    return sessionmaker(bind=module_connection, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture(scope="module")
def module_db(module_session_factory) -> Iterator[Session]:
    with module_session_factory() as session:
        yield session


@pytest.fixture(autouse=True)
def connection(module_connection) -> Iterator[sa.Connection]:
    """The module's connection, inside a savepoint rolled back when the test ends."""
    savepoint = module_connection.begin_nested()
    try:
        yield module_connection
    finally:
        if savepoint.is_active:
            savepoint.rollback()


@pytest.fixture(scope="module")
def settings() -> Settings:
    # No warm-up thread: it would share the module's connection with the tests.
    return Settings(database_url="sqlite://", dashboard_warm_up=False, _env_file=None)


@pytest.fixture(scope="module")
def app(settings, module_session_factory):
    from clm.web.app import create_app

    return create_app(settings, module_session_factory)


@pytest.fixture(scope="module")
def client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
