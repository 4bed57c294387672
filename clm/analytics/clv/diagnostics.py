"""Model checks on a calibration/holdout split: fit histogram, tracking plot data, holdout error."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .base import as_float_array
from .beta_geo import BetaGeo
from .modified_beta_geo import ModifiedBetaGeo
from .pareto_nbd import ParetoNBD
from .summary import _UNIT_DAYS, Summary, _period_index, parse_duration, rfm_summary, to_days

__all__ = ["calibration_holdout", "repeat_transaction_histogram", "cumulative_tracking", "compare_models", "MODELS"]

MODELS = {"bgnbd": BetaGeo, "pnbd": ParetoNBD, "mbgnbd": ModifiedBetaGeo}


def calibration_holdout(transactions: Mapping, *, customer: str, timestamp: str, calibration_end,
                        observation_end=None, amount: str | None = None, period: str = "D",
                        unit: str | None = "W") -> Summary:
    """Calibration summary plus holdout columns: :func:`rfm_summary` with ``calibration_end`` required."""
    return rfm_summary(transactions, customer=customer, timestamp=timestamp, amount=amount, period=period,
                       calibration_end=calibration_end, observation_end=observation_end, unit=unit)


def repeat_transaction_histogram(model, frequency, T, *, max_frequency: int = 7) -> dict[str, np.ndarray]:
    """Actual vs model-expected number of customers by repeat-transaction count in the calibration period.

    The expected count for ``k`` sums ``P(X(T_i) = k)`` over customers (each over their own ``T_i``);
    the last bucket is ``max_frequency`` or more. Compare e.g. FHL (2005) Figure 2.

    Returns
    -------
    dict with ``frequency`` (0..max_frequency), ``actual`` and ``expected`` arrays.
    """
    x = as_float_array(frequency, "frequency")
    T_ = as_float_array(T, "T")
    ks = np.arange(max_frequency)
    actual = np.bincount(np.minimum(x, max_frequency).astype(int), minlength=max_frequency + 1).astype(float)
    expected = np.zeros(max_frequency + 1)
    Tu, counts = np.unique(T_, return_counts=True)
    for t, c in zip(Tu, counts, strict=True):
        p = np.asarray(model.probability_of_purchases(t, ks), dtype=float)
        expected[:max_frequency] += c * p
        expected[max_frequency] += c * max(0.0, 1.0 - p.sum())
    return {"frequency": np.arange(max_frequency + 1), "actual": actual, "expected": expected}


def cumulative_tracking(model, transactions: Mapping, *, customer: str, timestamp: str, period: str = "D",
                        unit: str = "W", observation_end=None) -> dict[str, np.ndarray]:
    """Cumulative repeat transactions over calendar time, actual vs model (FHL 2005 Figure 3).

    Repeat transactions are counted as in :func:`rfm_summary` (distinct periods after the first).
    The model curve is ``sum_i E[X(t - birth_i)]`` with ``expected_purchases_new``.

    Returns
    -------
    dict with ``time`` (in ``unit`` since the first purchase of the log, 1, 2, ...), ``actual``, ``expected``.
    """
    ids = np.asarray(transactions[customer])
    days = to_days(transactions[timestamp])
    end = int(days.max()) if observation_end is None else int(to_days([observation_end])[0])
    keep = days <= end
    ids, days = ids[keep], days[keep]
    scale = _UNIT_DAYS[period] / _UNIT_DAYS[unit]
    per = _period_index(days, period)
    _, code = np.unique(ids, return_inverse=True)
    code = code.ravel()
    pairs = np.unique(np.stack([code, per]), axis=1)
    first = np.full(code.max() + 1, np.iinfo(np.int64).max)
    np.minimum.at(first, pairs[0], pairs[1])
    origin = int(per.min())
    repeat_t = (pairs[1][pairs[1] != first[pairs[0]]] - origin) * scale
    horizon = int(np.ceil((_period_index(np.array([end]), period)[0] - origin + 1) * scale))
    time = np.arange(1, horizon + 1, dtype=float)
    actual = np.searchsorted(np.sort(repeat_t), time, side="left").astype(float)
    births, counts = np.unique((first - origin) * scale, return_counts=True)
    age = np.clip(time[None, :] - births[:, None], 0.0, None)
    expected = counts @ np.asarray(model.expected_purchases_new(age), dtype=float)
    return {"time": time, "actual": actual, "expected": expected}


def compare_models(transactions: Mapping, *, customer: str, timestamp: str, holdout=None, calibration_end=None,
                   observation_end=None, period: str = "D", unit: str = "W",
                   models=("bgnbd", "pnbd", "mbgnbd")) -> list[dict]:
    """Fit each model on the calibration period and score its holdout predictions.

    Parameters
    ----------
    transactions : mapping of column name to array-like
    customer, timestamp : str
        Column names.
    holdout : str or timedelta, optional
        Length of the holdout period counted back from ``observation_end`` (``"26w"``, ``"180d"``).
    calibration_end : date-like, optional
        Alternatively, the end of the calibration period.
    models : sequence of str or model classes
        Any of ``"bgnbd"``, ``"pnbd"``, ``"mbgnbd"``.

    Returns
    -------
    list of dict
        One row per model: ``model``, ``params``, ``log_likelihood``, ``mae``, ``rmse`` (per customer,
        predicted vs actual holdout repeat purchases), ``predicted_total``, ``actual_total``,
        ``n_customers``, sorted by ``mae``.
    """
    if (holdout is None) == (calibration_end is None):
        raise ValueError("give exactly one of holdout (e.g. '26w') or calibration_end")
    days = to_days(transactions[timestamp])
    obs = int(days.max()) if observation_end is None else int(to_days([observation_end])[0])
    if calibration_end is None:
        cal = obs - int(round(parse_duration(holdout)))
        calibration_end = np.datetime64(cal, "D")
    summ = calibration_holdout(transactions, customer=customer, timestamp=timestamp, calibration_end=calibration_end,
                               observation_end=np.datetime64(obs, "D"), period=period, unit=unit)
    actual = summ.frequency_holdout
    rows = []
    for spec in models:
        cls = MODELS[spec] if isinstance(spec, str) else spec
        name = spec if isinstance(spec, str) else cls.__name__
        model = cls().fit(summ.frequency, summ.recency, summ.T)
        pred = model.expected_purchases(summ.duration_holdout, summ.frequency, summ.recency, summ.T)
        err = pred - actual
        rows.append({
            "model": name, "params": dict(model.params), "log_likelihood": model.log_likelihood,
            "mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2))),
            "predicted_total": float(pred.sum()), "actual_total": float(actual.sum()),
            "n_customers": summ.n_customers,
        })
    return sorted(rows, key=lambda row: row["mae"])
