"""Tracking ingestion over HTTP (/v1/batch, 100 events a request) against the raw database driver.

Run: python bench/tracking_bench.py [--quick] [--backend sqlite|postgres]
The server is `clm serve` in its own process; the load comes from another process with keep-alive
connections; the baseline inserts the same event rows straight through the driver (sqlite3 /
psycopg executemany, one commit per 100 rows, same durability settings) in the same run.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import socket
import sqlite3
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
PG_URL = os.environ.get("CLM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/clm_bench")
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ"]
MIDDLE = ["Văn", "Thị", "Hữu", "Minh", "Ngọc", "Thanh", "Quốc", "Thu"]
GIVEN = ["An", "Bình", "Chi", "Dũng", "Hà", "Hải", "Hoa", "Hùng", "Lan", "Linh", "Mai", "Nam", "Phương", "Tâm"]
CITIES = ["Hà Nội", "TP. Hồ Chí Minh", "Đà Nẵng", "Hải Phòng", "Cần Thơ", "Huế", "Nha Trang"]
PRODUCTS = [(f"SKU-{i:04d}", f"Sản phẩm {i}", random.Random(i).choice([49000, 129000, 259000, 890000]))
            for i in range(500)]


def realistic_events(n: int, users: int, seed: int = 7) -> list[dict]:
    """A mix like a shop's web and app traffic: views, pages, carts, identifies and orders."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=1)
    out = []
    for i in range(n):
        u = rng.randrange(users)
        sku, pname, price = rng.choice(PRODUCTS)
        base = {"messageId": str(uuid.UUID(int=rng.getrandbits(128))), "timestamp": (start + timedelta(seconds=i)).isoformat(),
                "context": {"ip": f"14.161.{u % 255}.{i % 255}", "locale": "vi-VN",
                            "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
                            "campaign": {"source": rng.choice(["facebook", "zalo", "google"]), "medium": "cpc"}}}
        if rng.random() < 0.3:
            base["anonymousId"] = f"anon-{u}"
        else:
            base["userId"] = f"user-{u}"
        roll = rng.random()
        if roll < 0.45:
            base |= {"type": "track", "event": "Product Viewed",
                     "properties": {"product_id": sku, "name": pname, "price": price, "currency": "VND",
                                    "category": "Thời trang"}}
        elif roll < 0.65:
            base |= {"type": "page", "name": rng.choice(["Home", "Category", "Search"]),
                     "properties": {"path": "/", "url": "https://shop.vn/", "title": "Shop"}}
        elif roll < 0.75:
            base |= {"type": "track", "event": "Product Added",
                     "properties": {"product_id": sku, "price": price, "quantity": 1}}
        elif roll < 0.87:
            fam, mid, giv = rng.choice(FAMILY), rng.choice(MIDDLE), rng.choice(GIVEN)
            base |= {"type": "identify", "userId": f"user-{u}",
                     "traits": {"name": f"{fam} {mid} {giv}", "email": f"user{u}@example.vn",
                                "phone": f"09{u % 100000000:08d}", "city": rng.choice(CITIES)}}
        elif roll < 0.95:
            base |= {"type": "track", "event": "Checkout Started",
                     "properties": {"products": [{"product_id": sku, "price": price, "quantity": 1}]}}
        else:
            qty = rng.randint(1, 3)
            base |= {"type": "track", "event": "Order Completed",
                     "properties": {"order_id": f"SO-{seed}-{i}", "total": price * qty, "currency": "VND",
                                    "products": [{"product_id": sku, "name": pname, "price": price, "quantity": qty}]}}
        out.append(base)
    return out


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _clm(env: dict, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "clm.cli", *args], env=env, check=True,
                          capture_output=True, text=True).stdout


def _reset_postgres(url: str) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    name = url.rsplit("/", 1)[1]
    with admin.connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()


def send_batches(port: int, auth: str, bodies: list[bytes], timeout: float = 60) -> int:
    """POST each body to /v1/batch on one keep-alive connection; the events accepted. The standard
    library's client: the load generator shares the machine's two cores with the server, so it should
    cost as little as possible."""
    sent = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        for body in bodies:
            conn.request("POST", "/v1/batch", body=body,
                         headers={"Content-Type": "application/json", "Authorization": auth})
            r = conn.getresponse()
            answer = r.read()
            if r.status != 200:
                raise RuntimeError(f"HTTP {r.status}: {answer[:200]!r}")
            sent += json.loads(answer)["accepted"]
    finally:
        conn.close()
    return sent


def _cpu_ticks(root: int) -> dict[str, int]:
    """CPU time (clock ticks) of `clm serve`, its children by role, and this process (the load)."""
    kids = subprocess.run(["pgrep", "-P", str(root)], capture_output=True, text=True).stdout.split()
    out: dict[str, int] = {}
    for pid in [str(root), *kids, str(os.getpid())]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{pid}/cmdline").read_text()
        except OSError:
            continue
        role = ("load" if pid == str(os.getpid()) else "serve" if pid == str(root)
                else "tracker" if "resource_tracker" in cmdline else f"child-{pid}")
        out[role] = int(fields[11]) + int(fields[12])
    return out


def _cpu_per_event(before: dict[str, int], after: dict[str, int], events: int) -> dict[str, float]:
    """Microseconds of CPU per event for each process. Of `clm serve --workers N` on SQLite, the child
    that used the most is the ingestion writer (the others are server processes)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {role: (after[role] - before.get(role, 0)) * 1e6 / tick / events for role in after}
    children = sorted((v, k) for k, v in used.items() if k.startswith("child-"))
    named = {"load generator": used.get("load", 0.0), "main process": used.get("serve", 0.0)}
    if len(children) > 1:
        named["writer process"] = children[-1][0]
        named["server processes"] = sum(v for v, _ in children[:-1])
    else:
        named["server processes"] = sum(v for v, _ in children)
    return {k: round(v, 1) for k, v in named.items()}


def http_rate(backend: str, events: list[dict], concurrency: int = 8, workers: int = 1,
              with_worker: bool = False, cpu: dict | None = None) -> float:
    """Events/s accepted over HTTP. Without `with_worker` the server only ingests (reactions run in
    `clm worker` processes, as in production); with it, the in-process worker reacts at the same time.
    `cpu`, when given, receives each process's CPU microseconds per event over the timed part."""
    tmp = tempfile.mkdtemp(prefix="clm-bench-")
    url = f"sqlite:///{tmp}/bench.db" if backend == "sqlite" else PG_URL
    if backend == "postgres":
        _reset_postgres(url)
    env = {**os.environ, "CLM_DATABASE_URL": url, "CLM_LOG_LEVEL": "warning", "PYTHONPATH": str(ROOT)}
    key = _clm(env, "write-keys", "create", "--name", "bench").split("\n")[1].strip()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "clm.cli", "serve", "--port", str(port), "--workers", str(workers),
                               *([] if with_worker else ["--no-worker"])], env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                httpx.get(base + "/healthz", timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        bodies = [json.dumps({"batch": events[i:i + 100], "sentAt": datetime.now(UTC).isoformat()}).encode()
                  for i in range(0, len(events), 100)]
        # warm-up: one request of throwaway events so imports and caches are not timed
        warm = realistic_events(100, 10, seed=99)
        httpx.post(base + "/v1/batch", content=json.dumps({"batch": warm}), auth=(key, ""),
                   headers={"content-type": "application/json"}).raise_for_status()

        auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()

        chunks = [bodies[i::concurrency] for i in range(concurrency)]
        ticks = _cpu_ticks(server.pid)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            accepted = sum(pool.map(lambda chunk: send_batches(port, auth, chunk), chunks))
        elapsed = time.perf_counter() - t0
        if cpu is not None:
            cpu.update(_cpu_per_event(ticks, _cpu_ticks(server.pid), len(events)))
        assert accepted == len(events), (accepted, len(events))
        return len(events) / elapsed
    finally:
        server.terminate()
        server.wait(10)


def _driver_rows(events: list[dict]) -> list[tuple]:
    now = datetime.now(UTC).isoformat()
    return [(e["messageId"], hash(e.get("userId") or e.get("anonymousId")) % 20000, e["type"],
             e.get("event") or e.get("name"), json.dumps(e.get("properties") or e.get("traits") or {}),
             json.dumps(e["context"]), e["timestamp"], now) for e in events]


def driver_rate(backend: str, events: list[dict]) -> float:
    """The same event rows inserted straight through the driver, 100 per transaction."""
    rows = _driver_rows(events)
    ddl = ("CREATE TABLE ev (id {pk}, message_id VARCHAR(255) UNIQUE, customer_id BIGINT, type VARCHAR(16), "
           "name VARCHAR(255), properties {js}, context {js}, timestamp {ts}, received_at {ts})")
    if backend == "sqlite":
        tmp = tempfile.mkdtemp(prefix="clm-bench-")
        conn = sqlite3.connect(f"{tmp}/raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(ddl.format(pk="INTEGER PRIMARY KEY", js="JSON", ts="DATETIME"))
        sql = "INSERT INTO ev (message_id, customer_id, type, name, properties, context, timestamp, received_at) VALUES (?,?,?,?,?,?,?,?)"
        t0 = time.perf_counter()
        for i in range(0, len(rows), 100):
            conn.execute("BEGIN")
            conn.executemany(sql, rows[i:i + 100])
            conn.execute("COMMIT")
        return len(rows) / (time.perf_counter() - t0)
    import psycopg

    _reset_postgres(PG_URL)
    with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute(ddl.format(pk="BIGSERIAL PRIMARY KEY", js="JSONB", ts="TIMESTAMPTZ"))
        conn.commit()
        sql = "INSERT INTO ev (message_id, customer_id, type, name, properties, context, timestamp, received_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)"
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            for i in range(0, len(rows), 100):
                cur.executemany(sql, rows[i:i + 100])
                conn.commit()
        return len(rows) / (time.perf_counter() - t0)


def _postgres_available() -> bool:
    try:
        _reset_postgres(PG_URL)
        return True
    except Exception:
        return False


def run(quick: bool = False, backends: tuple[str, ...] = ("sqlite", "postgres")) -> list[dict]:
    n = 20_000 if quick else 100_000
    events = realistic_events(n, users=20_000)
    rows = []
    for backend in backends:
        if backend == "postgres" and not _postgres_available():
            print(f"postgres skipped: cannot reach {PG_URL} (set CLM_BENCH_POSTGRES_URL)")
            continue
        raw = driver_rate(backend, events)
        # (server processes, client connections, in-process worker reacting). On SQLite, two server
        # processes hand what they accept to one writer process (clm/tracking/writer_process.py).
        for workers, concurrency, with_worker in ((1, 8, False), (2, 16, False), (2, 32, False), (2, 32, True)):
            cpu: dict = {}
            api = http_rate(backend, events, concurrency=concurrency, workers=workers, with_worker=with_worker,
                            cpu=cpu)
            rows.append({"benchmark": f"tracking /v1/batch (100 events/request), {workers} server process"
                         + ("es" if workers > 1 else "")
                         + (", in-process worker reacting" if with_worker else ""),
                         "backend": backend, "events": n, "connections": concurrency, "events_per_s": round(api),
                         "driver_events_per_s": round(raw), "ratio": round(api / raw, 3),
                         "cpu_us_per_event": cpu, "load_1min": round(os.getloadavg()[0], 1)})
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    for row in run(args.quick, tuple(args.backend or ("sqlite", "postgres"))):
        print(row)
