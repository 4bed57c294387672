"""Segments: a four-condition segment against hand-written SQL, and ingestion with 50 segments defined.

1. On a `clm demo` database (SQLite; 1,000,000 customers, `--quick` 20,000), count the members of
   "stage in (retention, loyalty) and city is Hà Nội and viewed a product of one category in the last 30
   days and 2+ orders" through the compiler, and through a hand-written query for the same question, in the
   same run (best of 3 each).
2. Ingestion with membership upkeep: batches of tracked events go through the ingestion pipeline and then
   the segments' events consumer (what the worker does), first with no segments, then with 50 dynamic
   segments defined; events per second for each, and the ratio.

    python bench/segments_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

FOUR = {"all": [
    {"type": "stage", "stages": ["retention", "loyalty"]},
    {"type": "profile", "field": "city", "op": "eq", "value": "Hà Nội"},
    {"type": "event", "name": "Product Viewed", "count": 1, "window": {"last_days": 30},
     "where": [{"property": "category", "op": "eq", "value": "CATEGORY"}]},
    {"type": "orders", "metric": "count", "op": "gte", "value": 2},
]}
# The hand-written queries: what someone who knows the schema writes for the same question (the customer's
# events through the (customer_id, timestamp) index, as EXISTS), and the naive IN form for reference.
HAND = {
    "sqlite": """
SELECT count(*) FROM customers c JOIN customer_stats s ON s.customer_id = c.id
WHERE c.merged_into_id IS NULL AND c.lifecycle_stage IN ('retention', 'loyalty') AND c.city = :city
  AND s.orders_count >= 2
  AND EXISTS (SELECT 1 FROM events e WHERE e.customer_id = c.id AND e.timestamp >= :since
              AND e.name = 'Product Viewed' AND json_extract(e.properties, '$.category') = :category)
""",
    "postgresql": """
SELECT count(*) FROM customers c JOIN customer_stats s ON s.customer_id = c.id
WHERE c.merged_into_id IS NULL AND c.lifecycle_stage IN ('retention', 'loyalty') AND c.city = :city
  AND s.orders_count >= 2
  AND EXISTS (SELECT 1 FROM events e WHERE e.customer_id = c.id AND e.timestamp >= :since
              AND e.name = 'Product Viewed' AND e.properties ->> 'category' = :category)
"""}
HAND_IN = {
    "sqlite": HAND["sqlite"].replace("EXISTS (SELECT 1 FROM events e WHERE e.customer_id = c.id AND",
                                     "c.id IN (SELECT e.customer_id FROM events e WHERE"),
    "postgresql": HAND["postgresql"].replace("EXISTS (SELECT 1 FROM events e WHERE e.customer_id = c.id AND",
                                             "c.id IN (SELECT e.customer_id FROM events e WHERE"),
}
PG_URL = os.environ.get("CLM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/demo1m")
# What the four-condition segment reads, copied from the SQLite demo into PostgreSQL (the same rows).
COPIED = ("customers", "customer_stats", "events")


def _demo(customers: int) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    db = OUT / f"segments_{customers}.db"
    if not db.exists():
        subprocess.run([sys.executable, "-m", "clm.cli", "demo", "--customers", str(customers), "--no-serve",
                        "--db", str(db), "--password", "bench-password"], check=True, cwd=ROOT, capture_output=True)
    return db


def _best(fn, times: int = 3) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(times):
        started = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - started)
    return best, value


def four_conditions(session: Session, customers: int, times: int = 3) -> dict:
    from clm.segments.compile import members_query, utc_midnight, window_days
    from clm.segments.lookup import make_context
    from clm.segments.rules import Window, parse_rules
    from clm.tracking.models import Event

    dialect = session.get_bind().dialect.name
    now = session.scalar(sa.select(sa.func.max(Event.timestamp)))
    category_of = (sa.func.json_extract(Event.properties, "$.category") if dialect == "sqlite"
                   else Event.properties.op("->>")("category"))
    category = session.scalar(sa.select(category_of).where(Event.name == "Product Viewed", category_of.is_not(None))
                              .order_by(Event.id.desc()).limit(1))
    rules = {"all": [*FOUR["all"][:2], {**FOUR["all"][2], "where": [{**FOUR["all"][2]["where"][0], "value": category}]},
                     FOUR["all"][3]]}
    node = parse_rules(rules)
    query = members_query(node, make_context(session, now))
    compiled_s, compiled = _best(lambda: session.scalar(sa.select(sa.func.count()).select_from(query.subquery())),
                                 times)
    since = utc_midnight(window_days(Window(last_days=30), now)[0])
    params = {"city": "Hà Nội", "category": category,
              "since": since.isoformat(" ", "microseconds")[:26] if dialect == "sqlite" else since}
    hand_s, hand = _best(lambda: session.scalar(sa.text(HAND[dialect]), params), times)
    naive_s, naive = _best(lambda: session.scalar(sa.text(HAND_IN[dialect]), params), 1)
    assert compiled == hand == naive, (compiled, hand, naive)
    return {"benchmark": f"four-condition segment ({'SQLite' if dialect == 'sqlite' else 'PostgreSQL'})",
            "customers": customers, "members": compiled, "compiled_s": round(compiled_s, 3),
            "hand_sql_s": round(hand_s, 3), "ratio": round(compiled_s / hand_s, 2) if hand_s else None,
            "hand_sql_in_form_s": round(naive_s, 3)}


def copy_to_postgres(sqlite_path: Path, url: str = PG_URL, tables: tuple[str, ...] = COPIED) -> dict:
    """A migrated PostgreSQL database holding the same rows of `tables` as the SQLite demo (COPY, streamed),
    analysed. Built once: skipped when the database already holds as many customers."""
    import sqlite3

    import psycopg

    from clm.db.engine import make_engine
    from clm.db.migrate import upgrade
    from clm.db.models import metadata

    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    want = source.execute("SELECT count(*) FROM customers").fetchone()[0]
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        exists = c.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).first()
        if not exists:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    engine = make_engine(url)
    with engine.connect() as c:
        has = c.exec_driver_sql("SELECT to_regclass('customers') IS NOT NULL").scalar() and c.exec_driver_sql(
            "SELECT count(*) FROM customers").scalar()
    if has == want:
        engine.dispose()
        return {"copied": 0, "seconds": 0}
    with engine.begin() as c:
        c.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    upgrade(engine)
    engine.dispose()
    started, copied = time.perf_counter(), 0
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        for table in tables:
            columns = [col.name for col in metadata.tables[table].columns]
            names = ", ".join(f'"{col}"' for col in columns)
            with conn.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # noqa: S608 (metadata names)
                for row in source.execute(f"SELECT {names} FROM {table}"):  # noqa: S608
                    copy.write_row(row)
                    copied += 1
            conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    source.close()
    return {"copied": copied, "seconds": round(time.perf_counter() - started)}


def _messages(n: int, user_ids: list[str], start, seed: int) -> list[dict]:
    """`n` tracked events; message ids unique to this run (a rerun on the same database would otherwise
    send only duplicates, which ingestion skips)."""
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:12]
    out = []
    for i in range(n):
        at = start + timedelta(seconds=i)
        out.append({"type": "track", "userId": rng.choice(user_ids), "event": rng.choice(
            ["Page Browsed", "Search Made", "Wishlist Added", "Video Played"]),
            "properties": {"category": rng.choice(["skincare", "tea", "shoes"])},
            "timestamp": at.isoformat(), "messageId": f"bench-{run}-{seed}-{i}"})
    return out


def ingestion(session_factory, events: int) -> list[dict]:
    from clm.customers.models import Identity
    from clm.db.upsert import insert_for
    from clm.lib.clock import utcnow
    from clm.outbox.models import OutboxCursor
    from clm.segments.consumers import EventsConsumer
    from clm.segments.models import Segment
    from clm.tracking.ingest import ingest
    from clm.tracking.models import Event

    with session_factory() as session:
        user_ids = list(session.scalars(sa.select(Identity.value).where(Identity.kind == "user_id").limit(20_000)))
    rows = []
    for label, segments in (("no segments", 0), ("50 segments", 50)):
        with session_factory() as session:
            session.execute(sa.delete(Segment))
            _bench_segments(session, segments, ["Page Browsed", "Search Made", "Wishlist Added", "Video Played",
                                                "Product Viewed"])
            session.commit()
            consumer = EventsConsumer()
            head = session.scalar(sa.select(sa.func.max(Event.id))) or 0
            stmt = insert_for(session, OutboxCursor.__table__).values(consumer=consumer.name, last_id=head,
                                                                      updated_at=utcnow())
            session.execute(stmt.on_conflict_do_update(index_elements=["consumer"], set_={"last_id": head}))
            session.commit()  # the consumer starts at the head: only the benchmark's events are new
        messages = _messages(events, user_ids, utcnow(), seed=segments)
        started = time.perf_counter()
        with session_factory() as session:
            for start in range(0, len(messages), 500):
                ingest(session, messages[start:start + 500], received_at=utcnow())
                session.commit()
                consumer(session, utcnow())
                session.commit()
        seconds = time.perf_counter() - started
        rows.append({"benchmark": f"ingestion + membership upkeep, {label}", "events": events,
                     "seconds": round(seconds, 2), "events_per_s": round(events / seconds)})
    rows[1]["ratio"] = round(rows[1]["events_per_s"] / rows[0]["events_per_s"], 2)
    with session_factory() as session:
        session.execute(sa.delete(Segment).where(Segment.name.like("bench %")))
        session.commit()
    return rows


HTTP_EVENTS = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed", "Home"]


def _bench_segments(session: Session, count: int, names: list[str]) -> None:
    """`count` dynamic segments of the bench's shape: did one of `names` 1-3 times in 30 days, with 0+ or 1+
    orders (so that most events make someone enter a segment: upkeep at its most expensive)."""
    from clm.segments.service import save_segment

    for k in range(count):
        save_segment(session, name=f"bench {k}", rules={"all": [
            {"type": "event", "name": names[k % len(names)], "count": 1 + k % 3, "window": {"last_days": 30}},
            {"type": "orders", "metric": "count", "op": "gte", "value": k % 2}]})


def http_ingestion(events: int = 20_000, segments: int = 50, backend: str = "sqlite") -> dict:
    """Tracking over HTTP (`clm serve` with its in-process worker, 8 connections, 100 events a request)
    into a fresh database holding `segments` dynamic segments: events accepted per second, then how long
    the worker needs after the last request until membership has caught up with every event."""
    import json
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from bench.tracking_bench import _clm, _free_port, _reset_postgres, realistic_events
    from clm.db.engine import make_engine, make_session_factory
    from clm.outbox.models import OutboxCursor
    from clm.tracking.models import Event

    if backend == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp(prefix='clm-bench-')}/bench.db"
    else:
        url = PG_URL.rsplit("/", 1)[0] + "/clm_bench_segments"
        _reset_postgres(url)
    env = {**os.environ, "CLM_DATABASE_URL": url, "CLM_LOG_LEVEL": "warning", "PYTHONPATH": str(ROOT)}
    key = _clm(env, "write-keys", "create", "--name", "bench").split("\n")[1].strip()
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory() as session:
        _bench_segments(session, segments, HTTP_EVENTS)
        session.commit()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "clm.cli", "serve", "--port", str(port)], env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(base + "/healthz", timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        batch = realistic_events(events, users=20_000, seed=segments)
        bodies = [json.dumps({"batch": batch[i:i + 100]}).encode() for i in range(0, len(batch), 100)]

        def send(chunk: list[bytes]) -> int:
            with httpx.Client(base_url=base, auth=(key, ""), timeout=120,
                              headers={"content-type": "application/json"}) as client:
                return sum(client.post("/v1/batch", content=body).raise_for_status().json()["accepted"]
                           for body in chunk)

        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            accepted = sum(pool.map(send, [bodies[i::8] for i in range(8)]))
        sent = time.perf_counter() - started
        assert accepted == events, accepted
        with factory() as session:
            head = session.scalar(sa.select(sa.func.max(Event.id)))
        while True:  # the worker's segments.events cursor reaches the last event
            with factory() as session:
                done = session.scalar(sa.select(OutboxCursor.last_id).where(OutboxCursor.consumer == "segments.events"))
            if (done or 0) >= head or time.perf_counter() - started > 1800:
                break
            time.sleep(0.2)
        caught_up = time.perf_counter() - started - sent
    finally:
        server.terminate()
        server.wait(10)
        engine.dispose()
    return {"benchmark": f"tracking over HTTP with the in-process worker, {segments} segments",
            "backend": backend, "events": events,
            "events_per_s": round(events / sent), "worker_caught_up_after_s": round(caught_up, 1)}


def run(quick: bool = False, postgres: bool = True) -> list[dict]:
    from clm.db.engine import make_engine, make_session_factory

    customers = 20_000 if quick else 1_000_000
    db = _demo(customers)
    engine = make_engine(f"sqlite:///{db}")
    factory = make_session_factory(engine)
    with factory() as session:
        rows = [four_conditions(session, customers)]
    if postgres:
        url = PG_URL if not quick else PG_URL.rsplit("/", 1)[0] + "/demo20k"
        copy = copy_to_postgres(db, url)
        pg = make_engine(url)
        with make_session_factory(pg)() as session:
            rows.append({**four_conditions(session, customers), "copied_rows": copy["copied"],
                         "copy_s": copy["seconds"]})
        pg.dispose()
    rows += ingestion(factory, 5_000 if quick else 50_000)
    engine.dispose()
    for backend in ("sqlite", "postgresql") if postgres else ("sqlite",):
        http = [http_ingestion(20_000 if quick else 60_000, n, backend) for n in (0, 50)]
        http[1]["ratio"] = round(http[1]["events_per_s"] / http[0]["events_per_s"], 2)
        rows += http
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    for row in run(args.quick, not args.no_postgres):
        print(row)
