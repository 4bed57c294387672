"""One ingestion writer for several server processes (SQLite).

SQLite admits one writer at a time. With several server processes each holding its own group-commit
writer, the writer of one process also competes for that process's GIL with the threads parsing and
validating requests, and holds the database's write lock while it waits. `clm serve --workers N` on
SQLite therefore starts one writer process: server processes parse and validate (in parallel, on
every core), send the prepared items over a Unix socket, and answer each request when the writer says
its items are committed. The writer process runs the same group-commit writer (`writer.BatchWriter`),
so acknowledged data is durable exactly as before.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection as mpc
import os
import pickle
import secrets
import sys
import tempfile
import threading
import time

from clm.tracking.ingest import _Item
from clm.tracking.writer import BatchWriter, WriterUnavailable

log = logging.getLogger("clm.tracking")


def _serve_connection(conn: mpc.Connection, writer: BatchWriter) -> None:
    with conn:
        while True:
            try:
                count, blob = conn.recv_bytes(16), conn.recv_bytes()
            except (EOFError, OSError):
                return
            try:
                reply = ("ok", writer.submit_encoded(blob, int(count)))
            except Exception as exc:  # the server process answers 503; the cause is logged here
                log.error("storing tracked messages failed: %s", exc.__class__.__name__)
                reply = ("error", exc.__class__.__name__)
            try:
                conn.send(reply)
            except OSError:
                return


def run_writer(database_url: str, socket_path: str, key: bytes) -> None:
    """The writer process: accept server processes' connections and store what they send."""
    from clm.db.engine import checkpoint_in_background, make_engine, make_session_factory

    sys.setswitchinterval(0.0005)  # the writer thread takes the GIL back soon after each SQLite call
    engine = make_engine(database_url)
    checkpoint_in_background(engine)
    writer = BatchWriter(make_session_factory(engine))
    import clm.tracking.ingest  # noqa: F401 (imported before the collector is tuned: start-up objects are frozen)
    from clm.lib.gc_tuning import tune_for_server

    tune_for_server()
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    with mpc.Listener(socket_path, family="AF_UNIX", authkey=key) as listener:
        while True:
            try:
                conn = listener.accept()
            except (OSError, mpc.AuthenticationError) as exc:
                log.warning("ingestion writer refused a connection: %s", exc.__class__.__name__)
                continue
            threading.Thread(target=_serve_connection, args=(conn, writer), name="clm-ingest-conn",
                             daemon=True).start()


class WriterProcess:
    """Starts the writer process and starts it again if it dies (from `clm serve`)."""

    def __init__(self, database_url: str):
        self.database_url = database_url
        directory = tempfile.mkdtemp(prefix="clm-ingest-")  # 0700: only this user can reach the socket
        self.socket_path = os.path.join(directory, "writer.sock")
        self.key = secrets.token_bytes(32)
        self._context = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._stopped = threading.Event()

    def start(self) -> None:
        self._spawn()
        threading.Thread(target=self._watch, name="clm-ingest-watch", daemon=True).start()

    def _spawn(self) -> None:
        self._process = self._context.Process(target=run_writer, name="clm-ingest-writer", daemon=True,
                                              args=(self.database_url, self.socket_path, self.key))
        self._process.start()

    def _watch(self) -> None:
        while not self._stopped.wait(1.0):
            if self._process is not None and not self._process.is_alive():
                log.error("the ingestion writer process stopped (exit code %s); starting it again",
                          self._process.exitcode)
                self._spawn()

    def stop(self) -> None:
        self._stopped.set()
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join(10)


class RemoteWriter:
    """The server process's side: `submit` as `BatchWriter.submit`, through the writer process."""

    def __init__(self, socket_path: str, key: bytes, connect_timeout: float = 10.0):
        self.socket_path = socket_path
        self.key = key
        self.connect_timeout = connect_timeout
        self._local = threading.local()

    def _connection(self) -> mpc.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            deadline = time.monotonic() + self.connect_timeout
            while True:  # the writer may be starting (or starting again)
                try:
                    conn = mpc.Client(self.socket_path, family="AF_UNIX", authkey=self.key)
                    break
                except mpc.AuthenticationError as exc:
                    raise WriterUnavailable("the ingestion writer refused this process's key") from exc
                except (OSError, EOFError) as exc:
                    if time.monotonic() > deadline:
                        raise WriterUnavailable("the ingestion writer process cannot be reached") from exc
                    time.sleep(0.05)
            self._local.conn = conn
        return conn

    def submit(self, items: list[_Item]) -> list[_Item]:
        if not items:
            return []
        conn = self._connection()
        try:
            conn.send_bytes(str(len(items)).encode())
            conn.send_bytes(pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL))
            status, payload = conn.recv()
        except (OSError, EOFError) as exc:
            # Whether the writer committed before it went away is unknown: the client's retry is safe,
            # because messages are deduplicated on their messageId.
            self._local.conn = None
            conn.close()
            raise WriterUnavailable("the ingestion writer process went away") from exc
        if status != "ok":
            raise WriterUnavailable(f"the ingestion writer could not store the messages ({payload})")
        return [items[i] for i in payload]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
