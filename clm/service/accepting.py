"""Accepting customers' messages in groups: `POST /api/v1/service/messages` at a thousand requests a second.

What such a request needs is small (the key checked, the message stored once and durably, answered), so
what it cost was mostly overhead paid per request: a transaction for the key check, another for the
INSERT, a thread hop, an ORM session, the framework's routing and serialisation (3.3 ms of server CPU).
Here the requests of a server process share that work (clm.db.group_commit): the messages arriving while
one group is written are written together, by `Writer`, as the next group:

1. the API keys of the group in one SELECT (unknown or revoked: 401, without `service:write`: 403, for
   that request only); a key's `last_used_at` set, at most once a minute, as `require_scope` does;
2. the admitted messages in one multi-row INSERT ... ON CONFLICT (source, external_id) DO NOTHING
   RETURNING, in arrival order (ids are the worker's filing order), committed;
3. one SELECT for the resends (an external_id stored before: their id and state), when there are any;
4. then every request of the group is answered: 202 for a new message, 200 for a resend. The same id twice
   in one group is stored once, and only its first request is told `created`.

On PostgreSQL a server's writer runs these in autocommit: the INSERT is the group's one write, so BEGIN and
COMMIT would only add two round trips (a key's `last_used_at` is a note apart; a key revoked between the
SELECT and the INSERT, microseconds apart, is refused from the next group on, as a key checked in a
reader's transaction before a writer's always was). On SQLite the group is one writer's transaction
(BEGIN IMMEDIATE). Keys are not cached.

If a group's write fails, each of its requests is answered the error (503 when the database is down):
none of them was stored, and no other group is affected. A message the database refuses (a NUL character
PostgreSQL cannot store in JSON) fails alone: its group is written again one message at a time. A
deadlock with another server process's group is retried, in a lock order every process shares.

How the requests reach the group commit without the framework's per-request work: clm.service.accepting_http.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
import sqlalchemy as sa
from psycopg.rows import namedtuple_row
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from clm.access.models import ApiKey
from clm.db.engine import _json, for_writing
from clm.lib.clock import utcnow
from clm.service.models import Inbound

log = logging.getLogger("clm.service")
SCOPE = "service:write"
SOURCE = "api"
MAX_GROUP = 500
DEADLOCK_RETRIES = 5  # each retry in external_id order: only a first attempt in arrival order can deadlock it
KEY_TOUCH_SECONDS = 60  # last_used_at is written at most once a minute per key (as require_scope does)
_inbound = Inbound.__table__
_keys = ApiKey.__table__


class Incoming(NamedTuple):
    key_digest: str  # SHA-256 of the Bearer key (clm.access.keys.digest)
    external_id: str | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Accepted:
    id: int
    created: bool
    state: str = "queued"  # queued, processed or failed
    ticket_id: int | None = None
    message_id: int | None = None
    error: str | None = None

    def answer(self) -> tuple[int, dict[str, Any]]:
        """The HTTP status and body (clm.service.api.AcceptedOut, its fields in order)."""
        return (202 if self.created else 200), {"created": self.created, "id": self.id, "state": self.state,
                                                "ticket_id": self.ticket_id, "message_id": self.message_id,
                                                "error": self.error}


class _Core:
    """The group's statements in SQLAlchemy Core, for any database (SQLite)."""

    _inserts = {name: insert(_inbound).on_conflict_do_nothing(index_elements=["source", "external_id"])
                .returning(_inbound.c.external_id, _inbound.c.id)
                for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))}
    _resent = (sa.select(_inbound.c.external_id, _inbound.c.id, _inbound.c.processed_at, _inbound.c.error,
                         _inbound.c.ticket_id, _inbound.c.message_id)
               .where(_inbound.c.source == sa.bindparam("source"),
                      _inbound.c.external_id.in_(sa.bindparam("external_ids", expanding=True))))
    _select_keys = (sa.select(_keys.c.id, _keys.c.key_hash, _keys.c.scopes, _keys.c.last_used_at)
                    .where(_keys.c.key_hash.in_(sa.bindparam("digests", expanding=True)),
                           _keys.c.revoked_at.is_(None)))
    _touch = (sa.update(_keys).where(_keys.c.id.in_(sa.bindparam("key_ids", expanding=True)))
              .values(last_used_at=sa.bindparam("now")))

    def __init__(self, db: Session | sa.Connection, dialect: str):
        self.db, self.dialect = db, dialect

    def keys(self, digests: list[str]) -> list:
        """(id, key_hash, scopes, last_used_at) of the keys with these digests that are not revoked."""
        return self.db.execute(self._select_keys, {"digests": digests}).all()

    def touch(self, key_ids: list[int], now: datetime) -> None:
        self.db.execute(self._touch, {"key_ids": key_ids, "now": now})

    def insert(self, source: str, rows: list[tuple[str, dict]], now: datetime) -> dict[str, int]:
        """One multi-row INSERT (SQLAlchemy's "insertmanyvalues"); the external_ids stored, with their ids."""
        return dict(self.db.execute(self._inserts[self.dialect], [
            {"source": source, "external_id": e, "payload": p, "received_at": now} for e, p in rows]).all())

    def resent(self, source: str, external_ids: list[str]) -> list:
        """(external_id, id, processed_at, error, ticket_id, message_id) of these stored messages."""
        return self.db.execute(self._resent, {"source": source, "external_ids": external_ids}).all()


class _Postgres:
    """The same statements on PostgreSQL through the driver's cursor: fixed texts (psycopg
    prepares them after a few runs, so PostgreSQL neither parses nor plans them again) and none of
    SQLAlchemy's per-statement work, which was half of a small group's CPU. Errors are raised as
    SQLAlchemy's (OperationalError, DataError...), as from any other statement."""

    _keys = "SELECT id, key_hash, scopes, last_used_at FROM api_keys WHERE key_hash = ANY(%s) AND revoked_at IS NULL"
    _touch = "UPDATE api_keys SET last_used_at = %s WHERE id = ANY(%s)"
    _insert = ("INSERT INTO service_inbound (source, external_id, payload, received_at) "
               "SELECT %s, m.pair->>0, m.pair->1, %s FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS m(pair, n) "
               "ORDER BY m.n ON CONFLICT (source, external_id) DO NOTHING RETURNING external_id, id")
    _resent = ("SELECT external_id, id, processed_at, error, ticket_id, message_id FROM service_inbound "
               "WHERE source = %s AND external_id = ANY(%s)")

    def __init__(self, db: Session | sa.Connection):
        connection = db.connection() if isinstance(db, Session) else db
        self.cursor = connection.connection.driver_connection.cursor(row_factory=namedtuple_row)

    def _run(self, sql: str, params: tuple, prepare: bool | None = None) -> list:
        try:
            self.cursor.execute(sql, params, prepare=prepare)
            return self.cursor.fetchall() if self.cursor.description else []
        except psycopg.Error as exc:
            raise sa.exc.DBAPIError.instance(sql, params, exc, psycopg.Error) from None

    def keys(self, digests: list[str]) -> list:
        return self._run(self._keys, (digests,))

    def touch(self, key_ids: list[int], now: datetime) -> None:
        self._run(self._touch, (now, key_ids))

    def insert(self, source: str, rows: list[tuple[str, dict]], now: datetime) -> dict[str, int]:
        # The rows as one JSON document [[external_id, payload], ...]: one parameter however many rows
        # (the driver's text arrays escape each element with a regular expression, slow for JSON).
        return dict(self._run(self._insert, (source, now, _json(rows))))

    def resent(self, source: str, external_ids: list[str]) -> list:
        # Never prepared: a generic plan made while service_inbound was nearly empty scans the whole table
        # (seen: 6.5 ms a lookup by the end of a burst), where the unique index finds a few rows in 0.1 ms.
        return self._run(self._resent, (source, external_ids), prepare=False)


def _statements(db: Session | sa.Connection) -> _Core | _Postgres:
    dialect = (db.get_bind() if isinstance(db, Session) else db).dialect.name
    return _Postgres(db) if dialect == "postgresql" else _Core(db, dialect)


def accept_many(db: Session | sa.Connection, source: str, messages: list[tuple[str | None, dict[str, Any]]],
                now: datetime | None = None, statements: _Core | _Postgres | None = None) -> list[Accepted]:
    """Store messages (external_id, payload) in one INSERT, in order, each (source, external_id) once; the
    caller commits, then answers. One Accepted per message: created is False for a resend of an id stored
    before and for the second of one id sent twice here."""
    now = now or utcnow()
    statements = statements or _statements(db)
    ids = [external_id or f"noid:{uuid.uuid4().hex}" for external_id, _ in messages]
    first: dict[str, int] = {}
    for n, external_id in enumerate(ids):
        first.setdefault(external_id, n)
    new = statements.insert(source, [(e, messages[n][1]) for e, n in first.items()], now)
    old = {}
    if len(new) < len(first):
        old = {row.external_id: row for row in statements.resent(source, [e for e in first if e not in new])}
    out = []
    for n, external_id in enumerate(ids):
        if external_id in new:
            out.append(Accepted(new[external_id], created=first[external_id] == n))
            continue
        row = old[external_id]
        state = "queued" if row.processed_at is None else "failed" if row.error else "processed"
        out.append(Accepted(row.id, False, state, row.ticket_id, row.message_id, row.error))
    return out


class Refused(Exception):  # noqa: N818 - a refusal, as the HTTP side answers it
    """A message refused for its key: the HTTP side answers `status` with `code` and `message` (the
    answers of require_scope in clm.web.deps)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def _refusal(key, scope: str) -> Refused | None:
    """For a key row of this group (None: unknown or revoked)."""
    if key is None:
        return Refused(401, "unauthorized", "the API key is unknown or revoked", {"WWW-Authenticate": "Bearer"})
    if scope not in key.scopes and "admin" not in key.scopes:
        return Refused(403, "forbidden", f"this API key lacks the {scope!r} scope")
    return None


def store(db: Session | sa.Connection, group: list[Incoming], scope: str = SCOPE) -> list:
    """One group in the caller's writer's transaction (it commits): the keys checked, the admitted messages
    stored. Returns per message an Accepted or the Refused refusing it."""
    now = utcnow()
    statements = _statements(db)
    keys = {k.key_hash: k for k in statements.keys(list({m.key_digest for m in group}))}
    outcomes: list = [_refusal(keys.get(m.key_digest), scope) for m in group]
    admitted = [n for n, refusal in enumerate(outcomes) if refusal is None]
    touched = {key.id for key in (keys[group[n].key_digest] for n in admitted)
               if key.last_used_at is None or (now - key.last_used_at).total_seconds() > KEY_TOUCH_SECONDS}
    if touched:
        statements.touch(sorted(touched), now)
    if admitted:
        stored = accept_many(db, SOURCE, [(group[n].external_id, group[n].payload) for n in admitted], now,
                             statements)
        for n, accepted in zip(admitted, stored, strict=True):
            outcomes[n] = accepted
    return outcomes


class Writer:
    """The group commit's flush: `store` on a connection of its own, committed. A server keeps that
    connection from group to group (no pool checkout and ping per group); at a group that finds it idle
    for more than `IDLE_SECONDS` (the server or a firewall may have closed it meanwhile), or after a
    failure, it is given back and a fresh one taken from the pool. A session factory bound to a connection
    (the tests') is used as is: each group in a savepoint of its transaction. One group at a time (the
    group commit runs one flush at a time per event loop; the lock covers an app served on several)."""

    IDLE_SECONDS = 10.0

    def __init__(self, session_factory: sessionmaker[Session]):
        self.session_factory = session_factory
        bind = session_factory.kw.get("bind")
        self.engine = bind if isinstance(bind, sa.Engine) else None
        self.connection: sa.Connection | None = None
        self.used = 0.0
        self.lock = threading.Lock()

    def __call__(self, group: list[Incoming]) -> list:
        """One group; a group the database refuses is stored message by message, so that one bad message
        fails alone."""
        with self.lock:
            return self._flush(group)

    def _flush(self, group: list[Incoming]) -> list:
        try:
            return self.write_retrying(group)
        except (sa.exc.OperationalError, sa.exc.InterfaceError):
            raise  # the database is down: every request of the group is told so (503)
        except sa.exc.DBAPIError:
            if len(group) == 1:
                raise
            log.warning("a group of %d messages was refused; storing them one at a time", len(group))
        outcomes: list = []
        for message in group:
            try:
                outcomes += self.write_retrying([message])
            except Exception as exc:  # that message's own failure: its request is answered the error
                outcomes.append(exc)
        return outcomes

    def write_retrying(self, group: list[Incoming]) -> list:
        """`write`, in arrival order; after a deadlock (two server processes' groups inserting the same ids
        in opposite orders at once) again in the order of the external_ids, which is one order for every
        server process, so that such retries cannot deadlock with each other."""
        order = list(range(len(group)))
        for attempt in range(DEADLOCK_RETRIES + 1):
            try:
                outcomes = self.write([group[n] for n in order])
                break
            except sa.exc.OperationalError as exc:
                if getattr(exc.orig, "sqlstate", None) != "40P01" or attempt == DEADLOCK_RETRIES:
                    raise
                log.info("a group of %d messages met a deadlock; retrying it in external_id order", len(group))
                order.sort(key=lambda n: group[n].external_id or "")  # stable: a repeated id's first stays first
        answers: list = [None] * len(group)
        for n, outcome in zip(order, outcomes, strict=True):
            answers[n] = outcome
        return answers

    def write(self, group: list[Incoming]) -> list:
        if self.engine is None:
            with self.session_factory() as session:
                for_writing(session)
                outcomes = store(session, group)
                session.commit()
            return outcomes
        if self.connection is not None and time.monotonic() - self.used > self.IDLE_SECONDS:
            self.close()
        if self.connection is None:
            connection = self.engine.connect()
            # PostgreSQL: each statement commits itself. The INSERT is the group's one write (a key's
            # last_used_at is a note apart), so its statements need no BEGIN and COMMIT: two round trips
            # in all (keys, INSERT) instead of four. SQLite: one writer's transaction (BEGIN IMMEDIATE).
            self.connection = connection.execution_options(
                **({"isolation_level": "AUTOCOMMIT"} if connection.dialect.name == "postgresql" else
                   {"clm_writing": True}))
        try:
            with self.connection.begin():
                outcomes = store(self.connection, group)
        except BaseException:
            self.close()
            raise
        self.used = time.monotonic()
        return outcomes

    def close(self) -> None:
        if self.connection is not None:
            connection, self.connection = self.connection, None
            try:
                connection.close()
            except Exception:  # a broken connection: the pool discards it
                log.debug("closing the accepting connection failed", exc_info=True)
