"""Loyalty benchmarks (issue 9):

1. Earning inline: `Order Completed` events through /v1/batch with the in-process worker reacting, with a
   program active (1 point per 10,000 VND, the default tiers) against none; the goal is a ratio >= 0.8. Also
   how long after the last request the worker had credited every order.
2. The expiry run: `members` members holding `lots` lots each on PostgreSQL, the oldest lot of each one due
   (a tenth of the lots when lots = 10); the sweep's total time and its longest chunk (members are locked
   for one chunk's transaction). Sizes are parameters (--members, --lots); the issue's target is 1,000,000
   members and 10,000,000 lots.
3. Redemptions through the API on PostgreSQL with 16 concurrent clients: redemptions/s and p99 latency.

python bench/loyalty_bench.py [--quick] [--only earning,earning_cpu,expiry,redeem] [--members N] [--lots K]
    [--template DB] [--connections 2] [--verify]
PostgreSQL: CLM_BENCH_LOYALTY_POSTGRES_URL (default .../clm_bench_loyalty, dropped and created).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tracking_bench import _free_port, _reset_postgres, send_batches  # noqa: E402

PG_URL = os.environ.get("CLM_BENCH_LOYALTY_POSTGRES_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/clm_bench_loyalty")


def _url(backend: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix='clm-bench-loyalty-')}/bench.db"
    _reset_postgres(PG_URL)
    return PG_URL


def _session_factory(url: str):
    from clm.db.engine import make_engine, make_session_factory
    from clm.db.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine)
    return engine, make_session_factory(engine)


def _start_program(session_factory, created_at: datetime) -> None:
    from clm.loyalty.program import ProgramSettings, save_program
    from clm.loyalty.rules import RuleIn, create_rule
    from clm.loyalty.tiers import DEFAULT_TIERS, TierIn, save_tiers

    with session_factory() as s:
        program = save_program(s, ProgramSettings())
        program.created_at = created_at
        save_tiers(s, [TierIn(**t) for t in DEFAULT_TIERS])
        create_rule(s, RuleIn(name="1 điểm / 10.000 ₫", kind="spend",
                              config={"points": 1, "per_amount": 10_000, "rounding": "down"}))
        s.commit()


def _server(url: str, port: int, workers: int = 1, with_worker: bool = True) -> subprocess.Popen:
    env = {**os.environ, "CLM_DATABASE_URL": url, "CLM_LOG_LEVEL": "warning", "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, "-m", "clm.cli", "serve", "--port", str(port), "--workers",
                               str(workers), *([] if with_worker else ["--no-worker"])], env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(base + "/healthz", timeout=0.5)
            return server
        except httpx.HTTPError:
            time.sleep(0.05)
    server.terminate()
    raise RuntimeError("the server did not start")


# --- 1. earning inline -----------------------------------------------------------------------------------


def order_events(n: int, users: int, seed: int = 9) -> list[dict]:
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=2)
    out = []
    for i in range(n):
        items = [{"product_id": f"SKU-{rng.randint(1, 200)}", "category": rng.choice(["tea", "skincare", "gift"]),
                  "price": rng.choice([45_000, 120_000, 259_000, 890_000]), "quantity": rng.randint(1, 3)}
                 for _ in range(rng.randint(1, 4))]
        out.append({"type": "track", "userId": f"u-{rng.randrange(users)}", "event": "Order Completed",
                    "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
                    "timestamp": (start + timedelta(seconds=i)).isoformat(),
                    "properties": {"order_id": f"SO-{i}", "total": sum(p["price"] * p["quantity"] for p in items),
                                   "currency": "VND", "products": items}, "context": {}})
    return out


def _tree_cpu(pid: int) -> float:
    """CPU seconds of process `pid` and its children (the server's worker processes)."""
    from queue_drain import cpu_of

    total = cpu_of(pid)
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += _tree_cpu(int(child))
    except OSError:
        pass
    return total


def earning_rate(backend: str, events: list[dict], program: bool,
                 concurrency: int = 8) -> tuple[float, float | None, float, float]:
    """(events/s accepted, seconds after the last request until every order was credited or None, CPU
    seconds of the server (its processes, worker included) while the requests were sent, and until every
    order was credited). The CPU figures do not depend on the shared machine's load as the rate does."""
    import sqlalchemy as sa

    from clm.access.keys import create_write_key

    url = _url(backend)
    engine, session_factory = _session_factory(url)
    with session_factory() as s:
        _, key = create_write_key(s, "bench")
        s.commit()
    if program:
        _start_program(session_factory, datetime.now(UTC) - timedelta(days=30))
    port = _free_port()
    server = _server(url, port)
    try:
        auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        bodies = [json.dumps({"batch": events[i:i + 100]}).encode() for i in range(0, len(events), 100)]

        cpu0 = _tree_cpu(server.pid)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            accepted = sum(pool.map(lambda chunk: send_batches(port, auth, chunk, timeout=120),
                                    [bodies[i::concurrency] for i in range(concurrency)]))
        elapsed = time.perf_counter() - t0
        cpu_sending = _tree_cpu(server.pid) - cpu0
        assert accepted == len(events), (accepted, len(events))
        drained = None
        if program:
            done_at = time.perf_counter()
            while time.perf_counter() - done_at < 600:
                with engine.connect() as c:
                    if c.scalar(sa.text("SELECT count(*) FROM loyalty_order_points")) >= len(events):
                        drained = time.perf_counter() - done_at
                        break
                time.sleep(0.5)
        cpu_total = _tree_cpu(server.pid) - cpu0
        return len(events) / elapsed, drained, cpu_sending, cpu_total
    finally:
        server.terminate()
        server.wait(30)
        engine.dispose()


def earning(quick: bool, backends: tuple[str, ...]) -> list[dict]:
    n = 3_000 if quick else 10_000
    events = order_events(n, users=2_000)
    rows = []
    for backend in backends:
        without, _, cpu_without, _ = earning_rate(backend, events, program=False)
        with_program, drained, cpu_sending, cpu_with = earning_rate(backend, events, program=True)
        rows.append({"benchmark": "Order Completed via /v1/batch, in-process worker reacting", "backend": backend,
                     "events": n, "events_per_s_without_program": round(without),
                     "events_per_s_with_program": round(with_program), "ratio": round(with_program / without, 3),
                     "all_orders_credited_after_s": None if drained is None else round(drained, 1),
                     "server_cpu_s_without_program": round(cpu_without, 2),
                     "server_cpu_s_with_program_while_sending": round(cpu_sending, 2),
                     "server_cpu_s_with_program_until_credited": round(cpu_with, 2),
                     "load_1min": round(os.getloadavg()[0], 1)})
    return rows


def earning_cpu(backend: str, n: int = 3_000, batch: int = 500) -> dict:
    """CPU per order of earning, in this process and its PostgreSQL backend: one order at a time
    (`earning.earn_order`, the path before batches) against `batch_earning.earn_orders` on batches of
    `batch` (what the worker's outbox step does), the same kind of orders, a transaction per `batch` orders.
    Independent of the machine's load, unlike the ingestion ratio."""
    import sqlalchemy as sa
    from queue_drain import cpu_of

    from clm.commerce.models import Order, OrderItem, Product
    from clm.customers.models import Customer
    from clm.db.engine import for_writing
    from clm.loyalty.batch_earning import earn_orders
    from clm.loyalty.earning import earn_order
    from clm.loyalty.program import require_program
    from clm.loyalty.verify import verify

    now = datetime.now(UTC)
    engine, factory = _session_factory(_url(backend))
    _start_program(factory, now - timedelta(days=30))
    rng = random.Random(9)
    with factory() as s:
        s.execute(sa.insert(Customer), [{"full_name": f"Khách {i}", "search_text": "", "traits": {},
                                         "created_at": now, "updated_at": now} for i in range(2_000)])
        s.execute(sa.insert(Product), [{"sku": f"SKU-{i}", "category": rng.choice(["tea", "skincare", "gift"]),
                                        "currency": "VND", "properties": {}} for i in range(200)])
        customers, products = list(s.scalars(sa.select(Customer.id))), list(s.scalars(sa.select(Product.id)))
        for i in range(2 * n):
            items = [(rng.choice(products), rng.choice([45_000, 120_000, 259_000, 890_000]), rng.randint(1, 3))
                     for _ in range(rng.randint(1, 4))]
            order = Order(external_id=f"SO-{i}", customer_id=rng.choice(customers), status="completed",
                          currency="VND", total=sum(p * q for _, p, q in items),
                          placed_at=now - timedelta(days=2) + timedelta(seconds=i % n))
            s.add(order)
            s.flush()
            s.add_all([OrderItem(order_id=order.id, customer_id=order.customer_id, product_id=pid, price=p,
                                 quantity=q) for pid, p, q in items])
        s.commit()
        ids = list(s.scalars(sa.select(Order.id).order_by(Order.id)))
    out: dict = {"benchmark": f"earning CPU per order, {n} orders over 2,000 customers", "backend": backend}
    for name, work in (("one_by_one", ids[:n]), (f"batches_of_{batch}", ids[n:])):
        with factory() as s:
            pid = s.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar() if backend == "postgres" else None
            s.commit()
            own, theirs, t0 = time.process_time(), cpu_of(pid) if pid else 0.0, time.perf_counter()
            for start in range(0, n, batch):
                for_writing(s)
                program = require_program(s)
                if name == "one_by_one":
                    for order_id in work[start:start + batch]:
                        earn_order(s, program, order_id, now)
                else:
                    earn_orders(s, program, work[start:start + batch], now)
                s.commit()
            out[f"{name}_ms_cpu_process"] = round((time.process_time() - own) / n * 1000, 2)
            out[f"{name}_ms_cpu_backend"] = round(((cpu_of(pid) if pid else 0.0) - theirs) / n * 1000, 2)
            out[f"{name}_wall_s"] = round(time.perf_counter() - t0, 1)
    with factory() as s:
        out["verify_clean"] = verify(s) == []
    out["load_1min"] = round(os.getloadavg()[0], 1)
    engine.dispose()
    return out


# --- 2. the expiry run -----------------------------------------------------------------------------------


def _fill_lots(url: str, members: int, lots: int, now: datetime) -> None:
    """Customers, members, one entry and one lot per credit; each member's oldest lot expired an hour ago."""
    import psycopg

    dsn = url.replace("postgresql+psycopg", "postgresql")
    past, future = now - timedelta(hours=1), now + timedelta(days=200)
    earned = now - timedelta(days=300)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY customers (id, full_name, search_text, traits, created_at, updated_at) FROM STDIN") as cp:
            for i in range(1, members + 1):
                cp.write_row((i, f"Khách {i}", "", "{}", earned, earned))
        with cur.copy("COPY loyalty_members (customer_id, available, pending, debt, qualifying, earned, redeemed, "
                      "expired, lost, next_due_at, created_at, updated_at) FROM STDIN") as cp:
            for i in range(1, members + 1):
                cp.write_row((i, 10 * lots, 0, 0, 10 * lots, 10 * lots, 0, 0, 0, past, earned, earned))
        with cur.copy("COPY loyalty_entries (id, customer_id, key, kind, reason, source, available, pending, debt, "
                      "qualifying, lost, spend, details, created_at) FROM STDIN") as cp:
            for i in range(1, members + 1):
                for k in range(lots):
                    e = (i - 1) * lots + k + 1
                    cp.write_row((e, i, f"bench:{e}", "earn", "bench", "system", 10, 0, 0, 10, 0, 0, "{}", earned))
        with cur.copy("COPY loyalty_lots (id, customer_id, entry_id, points, remaining, released, available_at, "
                      "expires_at, created_at) FROM STDIN") as cp:
            for i in range(1, members + 1):
                for k in range(lots):
                    e = (i - 1) * lots + k + 1
                    cp.write_row((e, i, e, 10, 10, True, earned, past if k == 0 else future, earned))
        cur.execute("SELECT setval(pg_get_serial_sequence('customers', 'id'), (SELECT max(id) FROM customers))")
        cur.execute("SELECT setval(pg_get_serial_sequence('loyalty_entries', 'id'), "
                    "(SELECT max(id) FROM loyalty_entries))")
        cur.execute("SELECT setval(pg_get_serial_sequence('loyalty_lots', 'id'), (SELECT max(id) FROM loyalty_lots))")
        cur.execute("ANALYZE")
        conn.commit()


def _fill_lots_sql(url: str, members: int, lots: int, now: datetime) -> None:
    """The same data as `_fill_lots`, generated inside PostgreSQL (generate_series): 10,000,000 lots in
    minutes, not the Python loop's quarter of an hour. Secondary indexes are dropped for the fill and built
    afterwards, foreign keys are not checked (the rows are made consistent), then VACUUM ANALYZE."""
    import psycopg

    dsn = url.replace("postgresql+psycopg", "postgresql")
    past, future = now - timedelta(hours=1), now + timedelta(days=200)
    earned = now - timedelta(days=300)
    tables = ("customers", "loyalty_members", "loyalty_entries", "loyalty_lots")
    args = {"m": members, "k": lots, "n": members * lots, "past": past, "future": future, "earned": earned}
    with psycopg.connect(dsn, autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY(%s) "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)", (list(tables),)).fetchall()
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")  # no FK triggers during the fill
            for name, _ in indexes:
                conn.execute(f'DROP INDEX "{name}"')
            conn.execute("INSERT INTO customers (id, full_name, search_text, traits, created_at, updated_at) "
                         "SELECT i, 'Khách ' || i, '', '{}', %(earned)s, %(earned)s FROM generate_series(1, %(m)s) i",
                         args)
            conn.execute("INSERT INTO loyalty_members (customer_id, available, pending, debt, qualifying, earned, "
                         "redeemed, expired, lost, next_due_at, created_at, updated_at) "
                         "SELECT i, 10 * %(k)s, 0, 0, 10 * %(k)s, 10 * %(k)s, 0, 0, 0, %(past)s, %(earned)s, %(earned)s "
                         "FROM generate_series(1, %(m)s) i", args)
            conn.execute("INSERT INTO loyalty_entries (id, customer_id, key, kind, reason, source, available, pending, "
                         "debt, qualifying, lost, spend, details, created_at) "
                         "SELECT e, (e - 1) / %(k)s + 1, 'bench:' || e, 'earn', 'bench', 'system', 10, 0, 0, 10, 0, 0, "
                         "'{}', %(earned)s FROM generate_series(1, %(n)s) e", args)
            conn.execute("INSERT INTO loyalty_lots (id, customer_id, entry_id, points, remaining, released, "
                         "available_at, expires_at, created_at) "
                         "SELECT e, (e - 1) / %(k)s + 1, e, 10, 10, true, %(earned)s, "
                         "CASE WHEN (e - 1) %% %(k)s = 0 THEN %(past)s ELSE %(future)s END, %(earned)s "
                         "FROM generate_series(1, %(n)s) e", args)
            for _, definition in indexes:
                conn.execute(definition)
            for table in ("customers", "loyalty_entries", "loyalty_lots"):
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")  # noqa: S608 (fixed table names)
        conn.execute("VACUUM ANALYZE")


def _from_template(url: str, template: str, members: int, lots: int, now: datetime) -> float:
    """Make the database of `url` a copy of `template` (filled once with `_fill_lots_sql`: the fill of the
    full size takes minutes, a copy of its files less). Returns the seconds spent filling (0: reused)."""
    import sqlalchemy as sa

    base, name = url.rsplit("/", 1)
    admin = sa.create_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
    fill_s = 0.0
    with admin.connect() as c:
        exists = c.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": template})
    if exists:
        probe = sa.create_engine(f"{base}/{template}")
        with probe.connect() as c:
            size = c.scalar(sa.text("SELECT count(*) FROM loyalty_members"))
        probe.dispose()
        if size != members:
            exists = None
    if not exists:
        _reset_postgres(f"{base}/{template}")
        engine, session_factory = _session_factory(f"{base}/{template}")
        _start_program(session_factory, now - timedelta(days=400))
        engine.dispose()
        t = time.perf_counter()
        _fill_lots_sql(f"{base}/{template}", members, lots, now)
        fill_s = time.perf_counter() - t
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    admin.dispose()
    return fill_s


def expiry(quick: bool, members: int | None, lots: int, template: str | None = None, connections: int = 2,
           check: bool | None = None) -> list[dict]:
    """The sweep over `members` members holding `lots` lots each, a tenth due, as the worker runs it
    (`sweep.sweep` with a commit per chunk: on `connections` connections at once). `template`: fill that
    database once (generate_series) and copy it for each run. CPU: this process, and every PostgreSQL
    backend that served the sweep (given this process's niceness when it runs at nice -20, as root)."""
    import sqlalchemy as sa
    from queue_drain import cpu_of

    from clm.db.engine import for_writing, make_engine, make_session_factory
    from clm.loyalty import sweep, verify

    members = members or (2_000 if quick else 20_000)
    now = datetime.now(UTC)
    if template:
        fill_s = _from_template(PG_URL, template, members, lots, now)
        url = PG_URL
    else:
        url = _url("postgres")
        engine, session_factory = _session_factory(url)
        _start_program(session_factory, now - timedelta(days=400))
        engine.dispose()
        t_fill = time.perf_counter()
        _fill_lots(url, members, lots, now)
        fill_s = time.perf_counter() - t_fill
    engine = make_engine(url, pool_size=connections + 1, max_overflow=0)
    session_factory = make_session_factory(engine)
    backends: dict[int, float] = {}
    nice = os.getpriority(os.PRIO_PROCESS, 0)

    @sa.event.listens_for(engine, "connect")
    def _seen(dbapi_connection, _record) -> None:
        with dbapi_connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        if nice < 0:
            try:
                os.setpriority(os.PRIO_PROCESS, pid, nice)
            except OSError:
                pass
        backends[pid] = cpu_of(pid)

    chunks: list[float] = []
    with session_factory() as s:
        for_writing(s)
        cpu_own = time.process_time()

        def commit_chunk() -> None:
            s.commit()
            for_writing(s)

        t0 = time.perf_counter()
        visited = sweep.sweep(s, now, on_chunk=commit_chunk, connections=connections, timed=chunks.append)
        s.commit()
        total = time.perf_counter() - t0
        cpu_own = time.process_time() - cpu_own
        cpu_backend = sum(cpu_of(pid) - before for pid, before in backends.items())
        load = os.getloadavg()[0]
        expired = s.scalar(sa.text("SELECT coalesce(sum(expired), 0) FROM loyalty_members"))
        verify_s, clean = None, None
        if check if check is not None else members <= 20_000:
            t = time.perf_counter()
            clean = verify.verify(s) == []
            verify_s = round(time.perf_counter() - t, 1)
    engine.dispose()
    per_member = total / max(visited, 1)
    return [{"benchmark": f"expiry sweep (PostgreSQL, {connections} connections), oldest lot of each member due",
             "members": members, "lots": members * lots, "due_lots": members, "members_visited": visited,
             "points_expired": expired, "seconds": round(total, 1),
             "longest_chunk_s": round(max(chunks, default=total), 2), "chunks": len(chunks),
             "ms_per_member": round(per_member * 1000, 3),
             "cpu_s_sweep_process": round(cpu_own, 1), "cpu_s_postgres_backends": round(cpu_backend, 1),
             "nice": nice, "load_1min_after": round(load, 1), "fill_s": round(fill_s, 1),
             "verify_clean": clean, "verify_s": verify_s}]


# --- 3. redemptions through the API ----------------------------------------------------------------------


def redemptions(quick: bool, clients: int = 16) -> list[dict]:
    from clm.access.keys import create_api_key
    from clm.loyalty import ledger
    from clm.loyalty.program import require_program
    from clm.loyalty.rewards import RewardIn, save_reward

    n = 800 if quick else 4_000
    holders = 400
    now = datetime.now(UTC)
    url = _url("postgres")
    engine, session_factory = _session_factory(url)
    _start_program(session_factory, now - timedelta(days=30))
    with session_factory() as s:
        _, token = create_api_key(s, "bench", ["loyalty:write"])
        program = require_program(s)
        reward = save_reward(s, RewardIn(name="Phiếu 10.000 ₫", kind="voucher", points=10, value=10_000))
        import sqlalchemy as sa

        from clm.customers.models import Customer

        s.execute(sa.insert(Customer), [{"full_name": f"Khách {i}", "search_text": "", "traits": {},
                                         "created_at": now, "updated_at": now} for i in range(holders)])
        ids = list(s.scalars(sa.select(Customer.id).order_by(Customer.id)))
        for cid in ids:
            member = ledger.lock_member(s, cid, now)
            ledger.credit(s, member, program, key=f"bench:{cid}", points=100_000, reason="bench", source="system",
                          source_id=None, at=now, now=now)
        s.commit()
        reward_id = reward.id
    port = _free_port()
    server = _server(url, port, workers=2, with_worker=False)
    rng = random.Random(5)
    jobs = [(rng.choice(ids), f"bench-{i}") for i in range(n)]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    try:
        def client(part: list[tuple[int, str]]) -> list[tuple[int, float]]:
            out = []
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                              headers={"Authorization": f"Bearer {token}"}) as http:
                for customer_id, key in part:
                    t = time.perf_counter()
                    r = http.post("/api/v1/loyalty/redemptions", json={"customer_id": customer_id,
                                                                      "reward_id": reward_id},
                                  headers={"Idempotency-Key": key})
                    out.append((r.status_code, time.perf_counter() - t))
            return out

        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                          headers={"Authorization": f"Bearer {token}"}) as warm:
            warm.post("/api/v1/loyalty/redemptions", json={"customer_id": ids[0], "reward_id": reward_id},
                      headers={"Idempotency-Key": "warm-up"}).raise_for_status()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            for part in pool.map(client, [jobs[i::clients] for i in range(clients)]):
                for status, seconds in part:
                    statuses[status] = statuses.get(status, 0) + 1
                    latencies.append(seconds)
        elapsed = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait(30)
    from clm.loyalty import verify

    with session_factory() as s:
        clean = verify.verify(s) == []
    engine.dispose()
    latencies.sort()
    return [{"benchmark": f"POST /api/v1/loyalty/redemptions, {clients} clients, 2 server processes (PostgreSQL)",
             "redemptions": n, "members": holders, "statuses": json.dumps(statuses),
             "per_s": round(n / elapsed, 1), "p50_ms": round(latencies[len(latencies) // 2] * 1000),
             "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000), "verify_clean": clean}]


def run(quick: bool = False, only: tuple[str, ...] = ("earning", "expiry", "redeem"), members: int | None = None,
        lots: int = 10, backends: tuple[str, ...] = ("sqlite", "postgres"), template: str | None = None,
        connections: int = 2, check: bool | None = None) -> list[dict]:
    rows = []
    if "earning" in only:
        rows += earning(quick, backends)
    if "earning_cpu" in only:
        rows += [earning_cpu(backend) for backend in backends]
    if "expiry" in only:
        rows += expiry(quick, members, lots, template, connections, check)
    if "redeem" in only:
        rows += redemptions(quick)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="earning,expiry,redeem")
    parser.add_argument("--members", type=int, default=None)
    parser.add_argument("--lots", type=int, default=10)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--template", help="expiry: fill this PostgreSQL database once and copy it for each run")
    parser.add_argument("--connections", type=int, default=2, help="expiry: connections sweeping at once")
    parser.add_argument("--verify", action=argparse.BooleanOptionalAction, default=None,
                        help="expiry: run `verify` afterwards (default: up to 20,000 members)")
    args = parser.parse_args()
    for row in run(args.quick, tuple(args.only.split(",")), args.members, args.lots,
                   tuple(args.backend or ("sqlite", "postgres")), args.template, args.connections, args.verify):
        print(row)
