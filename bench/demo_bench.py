"""Benchmark `clm demo --customers N --no-serve`: total time and peak memory.

Runs the real command in a subprocess for N = 20,000 (the default shop) and 1,000,000 (`--quick`:
20,000 and 100,000), each into a fresh SQLite file under bench/out/, measuring wall time and the
child's peak RSS (getrusage of the children: each N runs in a fresh process so the figure is its own).

    python bench/demo_bench.py [--quick] [--customers N ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
FULL = (20_000, 1_000_000)
QUICK = (20_000, 100_000)


def _measure(customers: int) -> dict:
    """Run one build in a child that reports its own child's peak RSS (RUSAGE_CHILDREN is cumulative)."""
    OUT.mkdir(parents=True, exist_ok=True)
    db = OUT / f"demo_{customers}.db"
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "s = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(p.returncode, s, rss); print(p.stdout); print(p.stderr[-2000:], file=sys.stderr)\n"
    )
    cmd = [sys.executable, "-c", probe, sys.executable, "-m", "clm.cli", "demo", "--customers", str(customers),
           "--no-serve", "--db", str(db), "--password", "bench-password"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    head, _, stdout = done.stdout.partition("\n")
    code, seconds, rss = head.split()
    if code != "0":
        raise RuntimeError(f"clm demo --customers {customers} failed: {done.stderr[-1000:]}")
    counts = re.search(r"([\d,]+) customers, ([\d,]+) events, ([\d,]+) orders", stdout)
    rate = re.search(r"\(([\d,]+) messages/s\)", stdout)
    size = sum(p.stat().st_size for p in OUT.glob(f"demo_{customers}.db*"))
    return {"benchmark": "clm demo --no-serve", "customers": customers,
            "events": int(counts.group(2).replace(",", "")), "orders": int(counts.group(3).replace(",", "")),
            "seconds": round(float(seconds), 1), "messages_per_s": int(rate.group(1).replace(",", "")),
            "peak_rss_mb": round(float(rss), 1), "db_mb": round(size / 2**20)}


def run(quick: bool = False, sizes: tuple[int, ...] | None = None) -> list[dict]:
    results = [_measure(n) for n in (sizes or (QUICK if quick else FULL))]
    for n in sizes or (QUICK if quick else FULL):
        for p in OUT.glob(f"demo_{n}.db*"):
            p.unlink()  # gigabytes at a million customers
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 and 100,000 customers")
    parser.add_argument("--customers", type=int, nargs="*", help="these sizes instead")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = run(args.quick, tuple(args.customers) if args.customers else None)
    for row in rows:
        print(json.dumps(row))
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
