"""Monthly acquisition cohorts: retention and revenue matrices from (customer, timestamp, amount) arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .clv.summary import to_days

__all__ = ["Cohorts", "monthly_cohorts"]


@dataclass(frozen=True)
class Cohorts:
    """Cohort tables. Row ``i`` is the cohort acquired in ``months[i]``; column ``k`` is ``k`` months later.

    ``retention[i, k]`` is the share of the cohort that bought in month ``k`` (column 0 is 1.0);
    ``active[i, k]`` the number of those customers; ``revenue[i, k]`` their total spend. Cells after
    the last observed month are NaN.
    """

    months: np.ndarray  # datetime64[M], first month of each cohort
    size: np.ndarray
    active: np.ndarray
    retention: np.ndarray
    revenue: np.ndarray


def monthly_cohorts(customer, timestamp, amount=None) -> Cohorts:
    """Group customers by the month of their first purchase and follow them month by month."""
    ids = np.asarray(customer)
    if ids.shape[0] == 0:
        raise ValueError("no transactions")
    months = to_days(timestamp).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    values = np.zeros(ids.shape[0]) if amount is None else np.asarray(amount, dtype=np.float64)
    if ids.shape[0] != months.shape[0] or values.shape[0] != ids.shape[0]:
        raise ValueError("customer, timestamp and amount must have the same length")
    _, code = np.unique(ids, return_inverse=True)
    code = code.ravel()
    first = np.full(code.max() + 1, np.iinfo(np.int64).max)
    np.minimum.at(first, code, months)
    start, end = int(first.min()), int(months.max())
    n_c = end - start + 1
    cohort = first[code] - start
    age = months - first[code]
    size = np.bincount(first - start, minlength=n_c).astype(np.float64)
    # a customer counts once per month of activity
    pairs = np.unique(np.stack([code, age]), axis=1)
    active = np.zeros((n_c, n_c))
    np.add.at(active, (first[pairs[0]] - start, pairs[1]), 1.0)
    revenue = np.zeros((n_c, n_c))
    np.add.at(revenue, (cohort, age), values)
    observed = np.arange(n_c)[None, :] <= (n_c - 1 - np.arange(n_c))[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        retention = np.where(size[:, None] > 0, active / size[:, None], np.nan)
    active = np.where(observed, active, np.nan)
    revenue = np.where(observed, revenue, np.nan)
    retention = np.where(observed, retention, np.nan)
    return Cohorts(months=(start + np.arange(n_c)).astype("datetime64[M]"), size=size, active=active,
                   retention=retention, revenue=revenue)
