"""Dashboard server time on a big database: the overview (< 300 ms) and a customer 360 (< 100 ms).

python bench/pages_bench.py [--db bench/out/demo_1000000.db] [--quick]
Without --db it builds a demo shop first (`clm demo --customers N --no-serve`: 1,000,000, or 100,000
with --quick). The server is `clm serve` in its own process; times are the server's own
(`X-Render-Time`), as a browser would see them less the network.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
EMAIL, PASSWORD = "bench@clm.example.com", "bench-password-123"


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _build(customers: int) -> tuple[Path, float]:
    OUT.mkdir(parents=True, exist_ok=True)
    db = OUT / f"demo_{customers}.db"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "clm.cli", "demo", "--customers", str(customers), "--no-serve",
                    "--db", str(db), "--password", PASSWORD], check=True, cwd=ROOT, capture_output=True)
    return db, time.perf_counter() - started


def _render_ms(response: httpx.Response) -> float:
    response.raise_for_status()
    return float(response.headers["x-render-time"].removesuffix("ms").strip())


def measure(db: Path, repeats: int = 7) -> list[dict]:
    env = {**os.environ, "CLM_DATABASE_URL": f"sqlite:///{db}", "CLM_LOG_LEVEL": "warning", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "clm.cli", "users", "create", "--email", EMAIL, "--role", "admin",
                    "--password", PASSWORD], env=env, cwd=ROOT, capture_output=True)
    with sqlite3.connect(db) as conn:
        customers = conn.execute("SELECT COUNT(*) FROM customers WHERE merged_into_id IS NULL").fetchone()[0]
        ids = [r[0] for r in conn.execute(
            "SELECT customer_id FROM orders GROUP BY customer_id ORDER BY COUNT(*) DESC LIMIT 5")]
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "clm.cli", "serve", "--port", str(port), "--no-worker"],
                              env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=120, follow_redirects=False) as client:
            for _ in range(600):
                try:
                    client.get("/healthz")
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            page = client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            client.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token, "next": "/overview"})
            first_overview = _render_ms(client.get("/overview"))
            time.sleep(5)  # let the start-up warm-up finish before the steady-state samples
            overview = [_render_ms(client.get("/overview")) for _ in range(repeats)]
            first_360 = _render_ms(client.get(f"/customers/{ids[0]}"))
            c360 = [_render_ms(client.get(f"/customers/{cid}")) for cid in ids for _ in range(2)]
            funnel_started = time.perf_counter()
            client.get("/overview/funnel").raise_for_status()
            funnel_s = time.perf_counter() - funnel_started
    finally:
        server.terminate()
        server.wait(10)
    return [
        {"benchmark": "overview page", "customers": customers, "first_ms": round(first_overview, 1),
         "median_ms": round(statistics.median(overview), 1), "target_ms": 300},
        {"benchmark": "customer 360 page", "customers": customers, "first_ms": round(first_360, 1),
         "median_ms": round(statistics.median(c360), 1), "target_ms": 100},
        {"benchmark": "overview funnel card (HTMX, after warm-up)", "customers": customers,
         "first_ms": round(funnel_s * 1000, 1), "median_ms": None, "target_ms": None},
    ]


def run(quick: bool = False, db: Path | None = None) -> list[dict]:
    if db is None:
        db, _ = _build(100_000 if quick else 1_000_000)
    return measure(db)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for row in run(args.quick, args.db):
        print(row)
