"""Group commit: one writer thread stores the messages of every request waiting at that moment in a
single transaction, and answers each request once that transaction has committed.

A commit is the slowest step of ingestion (the fsync that makes data durable), and SQLite admits one
writer at a time anyway; sharing one commit among the requests that arrived together keeps every
acknowledged message durable without paying an fsync per request.
"""

from __future__ import annotations

import logging
import pickle
import queue
import threading
from concurrent.futures import Future

import sqlalchemy.exc
from sqlalchemy.orm import Session, sessionmaker

from clm.db.engine import for_writing
from clm.tracking.ingest import _Item, store

log = logging.getLogger("clm.tracking")

_STOP = object()
_RETRYABLE = {"40P01", "40001"}  # deadlock detected, serialization failure


class WriterUnavailable(Exception):
    """The ingestion writer cannot store messages now (the API answers 503; nothing was acknowledged)."""


class BatchWriter:
    def __init__(self, session_factory: sessionmaker[Session], source: str = "api", max_items: int = 5000):
        self.session_factory = session_factory
        self.source = source
        self.max_items = max_items
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, items: list[_Item]) -> list[_Item]:
        """Store `items` durably; returns those that were new (the rest were duplicates). Blocks."""
        if not items:
            return []
        return [items[i] for i in self._wait(items, len(items))]

    def submit_encoded(self, blob: bytes, count: int) -> list[int]:
        """Store a pickled list of `count` items (from a server process); returns the new ones' positions.

        The writer thread itself unpickles: a thread that did it beside the writer would take the GIL
        from it each time SQLite gives it back, once per row (the convoy effect).
        """
        return self._wait(blob, count)

    def _wait(self, items: list[_Item] | bytes, count: int) -> list[int]:
        future: Future = Future()
        self._ensure_started()
        self._queue.put((items, count, future))
        return future.result()

    def close(self, timeout: float = 10) -> None:
        with self._lock:
            if self._thread is not None:
                self._queue.put(_STOP)
                self._thread.join(timeout)
                self._thread = None

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="clm-ingest-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            jobs, count, stop = [job], job[1], False
            while count < self.max_items:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                jobs.append(more)
                count += more[1]
            self._write_group([self._decode(job) for job in jobs])
            if stop:
                return

    @staticmethod
    def _decode(job: tuple[list[_Item] | bytes, int, Future]) -> tuple[list[_Item], Future]:
        items, _, future = job
        if isinstance(items, bytes):
            items = pickle.loads(items)  # noqa: S301 (from our own server processes, over an authenticated socket)
        return items, future

    def _write_group(self, jobs: list[tuple[list[_Item], Future]]) -> None:
        try:
            fresh = self._store([it for items, _ in jobs for it in items])
        except Exception as exc:
            if len(jobs) == 1:
                log.error("storing tracked messages failed: %s", exc.__class__.__name__)
                jobs[0][1].set_exception(exc)
                return
            # Something in one request broke the shared transaction: retry each alone so that only
            # the request at fault gets the error.
            for job in jobs:
                self._write_group([job])
            return
        new = {id(it) for it in fresh}
        for items, future in jobs:
            future.set_result([i for i, it in enumerate(items) if id(it) in new])

    def _store(self, items: list[_Item]) -> list[_Item]:
        for attempt in range(4):
            session = self.session_factory()
            try:
                for_writing(session)  # on SQLite: takes the database's write lock (clm.db.engine)
                fresh = store(session, items, self.source)
                session.commit()
                return fresh
            except sqlalchemy.exc.IntegrityError:
                # Another process stored one of these messages or identities between our read and
                # write; a retry re-reads and deduplicates against it.
                session.rollback()
                if attempt == 3:
                    raise
            except sqlalchemy.exc.OperationalError as exc:
                # PostgreSQL chose this transaction as a deadlock victim (or a serialization failure):
                # nothing of it was stored, and trying again is the documented answer.
                session.rollback()
                if getattr(exc.orig, "sqlstate", None) not in _RETRYABLE or attempt == 3:
                    raise
            except Exception:
                session.rollback()
                raise
            finally:
                session.close()
        raise AssertionError("unreachable")

