"""Jobs: a journey's worth of jobs enqueued in bulk, then drained by one and two workers.

1. Enqueue 1,000,000 jobs (`--quick` 100,000) of a three-step journey's first step, with
   `enqueue_many` (COPY on PostgreSQL, executemany on SQLite): jobs enqueued per second.
2. Drain: each job records its effect under an idempotency key and enqueues the customer's next step
   (a day later), as a journey step does; in `per-job` mode each job has its own transaction, in
   `batch` mode (a batchable kind) a claimed batch shares one transaction, a savepoint per job. Jobs
   per second with one worker and with two worker processes on PostgreSQL (the scaling ratio), and one
   worker on SQLite. Each worker drains a fixed number of due jobs from the big queue (not all of it:
   the rate is steady). CPU seconds are measured per worker process and per PostgreSQL backend serving
   it (/proc), with the machine's load average, because the machine is shared.

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


def _registry(batch: bool = True):
    from clm.jobs import queue
    from clm.jobs.effects import record_effect
    from clm.jobs.runner import Registry

    def step(session, job):
        customer, n = job.args["customer_id"], job.args["step"]
        if record_effect(session, f"bench:{customer}:{n}", job.id) and n < 3:
            queue.enqueue(session, "journey.step", {"customer_id": customer, "step": n + 1},
                          run_at=job.lease_expires_at + timedelta(days=1))

    registry = Registry()
    registry.register("journey.step", step, batchable=batch)
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


def _cpu_of(pid: int) -> float:
    from queue_drain import cpu_of

    return cpu_of(pid)


def drain(url: str, count: int, name: str, mode: str = "batch") -> dict:
    """Run `count` due jobs as worker `name`; its jobs per second and CPU seconds (its own and its
    PostgreSQL backend's). Also the subprocess entry point."""
    from queue_drain import drain_jobs

    return drain_jobs(url, _registry(batch=mode == "batch"), name, count, pool_size=1)


def _two_workers(url: str, count: int, mode: str) -> dict:
    procs = [subprocess.Popen([sys.executable, __file__, "--drain", url, str(count // 2), f"bench-{i}", mode],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True) for i in range(2)]
    results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    return {"jobs": sum(r["jobs"] for r in results), "seconds": max(r["seconds"] for r in results),
            "worker_cpu": sum(r["worker_cpu"] for r in results),
            "backend_cpu": sum(r.get("backend_cpu", 0.0) for r in results)}


def _row(database: str, what: str, result: dict) -> dict:
    row = {"database": database, "what": what, "seconds": result["seconds"], "jobs": result["jobs"],
           "per_second": result["jobs"] / result["seconds"], "worker_cpu_s": result["worker_cpu"],
           "load_1min": os.getloadavg()[0]}
    if "backend_cpu" in result:
        row["postgres_backend_cpu_s"] = result["backend_cpu"]
    return row


def run(quick: bool = False) -> list[dict]:
    total = 100_000 if quick else 1_000_000
    drained = 4_000 if quick else 20_000
    rows = []
    pg = _fresh(PG_URL)
    seconds = _enqueue(pg, total)
    rows.append({"database": "postgresql", "what": f"enqueue {total:,} jobs", "seconds": seconds,
                 "per_second": total / seconds})
    for mode in ("per-job", "batch"):
        one = drain(PG_URL, drained, "bench-solo", mode)
        rows.append(_row("postgresql", f"1 worker, {mode}", one))
        two = _two_workers(PG_URL, drained, mode)
        rows.append({**_row("postgresql", f"2 worker processes, {mode}", two),
                     "scaling": (two["jobs"] / two["seconds"]) / (one["jobs"] / one["seconds"])})
    pg.dispose()
    OUT.mkdir(parents=True, exist_ok=True)
    lite_url = f"sqlite:///{OUT}/jobs_bench.db"
    lite = _fresh(lite_url)
    seconds = _enqueue(lite, total)
    rows.append({"database": "sqlite", "what": f"enqueue {total:,} jobs", "seconds": seconds,
                 "per_second": total / seconds})
    for mode in ("per-job", "batch"):
        rows.append(_row("sqlite", f"1 worker, {mode}", drain(lite_url, drained, "bench-solo", mode)))
    lite.dispose()
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--drain", nargs=4, metavar=("URL", "COUNT", "NAME", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drain:
        print(json.dumps(drain(args.drain[0], int(args.drain[1]), args.drain[2], args.drain[3])))
    else:
        for row in run(quick=args.quick):
            print(row)
