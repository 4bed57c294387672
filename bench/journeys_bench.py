"""Journeys: N customers entering a three-step journey, steps per second, and the lag of due steps.

The journey: wait (1 day) -> update a trait (an action: its effect key, the profile change and its
`customer.updated` outbox row) -> exit. Three steps per customer, each a `journey.step` job run by the
real engine through the real registry (`clm.jobs.registry.build_registry`), batched as `clm worker` runs
them (a claimed batch of 100 in one transaction, a savepoint per step).

1. **Enqueue**: N customers enter through `clm.journeys.entry.enter` (what every trigger calls: re-entry
   check, runs written in bulk, first steps with `enqueue_many`, COPY on PostgreSQL), entered a day
   ago so every first step is due now.
2. **Steps per second** with the N runs in the journey: one worker drains a fixed number of due steps,
   then two worker processes do the same (the ratio is the scaling; target 1.7x). SQLite: one worker.
3. **Lag**: the backlog is moved a day ahead (so the N runs wait, as in a shop where most customers
   are inside a long wait), then a stream of new customers enters with their wait ending at a steady
   rate (`rate` per second for `seconds`); worker processes run the queue as `clm worker`'s job step
   does (claim up to 100, run, repeat; sleep CLM_WORKER_POLL_SECONDS when nothing is due). The lag of a
   step is `attempted_at - scheduled_at` of its job; p50, p95 and max over every step of the stream
   (the wait's end and the two steps it makes due at once). Target: within 5 s.

The machine is shared (2 cores, other engineers' test suites and benchmarks): every row carries the
1-minute load average, and CPU seconds of the worker processes.

PostgreSQL: CLM_BENCH_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/clm_bench_journeys,
created when missing). python bench/journeys_bench.py [--quick] [--customers N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PG_URL = os.environ.get("CLM_BENCH_POSTGRES_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/clm_bench_journeys")
TZ = "Asia/Ho_Chi_Minh"
CHUNK = 20_000
NAME = "bench: three steps"
DEFINITION = {"trigger": {"type": "api"}, "start": "wait", "nodes": [
    {"id": "wait", "type": "wait", "duration": {"days": 1}, "next": "mark"},
    {"id": "mark", "type": "update_trait", "trait": "bench", "value": True, "next": "end"},
    {"id": "end", "type": "exit"}]}


def _fresh(url: str) -> sa.Engine:
    from jobs_bench import _fresh as fresh

    return fresh(url)


def _customers(engine: sa.Engine, total: int, first: int = 1) -> float:
    """`total` bare customers (ids first..), written in bulk; seconds taken."""
    from clm.customers.models import Customer
    from clm.db.bulk import insert_rows
    from clm.db.engine import for_writing, make_session_factory

    factory = make_session_factory(engine)
    now = datetime.now(UTC)
    started = time.perf_counter()
    for start in range(first, first + total, CHUNK):
        end = min(first + total, start + CHUNK)
        with factory() as session:
            for_writing(session)
            insert_rows(session, Customer.__table__, ("id", "traits", "search_text", "created_at", "updated_at",
                                                      "first_seen_at", "last_seen_at"),
                        [(i, {}, "", now, now, now, now) for i in range(start, end)])
            session.commit()
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('customers', 'id'), "
                                 "(SELECT max(id) FROM customers))")
    return time.perf_counter() - started


def _journey(engine: sa.Engine) -> int:
    from clm.db.engine import for_writing, make_session_factory
    from clm.journeys import service

    with make_session_factory(engine)() as session:
        for_writing(session)
        journey = service.save_journey(session, name=NAME, definition=DEFINITION,
                                       now=datetime.now(UTC) - timedelta(days=3))
        service.activate(session, journey.id, now=datetime.now(UTC) - timedelta(days=3), timezone=TZ)
        session.commit()
        return journey.id


def enter(engine: sa.Engine, journey_id: int, ids: range, entered_at: datetime, chunk: int = CHUNK) -> float:
    """Enter customers `ids` as of `entered_at` through entry.enter, a transaction per chunk; seconds."""
    from clm.db.engine import for_writing, make_session_factory
    from clm.journeys import entry

    factory = make_session_factory(engine)
    started = time.perf_counter()
    for start in range(ids.start, ids.stop, chunk):
        with factory() as session:
            for_writing(session)
            live = [lv for lv in entry.live_journeys(session) if lv.journey.id == journey_id][0]
            entry.enter(session, live, [(c, f"bench:{c}", {}) for c in range(start, min(ids.stop, start + chunk))],
                        entered_at, TZ)
            session.commit()
    return time.perf_counter() - started


def _cpu_of(pid: int) -> float:
    from jobs_bench import _cpu_of as cpu_of

    return cpu_of(pid)


def _worker_factory(url: str):
    from clm.config import get_settings
    from clm.db.engine import make_engine, make_session_factory
    from clm.jobs.registry import build_registry

    engine = make_engine(url, pool_size=2, max_overflow=0) if url.startswith("postgresql") else make_engine(url)
    return engine, make_session_factory(engine), build_registry(get_settings())


def drain(url: str, count: int, name: str) -> dict:
    """Run `count` due steps as worker `name` (batches of 100, as clm worker); steps/s and CPU. Also the
    subprocess entry point."""
    from clm.jobs.runner import run_due

    engine, factory, registry = _worker_factory(url)
    backend = None
    if url.startswith("postgresql"):
        with engine.connect() as conn:
            backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    backend_cpu, own_cpu = _cpu_of(backend) if backend else 0.0, time.process_time()
    done, started = 0, time.perf_counter()
    while done < count:
        ran = run_due(factory, registry, name, limit=min(100, count - done))
        if not ran:
            break
        done += ran
    out = {"steps": done, "seconds": time.perf_counter() - started, "worker_cpu": time.process_time() - own_cpu}
    if backend:
        out["backend_cpu"] = _cpu_of(backend) - backend_cpu
    engine.dispose()
    return out


def serve(url: str, until: float, name: str) -> dict:
    """`clm worker`'s job step until the wall clock passes `until`: claim up to 100 due steps and run them,
    sleep CLM_WORKER_POLL_SECONDS when none is due. Also a subprocess entry point."""
    from clm.config import get_settings
    from clm.jobs.runner import run_due

    poll = get_settings().worker_poll_seconds
    engine, factory, registry = _worker_factory(url)
    own_cpu, done = time.process_time(), 0
    while time.time() < until:
        ran = run_due(factory, registry, name, limit=100)
        done += ran
        if not ran:
            time.sleep(poll)
    engine.dispose()
    return {"steps": done, "worker_cpu": time.process_time() - own_cpu}


def _spawn(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen) -> dict:
    return json.loads(proc.communicate()[0].strip().splitlines()[-1])


def _two_workers(url: str, count: int) -> dict:
    procs = [_spawn(["--drain", url, str(count // 2), f"bench-{i}"]) for i in range(2)]
    results = [_result(p) for p in procs]
    return {"steps": sum(r["steps"] for r in results), "seconds": max(r["seconds"] for r in results),
            "worker_cpu": sum(r["worker_cpu"] for r in results),
            "backend_cpu": sum(r.get("backend_cpu", 0.0) for r in results)}


def _row(database: str, what: str, result: dict, customers: int) -> dict:
    row = {"database": database, "what": what, "customers": customers, "steps": result["steps"],
           "seconds": result["seconds"], "per_second": result["steps"] / result["seconds"],
           "worker_cpu_s": result["worker_cpu"], "load_1min": os.getloadavg()[0]}
    if "backend_cpu" in result:
        row["postgres_backend_cpu_s"] = result["backend_cpu"]
    return row


def lag(url: str, engine: sa.Engine, journey_id: int, first_id: int, rate: int, seconds: int, workers: int) -> dict:
    """The stream of section 3 of the docstring; lag percentiles in seconds."""
    from clm.jobs.models import WAITING, Job

    jobs = Job.__table__
    with engine.begin() as conn:  # the backlog waits: most customers are inside a long wait
        conn.execute(sa.update(jobs).where(jobs.c.state.in_(WAITING))
                     .values(scheduled_at=datetime.now(UTC) + timedelta(days=1)))
    stream = rate * seconds
    _customers(engine, stream, first=first_id)
    # The stream is entered ahead (a group per second of it, entered a day before its wait ends at
    # t0 + k s); t0 leaves time for that, so no step is due before the workers run.
    t0 = datetime.now(UTC) + timedelta(seconds=20 + seconds // 2)
    for k in range(seconds):
        ids = range(first_id + k * rate, first_id + (k + 1) * rate)
        enter(engine, journey_id, ids, t0 + timedelta(seconds=k) - timedelta(days=1))
    late = datetime.now(UTC) > t0
    until = (t0 + timedelta(seconds=seconds + 30)).timestamp()
    wait = t0.timestamp() - time.time()
    procs = [_spawn(["--serve", url, str(until), f"lag-{i}"]) for i in range(workers)]
    load = []
    if wait > 0:
        time.sleep(wait)
    while time.time() < until:
        load.append(os.getloadavg()[0])
        time.sleep(5)
    results = [_result(p) for p in procs]
    with engine.connect() as conn:  # the stream's steps: due from t0 on (the backlog is due a day later)
        rows = conn.execute(sa.select(jobs.c.scheduled_at, jobs.c.attempted_at).where(
            jobs.c.kind == "journey.step", jobs.c.scheduled_at >= t0 - timedelta(seconds=1),
            jobs.c.scheduled_at < t0 + timedelta(hours=1))).all()
    lags = sorted((r.attempted_at - r.scheduled_at).total_seconds() for r in rows if r.attempted_at is not None)
    waiting = sum(1 for r in rows if r.attempted_at is None)
    return {"stream_customers": stream, "rate_per_s": rate, "steps_started": len(lags), "steps_not_started": waiting,
            "lag_p50_s": statistics.median(lags) if lags else None,
            "lag_p95_s": lags[int(0.95 * (len(lags) - 1))] if lags else None, "lag_max_s": lags[-1] if lags else None,
            "workers": workers, "stream_entered_late": late, "worker_cpu_s": sum(r["worker_cpu"] for r in results),
            "load_1min": max(load) if load else os.getloadavg()[0]}


def measure(url: str, database: str, total: int, drained: int, two: bool, rate: int, seconds: int) -> list[dict]:
    engine = _fresh(url)
    rows = []
    made = _customers(engine, total)
    rows.append({"database": database, "what": f"create {total:,} customers (bulk)", "customers": total,
                 "seconds": made, "per_second": total / made, "load_1min": os.getloadavg()[0]})
    journey_id = _journey(engine)
    took = enter(engine, journey_id, range(1, total + 1), datetime.now(UTC) - timedelta(days=1, minutes=1))
    rows.append({"database": database, "what": f"enqueue: {total:,} customers enter", "customers": total,
                 "seconds": took, "per_second": total / took, "load_1min": os.getloadavg()[0]})
    one = drain(url, drained, "bench-solo")
    rows.append(_row(database, "steps, 1 worker", one, total))
    if two:
        both = _two_workers(url, drained)
        rows.append({**_row(database, "steps, 2 worker processes", both, total),
                     "scaling": (both["steps"] / both["seconds"]) / (one["steps"] / one["seconds"])})
    result = lag(url, engine, journey_id, total + 1, rate, seconds, 2 if two else 1)
    rows.append({"database": database, "what": f"lag of due steps, {result['workers']} worker(s)",
                 "customers": total, **result})
    engine.dispose()
    return rows


def run(quick: bool = False, customers: int | None = None) -> list[dict]:
    total = customers or (100_000 if quick else 1_000_000)
    drained = 3_000 if quick else 20_000
    rate, seconds = (20, 30) if quick else (50, 120)
    rows = measure(PG_URL, "postgresql", total, drained, True, rate, seconds)
    OUT.mkdir(parents=True, exist_ok=True)
    rows += measure(f"sqlite:///{OUT}/journeys_bench.db", "sqlite", total, drained, False, rate, seconds)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--customers", type=int, help="customers entering (default 1,000,000; --quick 100,000)")
    parser.add_argument("--drain", nargs=3, metavar=("URL", "COUNT", "NAME"), help=argparse.SUPPRESS)
    parser.add_argument("--serve", nargs=3, metavar=("URL", "UNTIL", "NAME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drain:
        print(json.dumps(drain(args.drain[0], int(args.drain[1]), args.drain[2])))
    elif args.serve:
        print(json.dumps(serve(args.serve[0], float(args.serve[1]), args.serve[2])))
    else:
        for row in run(quick=args.quick, customers=args.customers):
            print(row)
