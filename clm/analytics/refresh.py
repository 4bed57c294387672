"""`clm analytics refresh`: RFM, P(alive), expected purchases, 12-month CLV and churn risk for every customer.

The shop's orders in its default currency are summarised per customer with
:func:`clm.analytics.clv.rfm_summary` (``period="D"``: purchases on the same local day count once;
``unit="W"``: times in weeks, the convention of the BTYD papers; the calibration period ends today).
A transaction model (BG/NBD, or with enough history the best of BG/NBD, Pareto/NBD and MBG/NBD by
holdout error) and Gamma-Gamma spend on repeat buyers are fitted, every customer is predicted, and
the scores are upserted into ``customer_scores`` with the run's model, parameters and figures in
``analytics_runs``. Churn risk is ``1 - P(alive)``. A customer without orders, or every customer of a
shop with too few buyers to fit, gets ``status = "not_enough_data"`` and a reason instead of numbers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy.orm import Session

from clm.analytics import clv, report
from clm.analytics.clv.diagnostics import MODELS
from clm.analytics.clv.summary import parse_duration
from clm.analytics.models import AnalyticsRun
from clm.analytics.rfm import rfm_scores, rfm_segments
from clm.analytics.scores import (
    Orders,
    customers_with_other_currencies,
    drop_stale_scores,
    live_customer_ids,
    load_orders,
    utc_offset_days,
    write_scores,
)
from clm.lib.clock import utcnow

MIN_BUYERS = 50  # customers with an order: fewer and no model is fitted
MIN_REPEAT_BUYERS = 20  # customers with a repeat purchase day: the models learn drop-out from them
HORIZON_DAYS = 90  # expected purchases in the next 90 days
CLV_MONTHS = 12
DISCOUNT_RATE = 0.01  # per month, about 12.7 % a year
MIN_COMPARE_BUYERS = 500  # below this a holdout comparison is noise (and Pareto/NBD fits can be slow): BG/NBD
MAX_HOLDOUT_DAYS = 182  # 26 weeks
MIN_HOLDOUT_DAYS = 28
MODEL_NAMES = {"bgnbd": "BG/NBD", "pnbd": "Pareto/NBD", "mbgnbd": "MBG/NBD"}


@dataclass
class Scored:
    """Everything a refresh computed, before it is written: per-customer arrays aligned with `customer`."""

    customer: np.ndarray
    status: str
    reason: str | None
    model: str | None = None
    params: dict = field(default_factory=dict)
    log_likelihood: float | None = None
    holdout: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    recency_days: np.ndarray | None = None
    tenure_days: np.ndarray | None = None
    frequency: np.ndarray | None = None
    monetary: np.ndarray | None = None
    r: np.ndarray | None = None
    f: np.ndarray | None = None
    m: np.ndarray | None = None
    segment: np.ndarray | None = None
    p_alive: np.ndarray | None = None
    expected_90d: np.ndarray | None = None
    clv: np.ndarray | None = None
    degenerate: np.ndarray | None = None  # customers whose predictions were not finite

    @property
    def buyers(self) -> int:
        return int(self.customer.size)

    @property
    def repeat_buyers(self) -> int:
        return 0 if self.frequency is None else int((self.frequency > 0).sum())


def holdout_days_for(span_days: int) -> int | None:
    """Holdout length for model choice: a third of the history in whole weeks, at most 26 weeks;
    None when that is under 4 weeks (too short to tell the models apart)."""
    days = min(MAX_HOLDOUT_DAYS, (span_days // 3) // 7 * 7)
    return days if days >= MIN_HOLDOUT_DAYS else None


def compare(orders: Orders, today: int, holdout_days: int, models=("bgnbd", "pnbd", "mbgnbd")) -> list[dict]:
    """:func:`clm.analytics.clv.compare_models` on the orders: one row per model, best (lowest MAE) first."""
    return clv.compare_models(orders.transactions(), customer="customer", timestamp="date",
                              holdout=f"{holdout_days}d", observation_end=np.datetime64(today, "D"),
                              period="D", unit="W", models=models)


def score(orders: Orders, today: int, *, model: str = "auto", min_buyers: int = MIN_BUYERS,
          min_repeat_buyers: int = MIN_REPEAT_BUYERS) -> Scored:
    """Fit and predict from the orders (pure NumPy: no database). `today` is the local day number."""
    if model != "auto" and model not in MODELS:
        raise ValueError(f"model must be 'auto' or one of {', '.join(MODELS)}, got {model!r}")
    keep = orders.day <= today
    orders = Orders(orders.customer[keep], orders.day[keep], orders.amount[keep])
    if orders.size == 0:
        return Scored(customer=np.zeros(0, dtype=np.int64), status="not_enough_data", reason="no_orders")
    tx = orders.transactions()
    s = clv.rfm_summary(tx, customer="customer", timestamp="date", amount="amount", period="D", unit="W",
                        observation_end=np.datetime64(today, "D"))
    code = np.searchsorted(s.customer, orders.customer)
    out = Scored(customer=s.customer.astype(np.int64), status="ok", reason=None)
    out.frequency = s.frequency.astype(np.int64)
    out.recency_days = np.rint((s.T - s.recency) * 7).astype(np.int64)
    out.tenure_days = np.rint(s.T * 7).astype(np.int64)
    out.monetary = np.rint(np.bincount(code, weights=orders.amount, minlength=s.n_customers)).astype(np.int64)
    out.r, out.f, out.m = rfm_scores(out.recency_days, out.frequency, out.monetary)
    out.segment = rfm_segments(out.r, out.f, out.m)
    out.diagnostics["cohorts"] = report.cohorts(orders)
    if out.buyers < min_buyers:
        out.status, out.reason = "not_enough_data", "too_few_buyers"
        out.notes.append(f"{out.buyers} customers have bought; the models need at least {min_buyers}")
    elif out.repeat_buyers < min_repeat_buyers:
        out.status, out.reason = "not_enough_data", "too_few_repeat_buyers"
        out.notes.append(f"{out.repeat_buyers} customers have bought on more than one day; "
                         f"the models need at least {min_repeat_buyers}")
    if out.status != "ok":
        out.diagnostics["summary"] = report.summary(out)
        return out
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", clv.ConvergenceWarning)
        _fit_and_predict(out, s, orders, today, model, min_repeat_buyers)
    out.notes += sorted({str(w.message) for w in caught if issubclass(w.category, clv.ConvergenceWarning)})
    out.diagnostics["summary"] = report.summary(out)
    return out


def _fit_and_predict(out: Scored, s: clv.Summary, orders: Orders, today: int, model: str, min_repeat: int) -> None:
    chosen, calibration = model, None
    holdout_days = holdout_days_for(today - int(orders.day.min()))
    if model == "auto":
        chosen = "bgnbd"
        if out.buyers < MIN_COMPARE_BUYERS:
            out.notes.append(f"{out.buyers} buyers: BG/NBD used without a holdout comparison "
                             f"(it needs {MIN_COMPARE_BUYERS})")
        elif holdout_days is not None:
            try:
                rows = compare(orders, today, holdout_days)
                chosen = rows[0]["model"]
                calibration = rows[0]["params"]
                out.holdout = {"days": holdout_days, "calibration_end": str(np.datetime64(today - holdout_days, "D")),
                               "rows": [_clean_row(r) for r in rows]}
            except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
                out.notes.append(f"model comparison skipped: {exc}")
        else:
            out.notes.append("history shorter than 12 weeks: BG/NBD used without a holdout comparison")
    fitted = MODELS[chosen]().fit(s.frequency, s.recency, s.T)
    out.model, out.params, out.log_likelihood = chosen, dict(fitted.params), float(fitted.log_likelihood)
    out.p_alive = np.clip(fitted.p_alive(s.frequency, s.recency, s.T), 0.0, 1.0)
    out.expected_90d = fitted.expected_purchases(HORIZON_DAYS / 7.0, s.frequency, s.recency, s.T)
    spend_model, spend = None, s.monetary_value
    repeat = (s.frequency > 0) & (s.monetary_value > 0)
    if repeat.sum() >= min_repeat:
        try:
            spend_model = clv.GammaGamma().fit(s.frequency[repeat], s.monetary_value[repeat])
            out.params.update({f"gg_{k}": v for k, v in spend_model.params.items()})
        except (ValueError, FloatingPointError) as exc:
            out.notes.append(f"Gamma-Gamma not fitted ({exc}); spend per purchase is each customer's average")
    if spend_model is None:
        counts = np.bincount(np.searchsorted(s.customer, orders.customer), minlength=s.n_customers)
        spend = out.monetary / np.maximum(counts, 1)
    value = clv.customer_lifetime_value(fitted, spend_model, s.frequency, s.recency, s.T, spend,
                                        horizon=CLV_MONTHS, discount_rate=DISCOUNT_RATE, period="W")
    out.clv = np.maximum(value, 0.0)
    out.degenerate = ~(np.isfinite(out.p_alive) & np.isfinite(out.expected_90d) & np.isfinite(out.clv))
    if out.degenerate.any():
        # e.g. BG/NBD with a at 1, where E[X] divides by a - 1: no number rather than a wrong one
        out.notes.append(f"{int(out.degenerate.sum())} customers got no finite prediction from {chosen} "
                         f"({', '.join(f'{k}={v:.4g}' for k, v in fitted.params.items())}); they are marked fit_failed")
        for name in ("p_alive", "expected_90d", "clv"):
            setattr(out, name, np.where(out.degenerate, 0.0, getattr(out, name)))
    out.diagnostics["histogram"] = report.histogram(fitted, s)
    tracker = fitted
    if calibration is not None:
        tracker = MODELS[chosen]()
        tracker.params = dict(calibration)  # the calibration-period fit: its curve past the split is a forecast
    out.diagnostics["tracking"] = report.tracking(tracker, orders, today, out.holdout.get("calibration_end"))


def _clean_row(row: dict) -> dict:
    return {k: (float(v) if isinstance(v, np.floating) else v) for k, v in row.items()}


def rows_for(scored: Scored, live: np.ndarray, other: np.ndarray, currency: str, run_id: int, at: datetime):
    """Score rows for every live customer: buyers with their numbers, the others with a reason."""
    if scored.buyers:
        pos_ok = np.minimum(np.searchsorted(scored.customer, live), scored.buyers - 1)
        has = scored.customer[pos_ok] == live
    else:
        pos_ok, has = np.zeros(live.size, dtype=np.int64), np.zeros(live.size, dtype=bool)
    no_orders = np.isin(live, other)
    model_ok = scored.status == "ok"
    lists = {}
    if scored.buyers:
        for name in ("recency_days", "tenure_days", "frequency", "monetary", "r", "f", "m", "segment"):
            lists[name] = getattr(scored, name).tolist()
        if model_ok:
            lists["p_alive"] = scored.p_alive.tolist()
            lists["expected_90d"] = scored.expected_90d.tolist()
            lists["clv"] = np.rint(scored.clv).astype(np.int64).tolist()
            lists["degenerate"] = scored.degenerate.tolist()
    for cid, j, bought, elsewhere in zip(live.tolist(), pos_ok.tolist(), has.tolist(), no_orders.tolist(),
                                         strict=True):
        if not bought:
            yield (cid, "not_enough_data", "other_currency" if elsewhere else "no_orders", None, None, None, None,
                   None, None, None, None, None, None, None, None, currency, None, run_id, at)
            continue
        rfm = (lists["recency_days"][j], lists["tenure_days"][j], lists["frequency"][j], lists["monetary"][j],
               lists["r"][j], lists["f"][j], lists["m"][j], lists["segment"][j])
        if model_ok and lists["degenerate"][j]:
            yield (cid, "not_enough_data", "fit_failed", *rfm, None, None, None, None, currency, None, run_id, at)
        elif model_ok:
            p = lists["p_alive"][j]
            yield (cid, "ok", None, *rfm, p, lists["expected_90d"][j], lists["clv"][j], 1.0 - p, currency,
                   scored.model, run_id, at)
        else:
            yield (cid, "not_enough_data", scored.reason, *rfm, None, None, None, None, currency, None, run_id, at)


def refresh(session: Session, now: datetime | None = None, *, currency: str = "VND", timezone: str = "UTC",
            model: str = "auto", min_buyers: int = MIN_BUYERS, min_repeat_buyers: int = MIN_REPEAT_BUYERS,
            on_chunk: Callable[[str, int, int], None] | None = None) -> AnalyticsRun:
    """Score every live customer from the orders and record the run; returns the finished run.

    `on_chunk(phase, done, total)` is called after reading and after each chunk of written rows
    (the CLI and the worker commit there, so writers are not held up for the whole refresh).
    """
    now = now or utcnow()
    offset = utc_offset_days(timezone, now)
    today = int(np.floor(now.timestamp() / 86400.0 + offset))
    run = AnalyticsRun(started_at=utcnow(), as_of=now, status="running", currency=currency, params={},
                       holdout={}, diagnostics={}, notes=[])
    session.add(run)
    session.flush()
    orders = load_orders(session, currency, offset)
    live = live_customer_ids(session)
    other, codes = customers_with_other_currencies(session, currency)
    if on_chunk:
        on_chunk("read", orders.size, orders.size)
    scored = score(orders, today, model=model, min_buyers=min_buyers, min_repeat_buyers=min_repeat_buyers)
    if codes:
        scored.notes.append(f"orders in {', '.join(codes)} are left out: CLV is in {currency}")
    scored.diagnostics.setdefault("summary", {})["customers_total"] = int(live.size)
    written = write_scores(session, rows_for(scored, live, other, currency, run.id, now), int(live.size),
                           on_chunk=(lambda d, t: on_chunk("write", d, t)) if on_chunk else None)
    drop_stale_scores(session)
    run.status, run.reason, run.model = scored.status, scored.reason, scored.model
    run.params, run.log_likelihood = scored.params, scored.log_likelihood
    run.customers_total, run.buyers, run.repeat_buyers = written, scored.buyers, scored.repeat_buyers
    run.customers_scored = scored.buyers - int(scored.degenerate.sum()) if scored.status == "ok" else 0
    run.holdout, run.diagnostics, run.notes = scored.holdout, scored.diagnostics, scored.notes
    run.finished_at = utcnow()
    session.flush()
    return run


def validate(session: Session, holdout: str, now: datetime | None = None, *, currency: str = "VND",
             timezone: str = "UTC") -> list[dict]:
    """Compare BG/NBD, Pareto/NBD and MBG/NBD on the shop's orders by holdout error (best first)."""
    now = now or utcnow()
    offset = utc_offset_days(timezone, now)
    today = int(np.floor(now.timestamp() / 86400.0 + offset))
    orders = load_orders(session, currency, offset)
    days = int(round(parse_duration(holdout)))
    if orders.size == 0:
        raise ValueError(f"there are no orders in {currency} to validate the models on")
    if today - int(orders.day.min()) <= days:
        raise ValueError(f"the orders span {today - int(orders.day.min())} days: a holdout of {holdout} leaves "
                         "no calibration period; choose a shorter --holdout")
    return [_clean_row(r) for r in compare(orders, today, days)]


def refresh_if_due(session: Session, now: datetime, *, currency: str, timezone: str, every: timedelta = timedelta(days=1),
                   on_chunk: Callable[[str, int, int], None] | None = None) -> int:
    """The worker's daily refresh: run one when the newest finished run is older than `every`.

    Returns the customers written (0 when a refresh, by the CLI or another worker, is recent enough).
    """
    from clm.analytics.scores import latest_run

    last = latest_run(session)
    if last is not None and last.as_of > now - every:
        return 0
    return refresh(session, now, currency=currency, timezone=timezone, on_chunk=on_chunk).customers_total
