"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers work while one writer commits; synchronous=FULL makes each commit durable
    # before the API acknowledges it; busy_timeout makes a second writer wait instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get("clm_writing") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def for_writing(session: Session) -> Session:
    """Mark `session`'s transaction as a writer before its first statement (SQLite: BEGIN IMMEDIATE)."""
    if session.get_transaction() is None:  # later is too late: the transaction has begun already
        session.connection(execution_options={"clm_writing": True})
    return session


def _json(value) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str, **kwargs) -> sa.Engine:
    """Create an engine for `url`, configured the way clm needs each database."""
    kwargs.setdefault("json_serializer", _json)
    kwargs.setdefault("json_deserializer", orjson.loads)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False})
        engine = sa.create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling is off (below); we emit BEGIN ourselves. Writers ask for
        # BEGIN IMMEDIATE (see `for_writing`) so that two writers queue on busy_timeout instead of one
        # failing with "database is locked" when its read lock cannot be upgraded.
        event.listen(engine, "begin", _sqlite_begin)

        @event.listens_for(engine, "connect")
        def _no_pysqlite_begin(dbapi_connection, _record):
            dbapi_connection.isolation_level = None

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


def make_session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)
