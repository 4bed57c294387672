"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
import weakref

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("clm.db")
# A writer's commit that finds the write-ahead log past this many pages copies it into the database
# itself (SQLite's default is 1,000). Servers checkpoint in the background (below), so a commit only
# pays for it when the background checkpoints cannot keep up.
_AUTOCHECKPOINT_PAGES = 10_000
_CACHE_KIB = 64 * 1024
_MMAP_BYTES = 256 * 1024 * 1024
_CHECKPOINT_EVERY = 0.25  # seconds
_CHECKPOINT_FROM_BYTES = 1 << 20  # WAL size worth a checkpoint


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers work while one writer commits; synchronous=FULL makes each commit durable
    # before the API acknowledges it; busy_timeout makes a second writer wait instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
    # SQLite's default page cache is 2 MB: the indexes a writer touches (events, identities, rollups) soon
    # outgrow it and every insert then re-reads pages through the OS. 64 MB per connection, allocated as
    # used, and reads through a memory map instead of copies.
    cursor.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
    cursor.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
    cursor.close()


def _sqlite_begin(conn) -> None:
    if not conn.get_execution_options().get("clm_writing"):
        conn.exec_driver_sql("BEGIN DEFERRED")
        return
    lock_path = conn.engine.url.database + ".write-lock" if _is_file(conn.engine.url) else None
    raw = conn.connection.dbapi_connection
    if lock_path is not None:
        _WRITE_LOCKS[id(raw)] = _take_write_lock(lock_path)
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        _release_write_lock(raw)
        raise


# Writers of one SQLite database take turns through a lock file before BEGIN IMMEDIATE. SQLite would
# serialise them anyway, but a writer that finds its write lock taken polls with sleeps that grow to
# 100 ms (busy_timeout), so under load a waiting writer sleeps long after the lock is free. Here a
# waiter is woken within a millisecond or two. After `_LOCK_WAIT` seconds a writer stops waiting for the
# file and leaves the rest to SQLite, so a thread can never wait on itself for ever.
_LOCK_WAIT = 30.0
_WRITE_LOCKS: dict[int, int | None] = {}  # id(sqlite3 connection) -> descriptor holding the lock


def _is_file(url) -> bool:
    return url.get_backend_name() == "sqlite" and bool(url.database) and url.database != ":memory:" \
        and not url.database.startswith("file:")


def _take_write_lock(path: str) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + _LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.001)


def _release_write_lock(dbapi_connection) -> None:
    raw = getattr(dbapi_connection, "dbapi_connection", dbapi_connection)  # the pool's proxy, or the connection
    fd = _WRITE_LOCKS.pop(id(raw), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the lock


def _releasing(method):
    def wrapper(dbapi_connection):
        try:
            method(dbapi_connection)
        finally:
            _release_write_lock(dbapi_connection)

    return wrapper


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
        # 512 prepared statements kept per connection (the driver's default is 128): the ingestion writer
        # runs a few dozen fixed statements, and IN lists of every length would otherwise evict them.
        kwargs.setdefault("connect_args", {"check_same_thread": False, "cached_statements": 512})
        engine = sa.create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling is off (below); we emit BEGIN ourselves. Writers ask for
        # BEGIN IMMEDIATE (see `for_writing`) so that two writers queue on busy_timeout instead of one
        # failing with "database is locked" when its read lock cannot be upgraded.
        event.listen(engine, "begin", _sqlite_begin)
        # The write lock (above) is held until the transaction ends, whichever way it ends.
        engine.dialect.do_commit = _releasing(engine.dialect.do_commit)
        engine.dialect.do_rollback = _releasing(engine.dialect.do_rollback)
        event.listen(engine, "close", lambda dbapi_connection, _record: _release_write_lock(dbapi_connection))

        @event.listens_for(engine, "connect")
        def _no_pysqlite_begin(dbapi_connection, _record):
            dbapi_connection.isolation_level = None

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


def make_session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def checkpoint_in_background(engine: sa.Engine) -> threading.Thread | None:
    """Copy the SQLite write-ahead log into the database from a thread of its own.

    A checkpoint is work (reading the log, writing and syncing the database file) that SQLite otherwise
    does inside whichever commit pushes the log past its threshold: that commit, and every writer
    queued behind it, waits. A PASSIVE checkpoint runs beside writers and readers without blocking them,
    and the sqlite3 module releases the GIL while it runs, so it uses another core. Servers call this
    once per engine; other processes keep SQLite's own checkpoints.
    """
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    path = url.database
    wal = path + "-wal"
    engine_ref = weakref.ref(engine)

    def run() -> None:
        conn = None
        try:
            while engine_ref() is not None:
                time.sleep(_CHECKPOINT_EVERY)
                try:
                    if os.path.getsize(wal) < _CHECKPOINT_FROM_BYTES:
                        continue
                    if conn is None:
                        conn = sqlite3.connect(path, timeout=0, check_same_thread=False)
                        conn.execute("PRAGMA busy_timeout=0")
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except FileNotFoundError:
                    continue
                except sqlite3.Error as exc:  # busy, or the file went away: try again later
                    log.debug("background checkpoint skipped: %s", exc)
        finally:
            if conn is not None:
                conn.close()

    thread = threading.Thread(target=run, name="clm-sqlite-checkpoint", daemon=True)
    thread.start()
    return thread
