"""Service desk benchmarks (issue 10), on PostgreSQL:

1. routing: one routing decision (`clm.service.routing.route`: follow-up, owner, team rules, least load
   under the routing lock) for a new ticket, with `agents` agents online and `open_tickets` open tickets
   assigned among them; p50/p99 over `decisions` decisions, each committed (issue: 200 agents, 100,000).
2. views: the agent views mine, unassigned and SLA at risk through the API (GET /api/v1/service/tickets,
   first page of 50) with `tickets` tickets (a tenth of them open, a fifth of those unassigned, a running
   first-response clock on each open one, some due) and 100 agents: p95 server time per view (the goal is
   under 300 ms; the issue's size is 1,000,000 tickets).
3. burst: inbound messages at a target rate through the desk's inbound webhook (POST /api/v1/service/messages,
   what channel adapters call) on a `clm serve` process with 4 workers, for `seconds` seconds, 5% of them
   resent (a provider's retry): messages/s achieved, p50/p99 latency, then all stored and none twice.
   `--via zalo` sends the same burst through the Zalo OA webhook (POST /hooks/zalo, `user_send_text` events
   signed with X-ZEvent-Signature), so the figures exist for a real provider's webhook too.

python bench/service_bench.py [--quick] [--only routing,views,burst] [--tickets N] [--rate R] [--seconds S]
    [--via api|zalo]
PostgreSQL: CLM_BENCH_SERVICE_POSTGRES_URL (default .../clm_bench_service, dropped and created).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from loyalty_bench import _server  # noqa: E402
from tracking_bench import _free_port, _reset_postgres  # noqa: E402

PG_URL = os.environ.get("CLM_BENCH_SERVICE_POSTGRES_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/clm_bench_service")
NOW = datetime.now(UTC).replace(microsecond=0)
CHANNELS = ("zalo", "messenger", "email", "sms", "phone", "chat")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def _fresh_db():
    from clm.db.engine import make_engine, make_session_factory
    from clm.db.migrate import upgrade

    _reset_postgres(PG_URL)
    engine = make_engine(PG_URL)
    upgrade(engine)
    return engine, make_session_factory(engine)


def _copy(session, table: str, columns: list[str], rows) -> int:
    """COPY rows (tuples; dicts and lists as JSON) into `table`; returns how many."""
    cursor = session.connection().connection.driver_connection.cursor()
    n = 0
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([orjson.dumps(v).decode() if isinstance(v, dict | list) else v for v in row])
            n += 1
    return n


def _bump_sequence(session, table: str) -> None:
    """Move the id sequence past the ids COPY wrote (the table name is one of this file's, never input)."""
    import sqlalchemy as sa

    from clm.db.models import metadata

    t = metadata.tables[table]
    session.execute(sa.select(sa.func.setval(sa.func.pg_get_serial_sequence(table, "id"),
                                             sa.select(sa.func.max(t.c.id)).scalar_subquery())))


def _staff(session, agents: int, capacity: int) -> list[int]:
    users = [(i, f"agent{i}@desk.vn", f"Agent {i}", "x", "agent", True, NOW) for i in range(1, agents + 1)]
    _copy(session, "users", ["id", "email", "name", "password_hash", "role", "active", "created_at"], users)
    _bump_sequence(session, "users")
    _copy(session, "service_agents", ["user_id", "availability", "capacity", "languages", "availability_changed_at",
                                      "created_at", "last_assigned_at"],
          ((i, "online", capacity, [], NOW, NOW, NOW - timedelta(seconds=i)) for i in range(1, agents + 1)))
    return list(range(1, agents + 1))


def _customers(session, n: int) -> None:
    _copy(session, "customers", ["id", "traits", "search_text", "created_at", "updated_at"],
          ((i, {}, "", NOW, NOW) for i in range(1, n + 1)))
    _bump_sequence(session, "customers")


def _tickets(session, n: int, customers: int, agents: list[int], open_share: float, unassigned_share: float,
             seed: int = 10) -> list[int]:
    """`n` tickets over the last year; returns the ids of the open ones."""
    rng = random.Random(seed)
    open_ids: list[int] = []
    ticket_cols = ["id", "number", "customer_id", "subject", "status", "priority", "priority_rank", "vip", "tags",
                   "fields", "channel", "assignee_id", "assigned_at", "status_changed_at", "solved_at",
                   "created_at", "updated_at"]

    def rows():
        for i in range(1, n + 1):
            created = NOW - timedelta(seconds=int(365 * 86400 * (1 - i / n)) + 60)
            is_open = rng.random() < open_share
            priority = rng.choice(("low", "normal", "normal", "normal", "high", "urgent"))
            assignee = None if is_open and rng.random() < unassigned_share else rng.choice(agents)
            status = rng.choice(("new", "open", "open", "pending_customer")) if is_open else \
                rng.choice(("solved", "closed", "closed"))
            if is_open:
                open_ids.append(i)
            yield (i, f"TK-{i:07d}", rng.randint(1, customers), "Hỏi về đơn hàng", status, priority,
                   ("low", "normal", "high", "urgent").index(priority), False, [], {}, rng.choice(CHANNELS),
                   assignee, created if assignee else None, created, None if is_open else created, created, created)

    _copy(session, "service_tickets", ticket_cols, rows())
    _bump_sequence(session, "service_tickets")
    return open_ids


def _timers(session, open_ids: list[int], due_share: float, overdue_share: float = 0.0, seed: int = 11) -> None:
    """A running first-response clock on each open ticket; `due_share` of them (anywhere) due within the hour;
    the oldest `overdue_share` of the open tickets overdue (a backlog: what piles up is the old tickets)."""
    rng = random.Random(seed)
    backlog = set(sorted(open_ids)[:int(len(open_ids) * overdue_share)])
    import sqlalchemy as sa

    from clm.service.models import OPEN_STATUSES, Ticket

    customer_of = dict(session.execute(sa.select(Ticket.id, Ticket.customer_id).where(
        Ticket.status.in_(OPEN_STATUSES))).all())
    def due(tid: int) -> datetime:
        if tid in backlog:
            return NOW - timedelta(minutes=rng.randint(1, 600))
        return NOW + timedelta(minutes=rng.randint(1, 50) if rng.random() < due_share else rng.randint(120, 5000))

    rows = ((tid, customer_of[tid], "first_response", 120, NOW - timedelta(hours=1), due(tid), "running", {})
            for tid in open_ids)
    _copy(session, "service_sla_timers", ["ticket_id", "customer_id", "metric", "target_minutes", "started_at",
                                          "due_at", "state", "explanation"], rows)


# --- 1. routing ------------------------------------------------------------------------------------------------


def routing(quick: bool, agents: int = 200, open_tickets: int = 100_000) -> list[dict]:
    from clm.db.engine import for_writing
    from clm.service.routing import route
    from clm.service.tickets import TicketIn, open_ticket

    if quick:
        open_tickets = 10_000
    engine, factory = _fresh_db()
    started = time.perf_counter()
    with factory() as s:
        ids = _staff(s, agents, capacity=open_tickets // agents + 100)
        _customers(s, open_tickets)
        _tickets(s, open_tickets, open_tickets, ids, open_share=1.0, unassigned_share=0.0)
        s.commit()
    with engine.connect() as c:
        c.exec_driver_sql("ANALYZE")
        c.commit()
    load_s = time.perf_counter() - started
    decisions = 60 if quick else 300
    rng = random.Random(12)
    times = []
    for _ in range(decisions):
        with factory() as s:
            for_writing(s)
            ticket = open_ticket(s, TicketIn(customer_id=rng.randint(1, open_tickets), subject="Hỏi giá",
                                             channel="zalo", route=False))
            s.commit()
            t0 = time.perf_counter()
            for_writing(s)
            route(s, ticket.id)
            s.commit()
            times.append((time.perf_counter() - t0) * 1000)
    engine.dispose()
    return [{"bench": "routing decision", "backend": "postgres", "agents": agents, "open tickets": open_tickets,
             "decisions": decisions, "p50 ms": round(statistics.median(times), 2), "p99 ms": round(_pct(times, 99), 2),
             "setup s": round(load_s, 1)}]


# --- 2. views --------------------------------------------------------------------------------------------------


def views(quick: bool, tickets: int | None = None, agents: int = 100) -> list[dict]:
    from fastapi.testclient import TestClient

    from clm.access.keys import create_api_key
    from clm.config import Settings
    from clm.web.app import create_app

    tickets = tickets or (50_000 if quick else 1_000_000)
    engine, factory = _fresh_db()
    started = time.perf_counter()
    customers = max(1000, tickets // 4)
    with factory() as s:
        ids = _staff(s, agents, capacity=10_000)
        _customers(s, customers)
        s.commit()
        open_ids = _tickets(s, tickets, customers, ids, open_share=0.1, unassigned_share=0.2)
        s.commit()
        _timers(s, open_ids, due_share=0.05, overdue_share=0.02)
        _, key = create_api_key(s, "bench", ["service:read"])
        s.commit()
    with engine.connect() as c:
        c.exec_driver_sql("ANALYZE")
        c.commit()
    load_s = time.perf_counter() - started
    app = create_app(Settings(database_url=PG_URL), factory)
    headers = {"Authorization": f"Bearer {key}"}
    rounds = 30 if quick else 100
    rng = random.Random(13)
    rows = []
    soon, overdue = (NOW + timedelta(hours=1)).isoformat(), (NOW - timedelta(minutes=1)).isoformat()
    with TestClient(app) as client:
        # "SLA at risk" twice: due within the hour (5% of the open tickets, anywhere, and the backlog), and
        # overdue only (the backlog: the oldest 2%, which a walk from the newest ticket reaches last)
        for label, view, params in (("mine", "mine", lambda: {"user_id": rng.choice(ids)}),
                                    ("unassigned", "unassigned", dict),
                                    ("sla_at_risk", "sla_at_risk", lambda: {"at_risk_before": soon}),
                                    ("sla_at_risk (overdue backlog)", "sla_at_risk",
                                     lambda: {"at_risk_before": overdue})):
            times = []
            for i in range(rounds + 5):
                if i == 5:  # the first few warm the caches and prepared statements
                    cpu_own, cpu_pg = time.process_time(), _backends_cpu(engine)
                t0 = time.perf_counter()
                r = client.get("/api/v1/service/tickets", params={"view": view, **params()}, headers=headers)
                elapsed = (time.perf_counter() - t0) * 1000
                assert r.status_code == 200 and r.json()["data"], (view, r.text[:200])
                if i >= 5:
                    times.append(elapsed)
            cpu_own, cpu_pg = time.process_time() - cpu_own, _backends_cpu(engine) - cpu_pg
            rows.append({"bench": f"agent view: {label}", "backend": "postgres", "tickets": tickets,
                         "open": len(open_ids), "agents": agents, "p50 ms": round(statistics.median(times), 1),
                         "p95 ms": round(_pct(times, 95), 1), "goal ms": 300,
                         "cpu ms per request (app)": round(cpu_own * 1000 / rounds, 1),
                         "cpu ms per request (postgres)": round(cpu_pg * 1000 / rounds, 1),
                         "load": round(os.getloadavg()[0], 1), "setup s": round(load_s, 1)})
    engine.dispose()
    return rows


def _backends_cpu(engine) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving this database (they run on this machine),
    asked on a connection of its own (not one of the app's pool)."""
    import sqlalchemy as sa
    from queue_drain import cpu_of

    own = sa.create_engine(engine.url, poolclass=sa.NullPool)
    with own.connect() as c:
        pids = c.exec_driver_sql("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND pid <> pg_backend_pid()").scalars().all()
    own.dispose()
    return sum(cpu_of(pid) for pid in pids)


# --- 3. burst --------------------------------------------------------------------------------------------------


def _tree_cpu(root: int) -> float:
    """CPU seconds of a process and all its descendants (the `clm serve` master and its server processes)."""
    from queue_drain import cpu_of

    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu_of(pid)
        todo += children.get(pid, [])
    return total


async def _post_at_rate(port: int, path: str, headers: dict[str, str], bodies: list[bytes], rate: int,
                        connections: int, acks: dict[int, float], statuses: dict, latencies: list[float],
                        own_headers: list[bytes] | None = None) -> None:
    """Open-loop load: request i (a POST of bodies[i] to `path` with `headers`, and own_headers[i] when given:
    header lines of that request alone, such as a signature) is due at start + i/rate, sent on one of
    `connections` keep-alive HTTP/1.1 connections (a small hand-written client, so the load generator's own
    CPU stays small next to the server's). `acks[i]`: when the 2xx answer to request i arrived."""
    import asyncio

    start = time.perf_counter()
    counter = iter(range(len(bodies)))
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "Content-Type: application/json\r\n").encode()

    async def connection() -> None:
        reader = writer = None
        for i in counter:
            wait = start + i / rate - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            t0 = time.perf_counter()
            for _attempt in range(5):  # a provider resends when the connection drops
                try:
                    if writer is None:
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.write(head + (own_headers[i] if own_headers else b"") + b"Content-Length: "
                                 + str(len(bodies[i])).encode() + b"\r\n\r\n" + bodies[i])
                    status_line = await reader.readuntil(b"\r\n")
                    length = 0
                    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    await reader.readexactly(length)
                    status = int(status_line.split()[1])
                    if status < 500:
                        break
                    statuses[f"{status} (resent)"] = statuses.get(f"{status} (resent)", 0) + 1
                except (OSError, asyncio.IncompleteReadError):
                    writer, status = None, -1
                await asyncio.sleep(0.5)
            now = time.perf_counter()
            statuses[status] = statuses.get(status, 0) + 1
            latencies.append((now - t0) * 1000)
            if 200 <= status < 300:
                acks[i] = now
        if writer is not None:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))


def _watch_views(url: str, stop: threading.Event, seen: dict[str, float], every: float = 0.1) -> None:
    """Poll what the open agent views show (open tickets: the unassigned queue and each agent's mine) for
    new customer messages; `seen[external_id]`: when a message was first there."""
    import sqlalchemy as sa

    # PostgreSQL: not prepared (a generic plan made while the tables were nearly empty scans them whole)
    engine = (sa.create_engine(url, poolclass=sa.NullPool) if url.startswith("sqlite")
              else sa.create_engine(url, connect_args={"prepare_threshold": None}))
    # The newest messages first, then their tickets: the tables grow from empty during the burst, and with
    # statistics that lag behind, PostgreSQL otherwise walks every open ticket at every poll.
    query = sa.text("WITH recent AS MATERIALIZED (SELECT id, external_id, ticket_id FROM service_messages "
                    "WHERE id > :floor AND direction = 'in') "
                    "SELECT m.id, m.external_id FROM recent m JOIN service_tickets t ON t.id = m.ticket_id "
                    "WHERE t.merged_into_id IS NULL AND t.status IN ('new', 'open', 'pending_customer', 'on_hold')")
    top, polls = 0, 0
    with engine.connect() as c:
        if not url.startswith("sqlite"):  # the statistics of tables filled seconds ago say they are empty
            c.execute(sa.text("SET enable_seqscan = off"))
        while not stop.is_set():
            # ids may commit out of order (the one-by-one path, mail, chat): look back a little at every poll
            # and far every 2 s (looking back 2,000 rows at every poll cost PostgreSQL more than filing did)
            polls += 1
            back = 5_000 if polls % 20 == 0 else 300
            rows = c.execute(query, {"floor": max(top - back, 0)}).all()
            c.rollback()
            now = time.perf_counter()
            for mid, ext in rows:
                top = max(top, mid)
                if ext not in seen:
                    seen[ext] = now
            stop.wait(every)
    engine.dispose()


def _api_plan(total: int, customers: int, inbox_id: int) -> tuple[list[bytes], list[str]]:
    """The API burst's request bodies (5% sent twice) and the desk message external_id of each."""
    rng = random.Random(14)
    plan: list[bytes] = []
    ids: list[str] = []
    for i in range(total):
        body = orjson.dumps({"inbox_id": inbox_id, "customer_id": rng.randint(1, customers), "body": f"Tin nhắn {i}",
                             "external_id": f"zalo-msg-{i}"})
        plan.append(body)
        ids.append(f"zalo-msg-{i}")
        if rng.random() < 0.05:
            plan.append(body)  # the provider delivers it again
            ids.append(f"zalo-msg-{i}")
    return plan, ids


ZALO_APP_ID, ZALO_OA_SECRET = "bench-app", "bench-oa-secret"
ZALO_ENV = {"CLM_ZALO_APP_ID": ZALO_APP_ID, "CLM_ZALO_OA_SECRET_KEY": ZALO_OA_SECRET}


def _zalo_sender(customer_id: int) -> str:
    return f"ZU{customer_id:012d}"


def _zalo_identities(session, customers: int, backend: str) -> None:
    """Customer i is Zalo user `_zalo_sender(i)` (a `zalo` identity), as for a shop whose customers already
    wrote before: the worker finds them by identity, as the API burst names existing customers."""
    import sqlalchemy as sa

    from clm.customers.models import Identity

    rows = ((i, "zalo", _zalo_sender(i), False, NOW) for i in range(1, customers + 1))
    if backend == "postgres":
        _copy(session, "identities", ["customer_id", "kind", "value", "verified", "created_at"], rows)
    else:
        session.execute(sa.insert(Identity), [dict(zip(("customer_id", "kind", "value", "verified", "created_at"),
                                                       r, strict=True)) for r in rows])


def _zalo_plan(total: int, customers: int) -> tuple[list[bytes], list[str], list[bytes]]:
    """The same burst as Zalo OA `user_send_text` events (the same customers, in the same order, as
    `_api_plan`), each with its X-ZEvent-Signature (sha256 of app_id + body + timestamp + OA secret key);
    a resend is the same request again. The desk message's external_id is the reply's "zalo:<msg_id>"."""
    import hashlib

    rng = random.Random(14)
    plan: list[bytes] = []
    ids: list[str] = []
    signatures: list[bytes] = []
    base_ms = int(time.time() * 1000)
    for i in range(total):
        timestamp = str(base_ms + i)
        msg_id = f"bench{i:015d}"
        body = orjson.dumps({"event_name": "user_send_text", "app_id": ZALO_APP_ID,
                             "sender": {"id": _zalo_sender(rng.randint(1, customers))}, "recipient": {"id": "OA-bench"},
                             "message": {"text": f"Tin nhắn {i}", "msg_id": msg_id}, "timestamp": timestamp})
        mac = hashlib.sha256(ZALO_APP_ID.encode() + body + timestamp.encode() + ZALO_OA_SECRET.encode()).hexdigest()
        header = f"X-ZEvent-Signature: mac={mac}\r\n".encode()
        copies = 2 if rng.random() < 0.05 else 1  # the provider delivers it again
        plan += [body] * copies
        ids += [f"zalo:{msg_id}"] * copies
        signatures += [header] * copies
    return plan, ids, signatures


def burst(quick: bool, rate: int = 1000, seconds: int = 60, customers: int = 20_000, connections: int = 24,
          backend: str = "postgres", servers: int = 2, drain: float = 240, workers: int = 1,
          via: str = "api") -> list[dict]:
    """The inbound burst: `rate` messages/s for `seconds` through POST /api/v1/service/messages (`via` "api") or
    the Zalo OA webhook (`via` "zalo": signed `user_send_text` events from the customers' Zalo user ids) on
    `clm serve --workers servers` with `clm worker` beside it; 5% of the messages resent. After the last request,
    up to `drain` seconds for the worker to file everything."""
    import asyncio

    import sqlalchemy as sa

    from clm.access.keys import create_api_key
    from clm.service.conversations import InboxIn, save_inbox

    if quick:
        rate, seconds, customers = 200, 10, min(customers, 2000)
    if backend == "postgres":
        url = PG_URL
        engine, factory = _fresh_db()
    else:
        from clm.db.engine import make_engine, make_session_factory
        from clm.db.migrate import upgrade

        path = Path(os.environ.get("TMPDIR", "/tmp")) / "b1_service_burst.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        upgrade(engine)
        factory = make_session_factory(engine)
    with factory() as s:
        from clm.access.models import User
        from clm.customers.models import Customer
        from clm.service.agents import AgentIn, save_agent

        if backend == "postgres":
            _staff(s, 50, capacity=100_000)
            _customers(s, customers)
        else:
            for i in range(1, 51):
                s.add(User(id=i, email=f"agent{i}@desk.vn", name=f"Agent {i}", password_hash="x", role="agent",
                           active=True, created_at=NOW))
            s.flush()
            for i in range(1, 51):
                save_agent(s, i, AgentIn(availability="online", capacity=1000))
            s.execute(sa.text("UPDATE service_agents SET capacity = 100000"))  # as the PostgreSQL setup
            s.execute(sa.insert(Customer), [{"id": i, "traits": {}, "search_text": "", "created_at": NOW,
                                             "updated_at": NOW} for i in range(1, customers + 1)])
        if via == "zalo":
            _zalo_identities(s, customers, backend)
        # the active inbox on channel zalo: the webhook's replies become desk messages there
        inbox = save_inbox(s, InboxIn(name="Zalo OA", channel="zalo", language="vi"))
        _, key = create_api_key(s, "bench", ["service:write"])
        s.commit()
        inbox_id = inbox.id
    if via == "zalo":
        path, headers = "/hooks/zalo", {}
        plan, ids, own_headers = _zalo_plan(rate * seconds, customers)
    else:
        path, headers, own_headers = "/api/v1/service/messages", {"Authorization": f"Bearer {key}"}, None
        plan, ids = _api_plan(rate * seconds, customers, inbox_id)
    total = rate * seconds
    port = _free_port()
    saved_env = {k: os.environ.get(k) for k in ZALO_ENV}
    if via == "zalo":
        os.environ.update(ZALO_ENV)  # `clm serve` reads its settings from the environment
    try:
        server = _server(url, port, workers=servers, with_worker=False)
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    env = {**os.environ, "CLM_DATABASE_URL": url, "CLM_LOG_LEVEL": "warning", "PYTHONPATH": str(ROOT),
           "CLM_WORKER_POLL_SECONDS": "0.05"}
    worker_procs = [subprocess.Popen([sys.executable, "-m", "clm.cli", "worker"], env=env) for _ in range(workers)]

    def workers_cpu() -> float:
        return sum(_tree_cpu(p.pid) for p in worker_procs)

    acks: dict[int, float] = {}
    statuses: dict = {}
    latencies: list[float] = []
    seen: dict[str, float] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_views, args=(url, stop, seen), daemon=True)
    time.sleep(2)  # the worker has started
    load_before = os.getloadavg()
    cpu = {"server": _tree_cpu(server.pid), "worker": workers_cpu(), "bench": time.process_time(),
           "postgres": _backends_cpu(engine) if backend == "postgres" else 0.0}
    try:
        watcher.start()
        start = time.perf_counter()
        asyncio.run(_post_at_rate(port, path, headers, plan, int(rate * len(plan) / total), connections, acks,
                                  statuses, latencies, own_headers))
        sent_s = time.perf_counter() - start
        cpu_sent = {"server": _tree_cpu(server.pid) - cpu["server"], "worker": workers_cpu() - cpu["worker"]}
        deadline = time.perf_counter() + drain
        unique = set(ids)
        while len(seen) < len(unique) and time.perf_counter() < deadline:
            time.sleep(0.2)
        filed_s = time.perf_counter() - start
        load_after = os.getloadavg()
        cpu = {"server": _tree_cpu(server.pid) - cpu["server"], "worker": workers_cpu() - cpu["worker"],
               "bench": time.process_time() - cpu["bench"],
               "postgres": (_backends_cpu(engine) - cpu["postgres"]) if backend == "postgres" else 0.0}
    finally:
        stop.set()
        for proc in (server, *worker_procs):
            proc.terminate()
            proc.wait(timeout=60)
    first_ack: dict[str, float] = {}
    for i, at in acks.items():
        first_ack[ids[i]] = min(at, first_ack.get(ids[i], at))
    visible = [(seen[e] - at) * 1000 for e, at in first_ack.items() if e in seen]
    with factory() as s:
        stored = s.scalar(sa.text("SELECT count(*) FROM service_inbound"))
        messages = s.scalar(sa.text("SELECT count(*) FROM service_messages WHERE direction = 'in'"))
        distinct = s.scalar(sa.text("SELECT count(DISTINCT external_id) FROM service_messages WHERE direction = 'in'"))
        opened = s.scalar(sa.text("SELECT count(*) FROM service_tickets"))
        failed = s.scalar(sa.text("SELECT count(*) FROM service_inbound WHERE error IS NOT NULL"))
    engine.dispose()
    what = ("POST /hooks/zalo, signed user_send_text" if via == "zalo" else "POST /service/messages")
    return [{"bench": f"inbound burst ({what}, stored then filed by the worker)", "via": via, "backend": backend,
             "server processes": servers, "worker processes": workers, "customers": customers, "offered per s": rate, "seconds": seconds,
             "sent": len(plan), "unique": len(set(ids)), "acknowledged per s": round(len(acks) / sent_s),
             "ack p50 ms": round(statistics.median(latencies), 1), "ack p99 ms": round(_pct(latencies, 99), 1),
             "answers": ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=str)),
             "stored": stored, "filed messages": messages, "filed twice": messages - distinct, "failed": failed,
             "tickets opened": opened, "filed or gave up after s": round(filed_s, 1),
             "filed per s (worker)": round(messages / filed_s),
             "ack to visible p50 ms": round(statistics.median(visible), 1) if visible else None,
             "ack to visible p99 ms": round(_pct(visible, 99), 1) if visible else None,
             "not visible": len(first_ack) - len(visible),
             "cpu s while sending (server, worker)": (round(cpu_sent["server"], 1), round(cpu_sent["worker"], 1)),
             "cpu s total (server, worker, postgres, bench)": tuple(round(cpu[k], 1) for k in
                                                                  ("server", "worker", "postgres", "bench")),
             "load before/after": (round(load_before[0], 1), round(load_after[0], 1))}]


def run(quick: bool = False, only: tuple[str, ...] = ("routing", "views", "burst"), tickets: int | None = None,
        rate: int = 1000, seconds: int = 60, customers: int = 20_000, backend: str = "postgres",
        servers: int = 2, workers: int = 1, via: str = "api") -> list[dict]:
    rows = []
    if "routing" in only:
        rows += routing(quick)
    if "views" in only:
        rows += views(quick, tickets)
    if "burst" in only:
        rows += burst(quick, rate, seconds, customers, backend=backend, servers=servers, workers=workers, via=via)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="routing,views,burst")
    parser.add_argument("--tickets", type=int, default=None, help="tickets for the views (default 1,000,000)")
    parser.add_argument("--rate", type=int, default=1000, help="inbound messages per second to aim at")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--customers", type=int, default=20_000,
                        help="customers writing in the burst (few: messages thread into open tickets)")
    parser.add_argument("--backend", default="postgres", choices=("postgres", "sqlite"), help="for the burst")
    parser.add_argument("--servers", type=int, default=2, help="clm serve --workers, for the burst")
    parser.add_argument("--workers", type=int, default=1, help="clm worker processes beside the server, for the burst")
    parser.add_argument("--via", default="api", choices=("api", "zalo"),
                        help="the burst through POST /api/v1/service/messages or the Zalo OA webhook")
    args = parser.parse_args()
    for row in run(args.quick, tuple(args.only.split(",")), args.tickets, args.rate, args.seconds, args.customers,
                   args.backend, args.servers, args.workers, args.via):
        print(row)
