"""Benchmark `clm import orders`: rows per second and peak memory on a million-row CSV.

Generates a realistic orders export (Vietnamese customers, VND amounts, ~100k customers, 18 months,
one to three item rows per order) into bench/out/, then runs `clm import orders` in a subprocess
against a fresh SQLite database (and PostgreSQL when CLM_BENCH_POSTGRES_URL is set), measuring wall
time and the child's peak RSS. A second run of the same file measures the all-duplicates path.

    python bench/import_bench.py [--quick] [--rows N]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
FULL_ROWS = 1_000_000
QUICK_ROWS = 50_000

FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô",
          "Dương", "Lý"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hoa", "Hùng", "Hương", "Khánh", "Lan", "Linh",
         "Long", "Mai", "Nam", "Nga", "Phúc", "Quân", "Sơn", "Tâm", "Thảo", "Trang", "Tuấn", "Vy", "Yến"]
PRODUCTS = [("CF-SUA-DA", "Cà phê sữa đá", 29_000), ("TRA-SEN", "Trà sen vàng", 45_000),
            ("BANH-MI", "Bánh mì thịt", 25_000), ("NUOC-MAM", "Nước mắm Phú Quốc", 89_000),
            ("GAO-ST25", "Gạo ST25 5kg", 185_000), ("AO-DAI", "Áo dài lụa", 1_250_000),
            ("NON-LA", "Nón lá Huế", 120_000), ("TUONG-OT", "Tương ớt Chin-su", 18_000),
            ("HAT-DIEU", "Hạt điều rang muối", 230_000), ("MAT-ONG", "Mật ong rừng U Minh", 320_000),
            ("DEP-TO-ONG", "Dép tổ ong", 35_000), ("SON-MOI", "Son môi Cỏ Mềm", 259_000)]
MOBILE_PREFIXES = ["090", "091", "093", "094", "096", "097", "098", "032", "033", "035", "037", "038", "070",
                   "077", "079", "081", "083", "085", "088"]
HEADER = ["order_id", "customer_id", "email", "phone", "placed_at", "total", "currency", "status", "sku",
          "product_name", "quantity", "price"]


def _ascii(text: str) -> str:
    import unicodedata

    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)).lower()


def generate(path: Path, rows: int, customers: int = 100_000, seed: int = 7) -> Path:
    """Write an orders CSV of exactly `rows` rows (streamed: constant memory); reuse it when present."""
    if path.exists():
        return path
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    span = int(timedelta(days=548).total_seconds())  # 18 months
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8-sig", newline="") as f:  # as Excel writes it: with a BOM
        writer = csv.writer(f)
        writer.writerow(HEADER)
        written, order_no = 0, 0
        while written < rows:
            order_no += 1
            c = int(customers * rng.random() ** 2)  # skewed: low numbers are the loyal customers
            given = GIVEN[c % len(GIVEN)]
            family = FAMILY[(c // 7) % len(FAMILY)]
            email = f"{_ascii(given)}.{_ascii(family)}{c}@{'gmail.com' if c % 3 else 'yahoo.com.vn'}"
            phone = f"{MOBILE_PREFIXES[c % len(MOBILE_PREFIXES)]}{1_000_000 + c * 7:07d}"[:10]
            phone = f"{phone[:4]} {phone[4:7]} {phone[7:]}" if c % 2 else phone  # people type spaces
            placed = start + timedelta(seconds=rng.randrange(span))
            lines = min(rng.choice((1, 1, 1, 2, 2, 3)), rows - written)
            items = [(rng.choice(PRODUCTS), rng.choice((1, 1, 1, 2, 3))) for _ in range(lines)]
            total = sum(price * qty for (_, _, price), qty in items)
            for (sku, name, price), qty in items:
                writer.writerow([f"DH{order_no:08d}", f"KH{c:06d}", email if c % 5 else "", phone,
                                 placed.strftime("%Y-%m-%d %H:%M:%S"), total, "VND", "completed", sku, name,
                                 qty, price])
            written += lines
    tmp.rename(path)
    return path


def _fresh_database(backend: str) -> str:
    if backend == "sqlite":
        db = OUT / "import_bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{db}"
    url = os.environ["CLM_BENCH_POSTGRES_URL"]
    sys.path.insert(0, str(ROOT))
    from clm.db.engine import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    return url


def _run_import(csv_path: Path, url: str) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) of the child, and its summary line."""
    env = {**os.environ, "CLM_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "clm.cli", "import", "orders", str(csv_path), "--errors",
                             str(OUT / "import_bench.errors.csv")], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the max over every run so far).
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"clm import orders failed:\n{stdout}\n{stderr}")
    peak_kb = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss / 1024
    return seconds, peak_kb / 1024, stdout.strip()


def run(quick: bool = False, rows: int | None = None) -> list[dict]:
    rows = rows or (QUICK_ROWS if quick else FULL_ROWS)
    OUT.mkdir(parents=True, exist_ok=True)
    csv_path = generate(OUT / f"orders_{rows}.csv", rows)
    backends = ["sqlite"] + (["postgresql"] if os.environ.get("CLM_BENCH_POSTGRES_URL") else [])
    results = []
    for backend in backends:
        url = _fresh_database(backend)
        for name in ("import orders", "re-import orders (all unchanged)"):
            seconds, peak, summary = _run_import(csv_path, url)
            results.append({"benchmark": name, "backend": backend, "rows": rows, "seconds": round(seconds, 2),
                            "rows_per_s": round(rows / seconds), "peak_rss_mb": round(peak, 1),
                            "summary": summary})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows instead of {FULL_ROWS:,}")
    parser.add_argument("--rows", type=int, help="exactly this many rows")
    args = parser.parse_args()
    print(f"{'benchmark':36} {'backend':10} {'rows':>10} {'seconds':>8} {'rows/s':>8} {'peak RSS MB':>11}")
    for r in run(args.quick, args.rows):
        print(f"{r['benchmark']:36} {r['backend']:10} {r['rows']:>10,} {r['seconds']:>8.1f} "
              f"{r['rows_per_s']:>8,} {r['peak_rss_mb']:>11.1f}")
        print(f"    {r['summary']}")


if __name__ == "__main__":
    main()
