"""The figures a refresh stores with its run for the dashboard: fit charts, CLV distribution, RFM grid, cohorts.

Computed once per refresh from the arrays already in memory, so a page reads one JSON document
instead of aggregating every customer's scores. Everything returned is plain JSON (lists, numbers,
None for "not observed").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from clm.analytics import clv
from clm.analytics.cohorts import monthly_cohorts
from clm.analytics.rfm import SEGMENTS

if TYPE_CHECKING:
    from clm.analytics.refresh import Scored
    from clm.analytics.scores import Orders

COHORTS = 24  # the last 24 monthly cohorts, followed for up to 24 months
CLV_BINS = 20


def _json(values) -> list:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def cohorts(orders: Orders) -> dict:
    """Monthly acquisition cohorts: size, retention share and revenue (minor units) by months since joining."""
    c = monthly_cohorts(orders.customer, orders.day.astype("datetime64[D]"), orders.amount)
    first = max(0, c.months.size - COHORTS)
    ages = min(COHORTS, c.months.size)
    return {
        "months": [str(m) for m in c.months[first:]],
        "size": [int(v) for v in c.size[first:]],
        "retention": [_json(row[:ages]) for row in c.retention[first:]],
        "revenue": [_json(np.rint(row[:ages])) for row in c.revenue[first:]],
    }


def histogram(model, s: clv.Summary, max_frequency: int = 7) -> dict:
    """Customers by repeat-purchase count, actual vs model (the fit histogram)."""
    h = clv.repeat_transaction_histogram(model, s.frequency, s.T, max_frequency=max_frequency)
    return {"frequency": [int(k) for k in h["frequency"]], "actual": _json(h["actual"]),
            "expected": _json(h["expected"])}


def tracking(model, orders: Orders, today: int, calibration_end: str | None) -> dict:
    """Cumulative repeat purchases week by week, actual vs model; the split week when there was a holdout."""
    t = clv.cumulative_tracking(model, orders.transactions(), customer="customer", timestamp="date", period="D",
                                unit="W", observation_end=np.datetime64(today, "D"))
    origin = int(orders.day.min())
    split = None
    if calibration_end is not None:
        split = (int(np.datetime64(calibration_end, "D").astype(np.int64)) - origin) / 7.0
    return {"week": [int(w) for w in t["time"]], "actual": _json(t["actual"]), "expected": _json(t["expected"]),
            "start": str(np.datetime64(origin, "D")), "split_week": split}


def _clv_distribution(values: np.ndarray) -> dict:
    """Equal-width bins from 0 to the 99th percentile, and one bin for the top 1 %."""
    if values.size == 0:
        return {"edges": [], "counts": []}
    top = float(np.quantile(values, 0.99))
    if top <= 0:
        return {"edges": [0, 0], "counts": [int(values.size)]}
    step = _nice_step(top / CLV_BINS)
    edges = np.arange(0, step * (CLV_BINS + 1), step)
    edges = edges[: int(np.searchsorted(edges, top, side="left")) + 1]
    counts = np.bincount(np.minimum(np.searchsorted(edges, values, side="right") - 1, edges.size - 1),
                         minlength=edges.size)
    return {"edges": [int(e) for e in edges], "counts": [int(c) for c in counts]}


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least `raw` (bins of 50,000 đ rather than 47,318 đ)."""
    power = 10.0 ** np.floor(np.log10(max(raw, 1e-9)))
    for k in (1, 2, 5, 10):
        if k * power >= raw:
            return max(1.0, k * power)
    return 10 * power


def summary(scored: Scored) -> dict:
    """Totals, the CLV distribution, the R x FM grid and the segments (count, spend, predicted CLV)."""
    out: dict = {"buyers": scored.buyers, "repeat_buyers": scored.repeat_buyers}
    if scored.buyers == 0:
        return out
    fm = np.floor((scored.f + scored.m) / 2 + 0.5).astype(np.int64)
    grid = np.zeros((5, 5), dtype=np.int64)
    np.add.at(grid, (scored.r - 1, fm - 1), 1)
    out["rfm_grid"] = grid.tolist()  # rows R = 1..5, columns FM = 1..5
    names = list(SEGMENTS)
    seg_index = {n: i for i, n in enumerate(names)}
    idx = np.array([seg_index[s] for s in scored.segment.tolist()], dtype=np.int64)
    counts = np.bincount(idx, minlength=len(names))
    spend = np.bincount(idx, weights=scored.monetary, minlength=len(names))
    segments = {n: {"count": int(counts[i]), "revenue": int(round(spend[i]))} for i, n in enumerate(names)}
    if scored.clv is not None:
        ok = ~scored.degenerate
        value = np.bincount(idx[ok], weights=scored.clv[ok], minlength=len(names))
        for i, n in enumerate(names):
            segments[n]["clv"] = int(round(value[i]))
        ordered = np.sort(scored.clv[ok])[::-1]
        top = max(1, ordered.size // 10)
        if ordered.size == 0:
            ordered = np.zeros(1)
        out.update({
            "clv_total": int(round(ordered.sum())), "clv_mean": float(ordered.mean()),
            "clv_median": float(np.median(ordered)),
            "clv_top10_share": float(ordered[:top].sum() / ordered.sum()) if ordered.sum() > 0 else None,
            "clv_distribution": _clv_distribution(ordered),
            "expected_purchases_90d": float(scored.expected_90d[ok].sum()),
            "p_alive_mean": float(scored.p_alive[ok].mean()) if ok.any() else None,
            "at_risk": int(((1 - scored.p_alive[ok]) >= 0.5).sum()),
        })
    out["segments"] = segments
    out["revenue_total"] = int(scored.monetary.sum())
    return out
