"""Customers' messages accepted in groups (clm.service.accepting, accepting_http, clm.db.group_commit):
requests arriving together share one key check and one INSERT, committed, and each is answered after it,
exactly as one alone would be."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from clm.access.keys import create_api_key, revoke
from clm.access.models import ApiKey
from clm.db.engine import make_session_factory
from clm.db.group_commit import GroupCommit
from clm.lib.clock import utcnow
from clm.service import accepting, accepting_http
from clm.service.accepting import Incoming, Writer
from clm.service.accepting_http import AcceptMessages
from clm.service.api import AcceptedOut
from clm.service.models import Inbound
from tests.service.test_concurrency import run_at_once

PATH = "/api/v1/service/messages"


def _message(external_id: str | None, **more) -> dict:
    return {"inbox_id": 1, "customer_id": 1, "body": f"Tin {external_id}", "external_id": external_id, **more}


def _digest(headers: dict[str, str]) -> str:
    return hashlib.sha256(headers["Authorization"].split(" ", 1)[1].encode()).hexdigest()


def _stored(db, *where) -> int:
    return db.scalar(sa.select(sa.func.count()).select_from(Inbound).where(Inbound.source == "api", *where))


async def _post_all(base: str, requests: list[tuple[dict, dict]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=len(requests))
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        return await asyncio.gather(*(http.post(PATH, json=body, headers=headers) for body, headers in requests))


@pytest.fixture
def groups(monkeypatch) -> list[int]:
    """The size of every group written, in order."""
    sizes: list[int] = []
    store = accepting.store

    def counting(db, group, *args, **kwargs):
        sizes.append(len(group))
        return store(db, group, *args, **kwargs)

    monkeypatch.setattr(accepting, "store", counting)
    return sizes


@pytest.fixture
def served(engine):
    """The app on a real port and its own connections (as `clm serve`: each request's session, the group
    commit's writer its own), so what it stores is committed for real: deleted at the end. Yields the base
    URL, a session factory, and a function making a committed key (its Authorization headers)."""
    from clm.config import Settings
    from clm.web.app import create_app
    from tests.conftest import serve_in_thread

    factory = make_session_factory(engine)
    app = create_app(Settings(dashboard_warm_up=False, _env_file=None), factory)

    def key(*scopes: str) -> dict[str, str]:
        with factory() as session:
            _, secret = create_api_key(session, "accept-batch-test", list(scopes))
            session.commit()
        return {"Authorization": f"Bearer {secret}"}

    try:
        for base in serve_in_thread(app):
            yield base, factory, key
    finally:
        group = getattr(app.state, "service_accepting", None)
        if group is not None:
            group.flush.close()  # the Writer's connection, back to the pool
        with engine.begin() as conn:
            conn.execute(sa.delete(Inbound).where(Inbound.external_id.like("zalo:%")))
            conn.execute(sa.delete(ApiKey).where(ApiKey.name == "accept-batch-test"))


def test_two_hundred_requests_at_once_are_each_stored_once_and_told_so_once(served, groups):
    """150 messages, 50 of them sent twice at the same instant: every request 2xx, each message stored once,
    exactly one of its requests told `created`, in far fewer transactions than requests."""
    base, factory, key = served
    headers = key("service:write")
    requests = [(_message(f"zalo:many:{n}"), headers) for n in range(150)]
    requests += [(_message(f"zalo:many:{n}"), headers) for n in range(0, 150, 3)]
    answers = asyncio.run(_post_all(base, requests))

    assert {r.status_code for r in answers} <= {200, 202}
    by_id: dict[str, list[dict]] = {}
    for (body, _), answer in zip(requests, answers, strict=True):
        by_id.setdefault(body["external_id"], []).append(answer.json())
        assert answer.status_code == (202 if answer.json()["created"] else 200)
    assert len(by_id) == 150
    for external_id, told in by_id.items():
        assert sum(t["created"] for t in told) == 1, external_id
        assert len({t["id"] for t in told}) == 1 and {t["state"] for t in told} == {"queued"}
    with factory() as session:
        assert _stored(session, Inbound.external_id.like("zalo:many:%")) == 150
    assert sum(groups) == 200 and len(groups) < 200  # requests shared transactions


def test_a_bad_key_a_missing_scope_and_a_bad_body_in_a_crowd_do_not_affect_the_others(served):
    base, factory, key = served
    good, read_only = key("service:write"), key("service:read")
    unknown = {"Authorization": "Bearer clm_not-a-real-key"}
    requests = []
    for n in range(40):
        requests.append((_message(f"zalo:crowd:{n}"), good))
        requests.append((_message(f"zalo:crowd:unknown:{n}"), unknown))
        requests.append((_message(f"zalo:crowd:read:{n}"), read_only))
        requests.append(({**_message(f"zalo:crowd:bad:{n}"), "customer_id": "abc"}, good))
    answers = asyncio.run(_post_all(base, requests))

    for n, answer in enumerate(answers):
        kind = n % 4
        if kind == 0:
            assert answer.status_code == 202 and answer.json()["created"] is True
        elif kind == 1:
            assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
            assert answer.json() == {"error": {"code": "unauthorized", "message": "the API key is unknown or revoked",
                                               "field": None}}
        elif kind == 2:
            assert answer.status_code == 403
            assert answer.json()["error"]["code"] == "forbidden" and "service:write" in answer.json()["error"]["message"]
        else:
            assert answer.status_code == 422 and answer.json()["error"]["field"] == "customer_id"
    with factory() as session:
        assert _stored(session, Inbound.external_id.like("zalo:crowd:%")) == 40
        assert _stored(session, Inbound.external_id.like("zalo:crowd:%:%")) == 0


def test_a_group_checks_each_key_stores_an_id_sent_twice_once_and_answers_resends_with_their_state(db, api_key_for,
                                                                                                session_factory):
    write, admin, read = api_key_for("service:write"), api_key_for("admin"), api_key_for("service:read")
    revoked = api_key_for("service:write")
    revoke(db, ApiKey, db.scalar(sa.select(sa.func.max(ApiKey.id))))
    db.commit()
    writer = Writer(session_factory)
    [before] = writer([Incoming(_digest(write), "zalo:g:old", _message("zalo:g:old"))])
    db.execute(sa.update(Inbound).where(Inbound.id == before.id).values(processed_at=utcnow(), ticket_id=7,
                                                                         message_id=9))
    db.commit()

    outcomes = writer([
        Incoming(_digest(write), "zalo:g:1", _message("zalo:g:1")),
        Incoming(_digest(read), "zalo:g:2", _message("zalo:g:2")),
        Incoming(_digest(admin), "zalo:g:1", _message("zalo:g:1")),  # the same id again in the group
        Incoming(_digest(revoked), "zalo:g:3", _message("zalo:g:3")),
        Incoming(_digest(write), "zalo:g:old", _message("zalo:g:old")),  # stored before, filed since
        Incoming(_digest(write), None, _message(None)),  # no external_id: always new
    ])
    first, refused, again, gone, old, anonymous = outcomes
    assert first.answer()[0] == 202 and first.created
    assert (again.id, again.created, again.state) == (first.id, False, "queued") and again.answer()[0] == 200
    assert (refused.status, refused.code) == (403, "forbidden")
    assert (gone.status, gone.code, gone.headers) == (401, "unauthorized", {"WWW-Authenticate": "Bearer"})
    assert old.answer() == (200, {"created": False, "id": before.id, "state": "processed", "ticket_id": 7,
                                  "message_id": 9, "error": None})
    assert anonymous.created and anonymous.id not in (first.id, before.id)
    assert _stored(db) == 3
    assert [e for (e,) in db.execute(sa.select(Inbound.external_id).where(Inbound.id > before.id)
                                     .order_by(Inbound.id))][0] == "zalo:g:1"  # in arrival order


def test_a_key_is_marked_used_at_most_once_a_minute(db, api_key_for, session_factory):
    headers = api_key_for("service:write")
    key = db.scalar(sa.select(ApiKey).where(ApiKey.key_hash == _digest(headers)))
    assert key.last_used_at is None
    writer = Writer(session_factory)
    writer([Incoming(_digest(headers), "zalo:used:1", _message("zalo:used:1"))])
    db.refresh(key)
    first_use = key.last_used_at
    assert first_use is not None
    writer([Incoming(_digest(headers), "zalo:used:2", _message("zalo:used:2"))])
    db.refresh(key)
    assert key.last_used_at == first_use
    key.last_used_at = first_use - timedelta(minutes=2)
    db.commit()
    writer([Incoming(_digest(headers), "zalo:used:3", _message("zalo:used:3"))])
    db.refresh(key)
    assert key.last_used_at > first_use


def test_a_revoked_key_is_refused_from_the_next_request_on(client, db, api_key_for):
    headers = api_key_for("service:write")
    assert client.post(PATH, json=_message("zalo:rev:1"), headers=headers).status_code == 202
    revoke(db, ApiKey, db.scalar(sa.select(ApiKey.id).where(ApiKey.key_hash == _digest(headers))))
    db.commit()
    assert client.post(PATH, json=_message("zalo:rev:2"), headers=headers).status_code == 401


@pytest.mark.parametrize("own_connection", [False, True], ids=["test transaction", "own connection"])
def test_a_message_the_database_refuses_fails_alone(engine, session_factory, own_connection):
    """On its own connection (as a server: PostgreSQL statements in autocommit) or in the test's transaction."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite stores what PostgreSQL refuses here (a NUL character in JSON)")
    factory = make_session_factory(engine) if own_connection else session_factory
    with factory() as session:
        _, secret = create_api_key(session, "accept-batch-test", ["service:write"])
        session.commit()
    digest = hashlib.sha256(secret.encode()).hexdigest()
    writer = Writer(factory)
    try:
        outcomes = writer([
            Incoming(digest, "zalo:nul:1", _message("zalo:nul:1")),
            Incoming(digest, "zalo:nul:2", _message("zalo:nul:2", body="a\x00b")),
            Incoming(digest, "zalo:nul:3", _message("zalo:nul:3")),
        ])
        assert outcomes[0].created and outcomes[2].created
        assert isinstance(outcomes[1], sa.exc.DataError)
        [again] = writer([Incoming(digest, "zalo:nul:1", _message("zalo:nul:1"))])  # the writer goes on
        assert (again.created, again.id) == (False, outcomes[0].id)
        with factory() as session:
            assert _stored(session, Inbound.external_id.like("zalo:nul:%")) == 2
    finally:
        writer.close()
        if own_connection:
            with engine.begin() as conn:
                conn.execute(sa.delete(Inbound).where(Inbound.external_id.like("zalo:nul:%")))
                conn.execute(sa.delete(ApiKey).where(ApiKey.name == "accept-batch-test"))


def test_a_failed_group_answers_each_of_its_requests_503_and_stores_nothing(client, db, api_key_for, monkeypatch):
    headers = api_key_for("service:write")

    def down(db, group, *args, **kwargs):
        raise sa.exc.OperationalError("INSERT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(accepting, "store", down)
    r = client.post(PATH, json=_message("zalo:down:1"), headers=headers)
    assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable"
    assert r.headers["retry-after"] == "5"
    monkeypatch.undo()
    assert _stored(db) == 0
    assert client.post(PATH, json=_message("zalo:down:1"), headers=headers).status_code == 202


def test_only_the_requests_of_the_failed_flush_fail():
    """Group commit alone: the second flush raises; its items fail, the first's and the third's do not."""
    flushed: list[list[int]] = []
    release = threading.Event()

    def flush(items: list[int]) -> list:
        flushed.append(items)
        if len(flushed) == 1:
            release.wait(5)  # the others arrive while the first flush runs
        if len(flushed) == 2:
            raise RuntimeError("the database went away")
        return [item * 10 if item != 7 else ValueError("seven is refused") for item in items]

    group = GroupCommit(flush, max_batch=4)

    async def main():
        first = asyncio.ensure_future(group.submit(1))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(group.submit(n)) for n in range(2, 10)]
        await asyncio.sleep(0.05)
        release.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    results = asyncio.run(main())
    assert flushed == [[1], [2, 3, 4, 5], [6, 7, 8, 9]]
    assert results[0] == 10
    assert all(isinstance(r, RuntimeError) for r in results[1:5])
    assert results[5:] == [60, results[6], 80, 90] and isinstance(results[6], ValueError)


def test_a_group_that_meets_a_deadlock_is_written_again_in_external_id_order(monkeypatch):
    class Deadlock(Exception):
        sqlstate = "40P01"

    written: list[list[str]] = []

    def write(self, group):
        written.append([m.external_id for m in group])
        if len(written) == 1:
            raise sa.exc.OperationalError("INSERT", {}, Deadlock("deadlock detected"))
        return [f"stored {m.external_id}" for m in group]

    monkeypatch.setattr(Writer, "write", write)
    group = [Incoming("k", e, {}) for e in ("zalo:c", "zalo:a", "zalo:b", "zalo:a")]
    assert Writer(make_session_factory(sa.create_engine("sqlite://")))(group) == [
        "stored zalo:c", "stored zalo:a", "stored zalo:b", "stored zalo:a"]  # answered in arrival order
    assert written == [["zalo:c", "zalo:a", "zalo:b", "zalo:a"], ["zalo:a", "zalo:a", "zalo:b", "zalo:c"]]


def test_two_server_processes_racing_on_the_same_ids_store_each_once(engine):
    """Six writers on their own connections (as six server processes), groups of the same 30 ids in
    opposite orders at the same instant: each id stored once, told created once. Committed for real (no
    test transaction around it), and deleted at the end."""
    factory = make_session_factory(engine)
    with factory() as session:
        _, secret = create_api_key(session, "race", ["service:write"])
        session.commit()
    writers = [Writer(factory) for _ in range(6)]
    ids = [f"zalo:race:{n}" for n in range(30)]
    digest = hashlib.sha256(secret.encode()).hexdigest()
    try:
        results = run_at_once(6, lambda n: writers[n]([Incoming(digest, e, _message(e))
                                                           for e in (ids if n % 2 else ids[::-1])]))
        assert [r for r in results if isinstance(r, Exception)] == []
        created = [a.id for outcome in results for a in outcome if a.created]
        assert len(created) == 30 and len(set(created)) == 30
        with factory() as session:
            assert _stored(session, Inbound.external_id.like("zalo:race:%")) == 30
    finally:
        for writer in writers:
            writer.close()
        with engine.begin() as conn:
            conn.execute(sa.delete(Inbound).where(Inbound.external_id.like("zalo:race:%")))
            conn.execute(sa.delete(ApiKey).where(ApiKey.name == "race"))


# --- the same answers as the route ---------------------------------------------------------------------


def _route_only(app) -> FastAPI:
    """The same app without the fast path (every request through routing, dependencies, the route)."""
    app.user_middleware = [m for m in app.user_middleware if m.cls is not AcceptMessages]
    app.middleware_stack = None
    return app


def _answer(response) -> tuple:
    return (response.status_code, response.content, response.headers.get("content-type"),
            response.headers.get("www-authenticate"))


def test_every_answer_is_byte_for_byte_the_routes(settings, session_factory, db, api_key_for):
    from clm.web.app import create_app

    write, read = api_key_for("service:write"), api_key_for("service:read")
    good = _message("zalo:same:1")
    cases = [
        ({}, good, None),
        ({"Authorization": "Basic dTpw"}, good, None),
        ({"Authorization": "Bearer "}, good, None),
        ({"Authorization": "Bearer clm_unknown"}, good, None),
        (read, good, None),
        (write, good, "application/json; charset=utf-8"),  # a resend after the first
        (write, good, "application/vnd.api+json"),
        (write, good, "text/plain"),
        (write, good, ""),
        (write, b"{not json", None),
        (write, b"[1, 2]", None),
        (write, b"", None),
        (write, {**good, "customer_id": "abc"}, None),
        (write, {**good, "colour": "red"}, None),
        (write, {k: v for k, v in good.items() if k != "inbox_id"}, None),
        (write, {**good, "body": ""}, None),
        (read, {**good, "body": ""}, None),
        ({"Authorization": "Bearer clm_unknown"}, b"{not json", None),
        (write, b'{"body": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", None),  # deeper than json.loads goes
    ]
    fast = TestClient(create_app(settings, session_factory), raise_server_exceptions=False)
    route = TestClient(_route_only(create_app(settings, session_factory)), raise_server_exceptions=False)
    assert fast.post(PATH, json=good, headers=write).status_code == 202
    for headers, body, content_type in cases:
        sent = {**headers, **({"Content-Type": content_type} if content_type is not None else {})}
        raw = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
        if content_type is None and isinstance(body, dict):
            sent["Content-Type"] = "application/json"
        answers = [_answer(c.post(PATH, content=raw, headers=sent)) for c in (fast, route)]
        assert answers[0] == answers[1], (headers, body, content_type)
    created = [c.post(PATH, json=_message(f"zalo:same:{n}"), headers=write) for n, c in ((2, fast), (3, route))]
    assert [r.status_code for r in created] == [202, 202]
    assert created[0].content.replace(str(created[0].json()["id"]).encode(), b"N") == \
        created[1].content.replace(str(created[1].json()["id"]).encode(), b"N")


def test_the_answers_serialise_as_the_response_model_would():
    plain = FastAPI()

    @plain.post("/", response_model=AcceptedOut)
    def answer(created: bool, error: str | None = None) -> AcceptedOut:
        return AcceptedOut(created=created, id=12, state="failed" if error else "queued", error=error, ticket_id=3)

    with TestClient(plain) as c:
        for created, error in ((True, None), (False, "no inbox 98 \"x\" — đã xoá\n")):
            expected = c.post("/", params={"created": created, **({"error": error} if error else {})}).content
            _, content = accepting.Accepted(12, created, "failed" if error else "queued", 3, None, error).answer()
            assert accepting_http.render(content) == expected


def test_the_openapi_document_still_describes_the_endpoint(app):
    operation = app.openapi()["paths"][PATH]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/InboundIn")
    assert operation["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/AcceptedOut")
    assert {"401", "403", "422"} <= set(operation["responses"])
    assert operation["security"]
