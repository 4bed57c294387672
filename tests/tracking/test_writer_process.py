"""`clm serve --workers N` on SQLite: one writer process stores what every server process accepts.

SQLite only, by design: it admits one writer at a time, so server processes hand their validated
messages to one writer process. On PostgreSQL each server process writes through its own group-commit
writer (tested with the rest of the tracking API).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from clm.db.engine import make_engine
from clm.db.migrate import upgrade
from clm.lib.clock import utcnow
from clm.tracking.ingest import prepare
from clm.tracking.writer import WriterUnavailable
from clm.tracking.writer_process import RemoteWriter, WriterProcess

ROOT = Path(__file__).resolve().parents[2]


def _items(prefix: str, start: int, stop: int):
    raws = [{"type": "track", "userId": f"user-{i % 3}", "event": "Article Read", "messageId": f"{prefix}-{i}",
             "properties": {"i": i, "name": "Áo dài"}} for i in range(start, stop)]
    items, rejected = prepare(raws, received_at=utcnow())
    assert not rejected
    return items


def _count(url: str, sql: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(sql).scalar_one()
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path):
    url = f"sqlite:///{tmp_path}/clm.db"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def writer(sqlite_url):
    process = WriterProcess(sqlite_url)
    process.start()
    yield process
    process.stop()


def test_server_processes_store_through_one_writer_and_a_repeat_is_a_duplicate(sqlite_url, writer):
    first_server = RemoteWriter(writer.socket_path, writer.key)
    second_server = RemoteWriter(writer.socket_path, writer.key)

    fresh = first_server.submit(_items("m", 0, 50))
    again = second_server.submit(_items("m", 0, 60))  # the first 50 were stored by the other process

    assert len(fresh) == 50
    assert [it.msg.messageId for it in again] == [f"m-{i}" for i in range(50, 60)]
    assert _count(sqlite_url, "SELECT count(*) FROM events") == 60
    assert _count(sqlite_url, "SELECT count(*) FROM customers") == 3
    props = _count(sqlite_url, "SELECT properties FROM events WHERE message_id = 'm-7'")
    assert json.loads(props) == {"i": 7, "name": "Áo dài"}


def test_a_process_without_the_key_is_refused_and_stores_nothing(sqlite_url, writer):
    stranger = RemoteWriter(writer.socket_path, b"not the key" * 3, connect_timeout=2)
    with pytest.raises(WriterUnavailable):
        stranger.submit(_items("x", 0, 5))
    assert _count(sqlite_url, "SELECT count(*) FROM events") == 0


def test_a_killed_writer_is_started_again_and_nothing_acknowledged_is_lost(sqlite_url, writer):
    server = RemoteWriter(writer.socket_path, writer.key)
    assert len(server.submit(_items("a", 0, 20))) == 20

    os.kill(writer._process.pid, signal.SIGKILL)
    writer._process.join(5)
    with pytest.raises(WriterUnavailable):  # the request in flight is answered 503, not acknowledged
        server.submit(_items("b", 0, 20))

    stored = None
    for _ in range(100):  # the client retries, as Segment's libraries do; the watcher restarts the writer
        try:
            stored = server.submit(_items("b", 0, 20))
            break
        except WriterUnavailable:
            time.sleep(0.1)
    assert stored is not None
    assert _count(sqlite_url, "SELECT count(*) FROM events") == 40
    assert _count(sqlite_url, "SELECT count(DISTINCT message_id) FROM events") == 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_clm_serve_with_two_server_processes_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path}/serve.db"
    env = {**os.environ, "CLM_DATABASE_URL": url, "CLM_LOG_LEVEL": "warning", "PYTHONPATH": str(ROOT)}
    env.pop("CLM_INGEST_WRITER_SOCKET", None)
    env.pop("CLM_INGEST_WRITER_SECRET", None)
    created = subprocess.run([sys.executable, "-m", "clm.cli", "write-keys", "create", "--name", "web"], env=env,
                             check=True, capture_output=True, text=True).stdout
    key = created.split("\n")[1].strip()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "clm.cli", "serve", "--port", str(port), "--workers", "2",
                               "--no-worker"], env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(base + "/healthz", timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        batch = {"batch": [{"type": "track", "userId": f"u{i % 4}", "event": "Page Viewed", "messageId": f"s-{i}"}
                           for i in range(30)]}
        with httpx.Client(base_url=base, auth=(key, ""), timeout=30) as client:
            answers = [client.post("/v1/batch", json=batch).json() for _ in range(3)]  # connections may reach
            # either server process: each answer comes from the one writer
    finally:
        server.terminate()
        server.wait(20)
    assert answers[0]["accepted"] == 30
    assert [a["duplicates"] for a in answers[1:]] == [30, 30]
    assert _count(url, "SELECT count(*) FROM events") == 30
    assert _count(url, "SELECT count(*) FROM customers") == 4


def test_a_deadlock_victim_is_stored_on_the_retry(sqlite_url, monkeypatch):
    """PostgreSQL may pick a writer's transaction as a deadlock victim (another writer or the worker
    locked the same customers): the group is written again, not answered 503."""
    import sqlalchemy.exc

    from clm.db.engine import make_session_factory
    from clm.tracking import writer as writer_module

    class Deadlock(Exception):
        sqlstate = "40P01"

    real_store = writer_module.store
    calls = []

    def store_once_deadlocked(session, items, source):
        calls.append(len(items))
        if len(calls) == 1:
            raise sqlalchemy.exc.OperationalError("UPDATE customers ...", {}, Deadlock("deadlock detected"))
        return real_store(session, items, source)

    monkeypatch.setattr(writer_module, "store", store_once_deadlocked)
    engine = make_engine(sqlite_url)
    batch = writer_module.BatchWriter(make_session_factory(engine))
    try:
        fresh = batch.submit(_items("d", 0, 10))
    finally:
        batch.close()
        engine.dispose()
    assert len(fresh) == 10 and calls == [10, 10]
    assert _count(sqlite_url, "SELECT count(*) FROM events") == 10
