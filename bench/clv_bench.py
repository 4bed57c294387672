"""Benchmark clm.analytics.clv against lifetimes 0.11.3 on CDNOW and a synthetic 1,000,000-customer summary.

Run ``python bench/clv_bench.py [--quick]``. lifetimes is never a dependency of clm: it is installed
into its own virtual environment ``bench/.venv-lifetimes`` (created on first use, see
``bench/lifetimes_env.sh``) and run in a subprocess from there, on the same data, in the same run.

``run(quick=False) -> list[dict]`` returns the table rows for a bench runner.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "analytics"))

from clm.analytics.clv import BetaGeo, GammaGamma, ParetoNBD, customer_lifetime_value, rfm_summary  # noqa: E402

VENV = Path(os.environ.get("CLV_BENCH_LIFETIMES_VENV", ROOT / "bench" / ".venv-lifetimes"))
CDNOW = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}

# The lifetimes side, run by the lifetimes venv's python. Small shims make 0.11.3 import on current
# NumPy/SciPy/pandas.
WORKER = r'''
import json, sys, time, tracemalloc, warnings
warnings.simplefilter("ignore")
import numpy as np
for name, alias in (("float", float), ("int", int), ("bool", bool), ("object", object)):
    if not hasattr(np, name):
        setattr(np, name, alias)
import scipy.misc, scipy.special
if not hasattr(scipy.misc, "logsumexp"):
    scipy.misc.logsumexp = scipy.special.logsumexp
import pandas as pd
import lifetimes
from lifetimes.utils import _customer_lifetime_value

path, out, skip, reps = sys.argv[1], sys.argv[2], set(sys.argv[3].split(",")), json.loads(sys.argv[4])
d = np.load(path)
x, tx, T, m = (pd.Series(d[k]) for k in ("x", "tx", "T", "m"))
res = {}
def timed(key, f):
    # best of reps[key] (default 3) wall times; peak memory in one more, traced run
    best, v = float("inf"), None
    for _ in range(reps.get(key.split("_")[0], reps.get("default", 3))):
        t = time.perf_counter(); v = f(); best = min(best, time.perf_counter() - t)
    res[key] = best
    if key.endswith("_fit"):
        tracemalloc.start(); f(); res[key + "_mem"] = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
    return v
preds = {}
for name, cls in (("bgnbd", lifetimes.BetaGeoFitter), ("pnbd", lifetimes.ParetoNBDFitter)):
    if name in skip:
        continue
    f = timed(name + "_fit", lambda: cls().fit(x, tx, T))
    res[name + "_params"] = [float(v) for v in f.params_.values]
    preds[name + "_cond"] = np.asarray(timed(name + "_cond", lambda: f.conditional_expected_number_of_purchases_up_to_time(39, x, tx, T)))
    preds[name + "_alive"] = np.asarray(timed(name + "_alive", lambda: f.conditional_probability_alive(x, tx, T)))
rep = d["x"] > 0
g = timed("gg_fit", lambda: lifetimes.GammaGammaFitter().fit(x[rep], m[rep]))
res["gg_params"] = [float(v) for v in g.params_.values]
if "bgnbd" not in skip:
    bg = lifetimes.BetaGeoFitter().fit(x, tx, T)
    clv = timed("clv", lambda: g.customer_lifetime_value(bg, x, tx, T, m, time=12, discount_rate=0.01, freq="W"))
    preds["clv"] = np.asarray(clv)
np.savez(out + ".npz", **preds)
json.dump(res, open(out, "w"))
'''


def ensure_lifetimes_venv() -> Path | None:
    py = VENV / "bin" / "python"
    if not py.exists():
        script = ROOT / "bench" / "lifetimes_env.sh"
        r = subprocess.run(["bash", str(script), str(VENV)], capture_output=True, text=True)
        if r.returncode != 0 or not py.exists():
            print("could not create the lifetimes venv:", r.stderr[-2000:], file=sys.stderr)
            return None
    return py


def _sample():
    from _clvdata import cdnow_with_value

    d = cdnow_with_value()
    return {"x": d["x"], "tx": d["t_x"], "T": d["T"], "m": d["zbar"]}


def _master():
    from _clvdata import cdnow_master_transactions

    s = rfm_summary(cdnow_master_transactions(), customer="customer", timestamp="date", amount="amount",
                    period="D", unit="W", calibration_end="1997-09-30")
    ok = (s.frequency == 0) | (s.monetary_value > 0)  # a few repeat buyers spent $0; Gamma-Gamma needs > 0
    return {"x": s.frequency[ok], "tx": s.recency[ok], "T": s.T[ok], "m": s.monetary_value[ok]}


def _synthetic(n):
    from _clvdata import simulate_bgnbd

    x, tx, T = simulate_bgnbd(n, **CDNOW, seed=2024)
    rng = np.random.default_rng(2025)
    nu = rng.gamma(GG["q"], 1.0 / GG["gamma"], n)
    xs = np.maximum(x, 1)
    m = np.where(x > 0, rng.gamma(GG["p"] * xs, 1.0 / (nu * xs)), 0.0)
    return {"x": x, "tx": tx, "T": T, "m": m}


REPS = 3


def _timed(f, memory=False, reps=REPS):
    """Best of ``reps`` wall times of ``f()``; with ``memory`` also its tracemalloc peak from one more, traced run.

    The machine is shared (2 cores), so the minimum over repetitions is the figure least disturbed by others.
    """
    dt, v = float("inf"), None
    for _ in range(reps):
        t = time.perf_counter()
        v = f()
        dt = min(dt, time.perf_counter() - t)
    peak = 0
    if memory:
        tracemalloc.start()
        f()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return v, dt, peak


def _reldiff(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def bench_dataset(name, data, lifetimes_py, skip_lifetimes=(), lifetimes_reps=None):
    x, tx, T, m = data["x"], data["tx"], data["T"], data["m"]
    rows = []
    lt, lt_preds = {}, {}
    if lifetimes_py is not None:
        with tempfile.TemporaryDirectory() as tmp:
            np.savez(Path(tmp) / "d.npz", **data)
            worker = Path(tmp) / "worker.py"
            worker.write_text(WORKER)
            out = str(Path(tmp) / "out.json")
            r = subprocess.run([str(lifetimes_py), str(worker), str(Path(tmp) / "d.npz"), out,
                                ",".join(skip_lifetimes), json.dumps(lifetimes_reps or {"default": REPS})],
                               capture_output=True, text=True)
            if r.returncode == 0:
                lt = json.load(open(out))
                lt_preds = dict(np.load(out + ".npz"))
            else:
                print(f"lifetimes failed on {name}:", r.stderr[-3000:], file=sys.stderr)
    fits = {}
    for key, cls in (("bgnbd", BetaGeo), ("pnbd", ParetoNBD)):
        model, fit_s, fit_mem = _timed(lambda cls=cls: cls().fit(x, tx, T), memory=True)
        fits[key] = model
        cond, cond_s, _ = _timed(lambda model=model: model.expected_purchases(39.0, x, tx, T))
        alive, alive_s, _ = _timed(lambda model=model: model.p_alive(x, tx, T))
        row = {"dataset": name, "customers": int(x.size), "model": {"bgnbd": "BG/NBD", "pnbd": "Pareto/NBD"}[key],
               "clm_fit_s": fit_s, "clm_fit_peak_mb": fit_mem / 2**20, "clm_cond_s": cond_s, "clm_alive_s": alive_s,
               "params": model.params}
        if key + "_fit" in lt:
            row.update({"lifetimes_fit_s": lt[key + "_fit"], "lifetimes_fit_peak_mb": lt[key + "_fit_mem"] / 2**20,
                        "lifetimes_cond_s": lt[key + "_cond"], "lifetimes_alive_s": lt[key + "_alive"],
                        "fit_speedup": lt[key + "_fit"] / fit_s,
                        "max_param_rel_diff": _reldiff(list(model.params.values()), lt[key + "_params"]),
                        "max_cond_abs_diff": float(np.max(np.abs(cond - lt_preds[key + "_cond"]))),
                        "max_alive_abs_diff": float(np.max(np.abs(alive - lt_preds[key + "_alive"])))})
        rows.append(row)
    rep = x > 0
    gg, gg_s, gg_mem = _timed(lambda: GammaGamma().fit(x[rep], m[rep]), memory=True)
    clv, clv_s, _ = _timed(lambda: customer_lifetime_value(fits["bgnbd"], gg, x, tx, T, m, horizon=12,
                                                            discount_rate=0.01, period="W"))
    row = {"dataset": name, "customers": int(rep.sum()), "model": "Gamma-Gamma", "clm_fit_s": gg_s,
           "clm_fit_peak_mb": gg_mem / 2**20, "clm_clv_s": clv_s, "params": gg.params}
    if "gg_fit" in lt:
        row.update({"lifetimes_fit_s": lt["gg_fit"], "lifetimes_fit_peak_mb": lt["gg_fit_mem"] / 2**20,
                    "fit_speedup": lt["gg_fit"] / gg_s,
                    "max_param_rel_diff": _reldiff(list(gg.params.values()), lt["gg_params"])})
        if "clv" in lt:
            row.update({"lifetimes_clv_s": lt["clv"],
                        "max_clv_rel_diff": _reldiff(clv[clv > 1e-9], lt_preds["clv"][clv > 1e-9])})
    rows.append(row)
    return rows


def run(quick: bool = False) -> list[dict]:
    """Run the benchmark; ``quick`` uses a 100,000-customer synthetic set and skips lifetimes' Pareto/NBD on it.

    Every timing is the best of 3 runs on both sides, except lifetimes' Pareto/NBD on the synthetic set,
    timed once (one fit takes minutes). Each row carries the 1-minute load average seen when its data set started.
    """
    py = ensure_lifetimes_venv()
    n = 100_000 if quick else 1_000_000
    rows = []
    for name, data, skip, reps in (
        ("cdnow-sample", _sample(), (), None),
        ("cdnow-master", _master(), (), None),
        (f"synthetic-{n // 1000}k", _synthetic(n),
         ("pnbd",) if quick or os.environ.get("CLV_BENCH_SKIP_LIFETIMES_PNBD_1M") else (),
         {"default": REPS, "pnbd": 1}),
    ):
        load = os.getloadavg()[0]
        for row in bench_dataset(name, data, py, skip_lifetimes=skip, lifetimes_reps=reps):
            row["load_avg_1min"] = load
            rows.append(row)
    return rows


def _fmt(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


def format_table(rows) -> str:
    """Markdown table; times are the best of 3 runs (see :func:`run`), memory the tracemalloc peak of a fit."""
    head = ("| dataset | load | customers | model | clm fit s | lifetimes fit s | speed-up | max param rel diff | "
            "clm E[X] s | lifetimes E[X] s | clm P(alive) s | lifetimes P(alive) s | clm CLV s | lifetimes CLV s | "
            "clm fit peak MB | lifetimes fit peak MB |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        g = r.get
        lines.append(
            f"| {r['dataset']} | {_fmt(g('load_avg_1min'), '.1f')} | {r['customers']:,} | {r['model']} | {_fmt(g('clm_fit_s'))} | {_fmt(g('lifetimes_fit_s'))} "
            f"| {_fmt(g('fit_speedup'), '.1f')} | {_fmt(g('max_param_rel_diff'), '.1e')} | {_fmt(g('clm_cond_s'))} "
            f"| {_fmt(g('lifetimes_cond_s'))} | {_fmt(g('clm_alive_s'))} | {_fmt(g('lifetimes_alive_s'))} "
            f"| {_fmt(g('clm_clv_s'))} | {_fmt(g('lifetimes_clv_s'))} | {_fmt(g('clm_fit_peak_mb'), '.1f')} "
            f"| {_fmt(g('lifetimes_fit_peak_mb'), '.1f')} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="100k synthetic customers, no lifetimes Pareto/NBD on it")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args(argv)
    rows = run(quick=args.quick)
    print(f"times: best of {REPS} runs (lifetimes Pareto/NBD on the synthetic set: 1 run); "
          f"load = 1-minute load average at the start of each data set; load now {os.getloadavg()[0]:.1f}")
    print(format_table(rows))
    for r in rows:
        extra = {k: r[k] for k in ("max_cond_abs_diff", "max_alive_abs_diff", "max_clv_rel_diff") if k in r}
        if extra:
            print(r["dataset"], r["model"], {k: f"{v:.2e}" for k, v in extra.items()})
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
