"""What the queue benchmarks share: one worker draining due jobs, timed, with the CPU it and its
PostgreSQL backend used (the machine is shared, so wall time alone says little)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc (0.0 where /proc is not readable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def drain_jobs(url: str, registry, name: str, count: int, *, pool_size: int = 1, batch: int = 100,
               backend_nice: int | None = None) -> dict:
    """Run up to `count` due jobs as worker `name`, `batch` claimed at a time as `clm worker` does, until
    none is due: {"jobs", "seconds", "worker_cpu"} and, on PostgreSQL, "backend_cpu" (every backend that
    served one of the worker's connections, from when it connected). `backend_nice`: give those backends
    that niceness (a benchmark run at `nice -n -20`: their work is the benchmark's too; needs root)."""
    import sqlalchemy as sa

    from clm.db.engine import make_engine, make_session_factory
    from clm.jobs.runner import run_due

    postgres = url.startswith("postgresql")
    engine = make_engine(url, pool_size=pool_size, max_overflow=0) if postgres else make_engine(url)
    factory = make_session_factory(engine)
    backends: dict[int, float] = {}  # pid -> its CPU seconds when first seen
    if postgres:
        @sa.event.listens_for(engine, "connect")
        def _seen(dbapi_connection, _record) -> None:
            with dbapi_connection.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                pid = cur.fetchone()[0]
            if backend_nice is not None:
                try:
                    os.setpriority(os.PRIO_PROCESS, pid, backend_nice)
                except OSError:
                    pass
            backends[pid] = cpu_of(pid)

        with engine.connect():
            pass
    own_cpu = time.process_time()
    done, started = 0, time.perf_counter()
    while done < count:
        ran = run_due(factory, registry, name, limit=min(batch, count - done))
        if not ran:
            break
        done += ran
    out = {"jobs": done, "seconds": time.perf_counter() - started, "worker_cpu": time.process_time() - own_cpu}
    if backends:
        out["backend_cpu"] = sum(cpu_of(pid) - before for pid, before in backends.items())
    engine.dispose()
    return out
