"""Service desk benchmarks (issue 10), on PostgreSQL:

1. routing: one routing decision (`clm.service.routing.route`: follow-up, owner, team rules, least load
   under the routing lock) for a new ticket, with `agents` agents online and `open_tickets` open tickets
   assigned among them; p50/p99 over `decisions` decisions, each committed (issue: 200 agents, 100,000).
2. views: the agent views mine, unassigned and SLA at risk through the API (GET /api/v1/service/tickets,
   first page of 50) with `tickets` tickets (a tenth of them open, a fifth of those unassigned, a running
   first-response clock on each open one, some due) and 100 agents: p95 server time per view (the goal is
   under 300 ms; the issue's size is 1,000,000 tickets).
3. burst (bench/service_burst.py): inbound messages at a target rate through the desk's inbound webhook (POST /api/v1/service/messages,
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
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tracking_bench import _reset_postgres  # noqa: E402

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


def run(quick: bool = False, only: tuple[str, ...] = ("routing", "views", "burst"), tickets: int | None = None,
        rate: int = 1000, seconds: int = 60, customers: int = 20_000, backend: str = "postgres",
        servers: int = 2, workers: int = 1, via: str = "api") -> list[dict]:
    rows = []
    if "routing" in only:
        rows += routing(quick)
    if "views" in only:
        rows += views(quick, tickets)
    if "burst" in only:
        from service_burst import burst

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
