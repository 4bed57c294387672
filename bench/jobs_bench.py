"""Jobs: a journey's worth of jobs enqueued in bulk, then drained by one and two workers.

1. Enqueue 1,000,000 jobs (`--quick` 100,000) of a three-step journey's first step, with
   `enqueue_many` (COPY on PostgreSQL, executemany on SQLite): jobs enqueued per second.
2. Drain: each job records its effect under an idempotency key and enqueues the customer's next step
   (a day later) in its own transaction, as a journey step does. Jobs per second with one worker and
   with two worker processes on PostgreSQL (the scaling ratio), and one worker on SQLite. Each worker
   drains a fixed number of due jobs from the big queue (not all of it: the rate is steady).

PostgreSQL: CLM_BENCH_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/clm_bench_jobs,
created when missing). python bench/jobs_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get("CLM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/clm_bench_jobs")
CHUNK = 50_000


def _registry():
    from clm.jobs import queue
    from clm.jobs.effects import record_effect
    from clm.jobs.runner import Registry

    def step(session, job):
        customer, n = job.args["customer_id"], job.args["step"]
        if record_effect(session, f"bench:{customer}:{n}", job.id) and n < 3:
            queue.enqueue(session, "journey.step", {"customer_id": customer, "step": n + 1},
                          run_at=job.lease_expires_at + timedelta(days=1))

    registry = Registry()
    registry.register("journey.step", step)
    return registry


def _fresh(url: str) -> sa.Engine:
    from clm.db.engine import make_engine
    from clm.db.migrate import upgrade

    if url.startswith("postgresql"):
        base, name = url.rsplit("/", 1)
        admin = make_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if not conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    else:
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        engine = make_engine(url)
    upgrade(engine)
    return engine


def _enqueue(engine: sa.Engine, total: int) -> float:
    from clm.db.engine import for_writing, make_session_factory
    from clm.jobs.queue import enqueue_many

    factory = make_session_factory(engine)
    started = time.perf_counter()
    for first in range(0, total, CHUNK):
        with factory() as session:
            for_writing(session)
            enqueue_many(session, "journey.step",
                         [{"customer_id": c, "step": 1} for c in range(first, min(total, first + CHUNK))])
            session.commit()
    return time.perf_counter() - started


def drain(url: str, count: int, name: str) -> dict:
    """Run `count` due jobs as worker `name`; its jobs per second (also the subprocess entry point)."""
    from clm.db.engine import make_engine, make_session_factory
    from clm.jobs.runner import run_due

    factory = make_session_factory(make_engine(url))
    registry = _registry()
    done, started = 0, time.perf_counter()
    while done < count:
        ran = run_due(factory, registry, name, limit=min(100, count - done))
        if not ran:
            break
        done += ran
    elapsed = time.perf_counter() - started
    return {"jobs": done, "seconds": elapsed}


def _two_workers(url: str, count: int) -> dict:
    procs = [subprocess.Popen([sys.executable, __file__, "--drain", url, str(count // 2), f"bench-{i}"],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True) for i in range(2)]
    results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    return {"jobs": sum(r["jobs"] for r in results), "seconds": max(r["seconds"] for r in results)}


def run(quick: bool = False) -> list[dict]:
    total = 100_000 if quick else 1_000_000
    drained = 4_000 if quick else 20_000
    rows = []
    pg = _fresh(PG_URL)
    seconds = _enqueue(pg, total)
    rows.append({"database": "postgresql", "what": f"enqueue {total:,} jobs", "seconds": seconds,
                 "per_second": total / seconds})
    one = drain(PG_URL, drained, "bench-solo")
    rows.append({"database": "postgresql", "what": "1 worker", "seconds": one["seconds"], "jobs": one["jobs"],
                 "per_second": one["jobs"] / one["seconds"]})
    two = _two_workers(PG_URL, drained)
    ratio = (two["jobs"] / two["seconds"]) / (one["jobs"] / one["seconds"])
    rows.append({"database": "postgresql", "what": "2 worker processes", "seconds": two["seconds"],
                 "jobs": two["jobs"], "per_second": two["jobs"] / two["seconds"], "scaling": ratio})
    pg.dispose()
    OUT.mkdir(parents=True, exist_ok=True)
    lite_url = f"sqlite:///{OUT}/jobs_bench.db"
    lite = _fresh(lite_url)
    seconds = _enqueue(lite, total)
    rows.append({"database": "sqlite", "what": f"enqueue {total:,} jobs", "seconds": seconds,
                 "per_second": total / seconds})
    solo = drain(lite_url, drained, "bench-solo")
    rows.append({"database": "sqlite", "what": "1 worker", "seconds": solo["seconds"], "jobs": solo["jobs"],
                 "per_second": solo["jobs"] / solo["seconds"]})
    lite.dispose()
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--drain", nargs=3, metavar=("URL", "COUNT", "NAME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drain:
        print(json.dumps(drain(args.drain[0], int(args.drain[1]), args.drain[2])))
    else:
        for row in run(quick=args.quick):
            print(row)
