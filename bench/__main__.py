"""`make bench`: every benchmark the issues name, one table of figures and ratios.

python -m bench [--quick] [--only tracking,import,clv,demo,pages,analytics,segments,jobs,channels,journeys,loyalty,sales]
Results are printed and saved to bench/out/results.json; docs/benchmarks.md records them with context.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SUITES = {
    "tracking": "tracking_bench",
    "import": "import_bench",
    "clv": "clv_bench",
    "demo": "demo_bench",
    "pages": "pages_bench",
    "segments": "segments_bench",
    "analytics": "analytics_bench",
    "jobs": "jobs_bench",
    "channels": "channels_bench",
    "journeys": "journeys_bench",
    "loyalty": "loyalty_bench",
    "sales": "sales_bench",
    "service": "service_bench",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs, for a smoke run")
    parser.add_argument("--only", default=",".join(SUITES), help="comma-separated suites")
    args = parser.parse_args()
    console = Console()
    results: dict[str, list[dict]] = {}
    for name in args.only.split(","):
        module_name = SUITES[name.strip()]
        if not (HERE / f"{module_name}.py").exists():
            console.print(f"[yellow]{name}: no benchmark yet ({module_name}.py)[/]")
            continue
        console.rule(f"{name}  (load average {os.getloadavg()[0]:.2f})")
        started = time.perf_counter()
        module = importlib.import_module(module_name)
        try:
            rows = module.run(quick=args.quick)
        except Exception as exc:  # one failing suite should not hide the others' figures
            console.print(f"[red]{name} failed: {exc!r}[/]")
            continue
        results[name] = rows
        table = Table(title=f"{name} ({time.perf_counter() - started:.0f} s)")
        columns = list(dict.fromkeys(k for row in rows for k in row))
        for column in columns:
            table.add_column(column, justify="right" if any(isinstance(r.get(column), int | float) for r in rows) else "left")
        for row in rows:
            table.add_row(*(_fmt(row.get(c)) for c in columns))
        console.print(table)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    console.print(f"saved {out / 'results.json'}")


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


if __name__ == "__main__":
    main()
