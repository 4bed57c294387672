"""Loyalty benchmarks (issue 9):

1. Earning inline: `Order Completed` events through /v1/batch with the in-process worker reacting, with a
   program active (1 point per 10,000 VND, the default tiers) against none; the goal is a ratio >= 0.8. Also
   how long after the last request the worker had credited every order.
2. The expiry run: `members` members holding `lots` lots each on PostgreSQL, the oldest lot of each one due
   (a tenth of the lots when lots = 10); the sweep's total time and its longest chunk (members are locked
   for one chunk's transaction). Sizes are parameters (--members, --lots); the issue's target is 1,000,000
   members and 10,000,000 lots.
3. Redemptions through the API on PostgreSQL with 16 concurrent clients: redemptions/s and p99 latency.

python bench/loyalty_bench.py [--quick] [--only earning,expiry,redeem] [--members N] [--lots K]
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


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` (a PostgreSQL backend on this machine)."""
    from jobs_bench import _cpu_of as cpu_of

    return cpu_of(pid)


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


def earning_rate(backend: str, events: list[dict], program: bool, concurrency: int = 8) -> tuple[float, float | None]:
    """(events/s accepted, seconds after the last request until every order was credited or None)."""
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

        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            accepted = sum(pool.map(lambda chunk: send_batches(port, auth, chunk, timeout=120),
                                    [bodies[i::concurrency] for i in range(concurrency)]))
        elapsed = time.perf_counter() - t0
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
        return len(events) / elapsed, drained
    finally:
        server.terminate()
        server.wait(30)
        engine.dispose()


def earning(quick: bool, backends: tuple[str, ...]) -> list[dict]:
    n = 3_000 if quick else 10_000
    events = order_events(n, users=2_000)
    rows = []
    for backend in backends:
        without, _ = earning_rate(backend, events, program=False)
        with_program, drained = earning_rate(backend, events, program=True)
        rows.append({"benchmark": "Order Completed via /v1/batch, in-process worker reacting", "backend": backend,
                     "events": n, "events_per_s_without_program": round(without),
                     "events_per_s_with_program": round(with_program), "ratio": round(with_program / without, 3),
                     "all_orders_credited_after_s": None if drained is None else round(drained, 1)})
    return rows


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


def expiry(quick: bool, members: int | None, lots: int) -> list[dict]:
    import sqlalchemy as sa

    from clm.db.engine import for_writing
    from clm.loyalty import sweep, verify

    members = members or (2_000 if quick else 20_000)
    now = datetime.now(UTC)
    url = _url("postgres")
    engine, session_factory = _session_factory(url)
    _start_program(session_factory, now - timedelta(days=400))
    t_fill = time.perf_counter()
    _fill_lots(url, members, lots, now)
    fill_s = time.perf_counter() - t_fill
    chunks: list[float] = []
    with session_factory() as s:
        for_writing(s)
        backend = s.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
        cpu_backend, cpu_own = _cpu_of(backend), time.process_time()
        mark = [time.perf_counter()]

        def commit_chunk() -> None:
            s.commit()
            chunks.append(time.perf_counter() - mark[0])
            for_writing(s)
            mark[0] = time.perf_counter()

        t0 = time.perf_counter()
        visited = sweep.sweep(s, now, on_chunk=commit_chunk)
        s.commit()
        total = time.perf_counter() - t0
        cpu_own, cpu_backend = time.process_time() - cpu_own, _cpu_of(backend) - cpu_backend
        load = os.getloadavg()[0]
        expired = s.scalar(sa.text("SELECT coalesce(sum(expired), 0) FROM loyalty_members"))
        clean = verify.verify(s) == [] if members <= 20_000 else None
    engine.dispose()
    per_member = total / max(visited, 1)
    return [{"benchmark": "expiry sweep (PostgreSQL), oldest lot of each member due", "members": members,
             "lots": members * lots, "due_lots": members, "members_visited": visited, "points_expired": expired,
             "seconds": round(total, 1), "longest_chunk_s": round(max(chunks, default=total), 2),
             "ms_per_member": round(per_member * 1000, 2),
             "estimated_s_at_1M_members_10M_lots": round(per_member * 1_000_000),
             "cpu_s_sweep_process": round(cpu_own, 1), "cpu_s_postgres_backend": round(cpu_backend, 1),
             "load_1min_after": round(load, 1), "fill_s": round(fill_s, 1), "verify_clean": clean}]


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
        lots: int = 10, backends: tuple[str, ...] = ("sqlite", "postgres")) -> list[dict]:
    rows = []
    if "earning" in only:
        rows += earning(quick, backends)
    if "expiry" in only:
        rows += expiry(quick, members, lots)
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
    args = parser.parse_args()
    for row in run(args.quick, tuple(args.only.split(",")), args.members, args.lots,
                   tuple(args.backend or ("sqlite", "postgres"))):
        print(row)
