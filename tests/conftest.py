"""Shared fixtures: a `db` session on SQLite and on PostgreSQL, rolled back after every test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from clm.config import Settings
from clm.db.engine import make_engine
from clm.db.migrate import upgrade


def _database_of_this_worker(url: str | None) -> str | None:
    """With pytest-xdist (`make test` runs two workers), each worker gets a database of its own on the same
    server (`test` -> `test_gw0`, `test_gw1`), created when missing, since fixtures drop and recreate the
    schema. Subprocesses of a test inherit it through CLM_TEST_POSTGRES_URL."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    base, _, rest = url.rpartition("/")
    name, sep, query = rest.partition("?")
    mine = f"{name}_{worker}"
    admin = sa.create_engine(f"{base}/postgres{sep}{query}", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if not conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %(name)s", {"name": mine}).scalar():
                conn.exec_driver_sql(f'CREATE DATABASE "{mine}"')
    finally:
        admin.dispose()
    url = f"{base}/{mine}{sep}{query}"
    os.environ["CLM_TEST_POSTGRES_URL"] = url
    return url


POSTGRES_URL = _database_of_this_worker(os.environ.get("CLM_TEST_POSTGRES_URL"))
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgres",
        marks=pytest.mark.skipif(
            not POSTGRES_URL, reason="CLM_TEST_POSTGRES_URL is not set: PostgreSQL variant skipped"
        ),
    ),
]


def fresh_engine(backend: str, tmp_dir) -> sa.Engine:
    """An engine on an empty, fully migrated database of `backend`."""
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_dir}/clm-test.db")
    else:
        engine = make_engine(POSTGRES_URL)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    upgrade(engine)
    return engine


_ENGINES: dict[str, sa.Engine] = {}


@pytest.fixture(scope="session", params=BACKENDS)
def engine(request, tmp_path_factory) -> Iterator[sa.Engine]:
    """One migrated database per backend for the whole session. Made once and kept: pytest sets a
    parametrised session fixture up again whenever the parameter changes, which under pytest-xdist
    (files handed out one at a time) is at nearly every file, and migrating costs seconds."""
    if request.param not in _ENGINES:
        _ENGINES[request.param] = made = fresh_engine(request.param, tmp_path_factory.mktemp(request.param))
        request.session.config.add_cleanup(made.dispose)
    yield _ENGINES[request.param]


@pytest.fixture
def many_connections() -> Iterator[None]:
    """For a test that opens dozens of PostgreSQL connections at once (PostgreSQL allows 100): such tests
    take turns across pytest-xdist workers, through a lock file shared by the workers."""
    import fcntl
    import tempfile

    with open(os.path.join(tempfile.gettempdir(), "clm-tests-many-connections.lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@pytest.fixture
def connection(engine) -> Iterator[sa.Connection]:
    """A connection inside a transaction that is rolled back when the test ends."""
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        outer.rollback()


@pytest.fixture
def session_factory(connection) -> sessionmaker[Session]:
    """Sessions that join the test's transaction; their commits become savepoint releases."""
    return sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def db(session_factory) -> Iterator[Session]:
    with session_factory() as session:
        yield session


@pytest.fixture
def settings() -> Settings:
    # No warm-up thread: it would share the test's connection with the test itself.
    return Settings(database_url="sqlite://", dashboard_warm_up=False, _env_file=None)


@pytest.fixture
def app(settings, session_factory):
    from clm.web.app import create_app

    return create_app(settings, session_factory)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def write_key(db) -> str:
    from clm.access.keys import create_write_key

    _, secret = create_write_key(db, "test source")
    db.commit()
    return secret


@pytest.fixture
def api_key_for(db):
    """Make an API key with the given scopes; returns the Authorization headers."""
    from clm.access.keys import create_api_key

    def make(*scopes: str) -> dict[str, str]:
        _, secret = create_api_key(db, "test", list(scopes))
        db.commit()
        return {"Authorization": f"Bearer {secret}"}

    return make


def serve_in_thread(app):
    """Serve `app` with uvicorn on a free port in a thread; yields its base URL (for real clients)."""
    import socket
    import threading
    import time

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.02)  # waiting for the server socket, not for a result
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


@pytest.fixture
def live_server(app):
    """The app on a real port, using the test's rolled-back connection."""
    yield from serve_in_thread(app)
