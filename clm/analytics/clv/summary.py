"""From a transaction log to the per-customer RFM summary the CLV models are fitted on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

__all__ = ["Summary", "rfm_summary", "to_days", "parse_duration"]

# length of one time unit in days, for expressing times in a unit coarser than the period
_UNIT_DAYS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12.0}


@dataclass(frozen=True)
class Summary(Mapping):
    """Per-customer summary: a read-only mapping of column name to NumPy array.

    ``frequency`` counts repeat purchase periods, ``recency`` is the age of the customer at their
    last purchase, ``T`` their age at the end of the calibration period, both measured from their
    first purchase in the summary's time unit. ``monetary_value`` is the mean value of the repeat
    purchase periods (0 without repeats). Holdout columns are present when a calibration end was
    given. ``Summary`` is a mapping, so ``dict(summary)`` or ``pandas.DataFrame(summary)`` work.
    """

    customer: np.ndarray
    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    monetary_value: np.ndarray | None = None
    frequency_holdout: np.ndarray | None = None
    monetary_value_holdout: np.ndarray | None = None
    duration_holdout: np.ndarray | None = None

    def _columns(self):
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._columns():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self):
        return iter(self._columns())

    def __len__(self) -> int:
        return len(self._columns())

    @property
    def n_customers(self) -> int:
        return int(self.customer.shape[0])

    def __repr__(self) -> str:
        return f"Summary({self.n_customers} customers; columns {', '.join(self._columns())})"


def to_days(values) -> np.ndarray:
    """Timestamps (datetime64, ISO strings, ``datetime``/``date``, pandas Timestamps) to int64 day numbers."""
    arr = np.asarray(values)
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[D]").astype(np.int64)
    if arr.dtype.kind in "iuf":
        raise ValueError("timestamps must be dates or datetimes (datetime64, ISO strings, datetime), not numbers")
    for unit in ("D", "s", "ns"):
        try:
            return np.asarray(arr, dtype=f"datetime64[{unit}]").astype("datetime64[D]").astype(np.int64)
        except (TypeError, ValueError) as exc:
            error = exc
    raise ValueError(f"cannot read timestamps as dates: {error}")


def _one_day(value) -> int:
    return int(to_days([value])[0])


def parse_duration(text) -> float:
    """``"26w"``, ``"180d"``, ``"6m"`` or a ``timedelta64`` to a number of days."""
    if isinstance(text, np.timedelta64):
        return float(text / np.timedelta64(1, "D"))
    if hasattr(text, "total_seconds"):
        return text.total_seconds() / 86400.0
    s = str(text).strip().lower()
    if not s or s[-1] not in "dwm" or not s[:-1].replace(".", "", 1).isdigit():
        raise ValueError(f"cannot read duration {text!r}: use e.g. '26w', '180d' or '6m'")
    return float(s[:-1]) * _UNIT_DAYS[s[-1].upper()]


def _period_index(days: np.ndarray, period: str) -> np.ndarray:
    if period == "D":
        return days
    if period == "W":
        return (days + 3) // 7  # ISO weeks, starting on Monday (1970-01-01 was a Thursday)
    if period == "M":
        return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    raise ValueError(f"period must be 'D', 'W' or 'M', got {period!r}")


def rfm_summary(
    transactions: Mapping,
    *,
    customer: str,
    timestamp: str,
    amount: str | None = None,
    period: str = "W",
    calibration_end=None,
    observation_end=None,
    unit: str | None = None,
) -> Summary:
    """Summarise a transaction log into frequency, recency, T (and monetary value, holdout).

    Parameters
    ----------
    transactions : mapping of column name to array-like
        A dict of arrays or a pandas DataFrame.
    customer, timestamp, amount : str
        Column names of the customer id, the purchase date/time and (optionally) the amount.
    period : {"D", "W", "M"}
        Purchases in the same period (day, ISO week, calendar month) count as one transaction,
        as in the papers; times are counted in periods.
    calibration_end, observation_end : date-like, optional
        End of the calibration period (inclusive) and of the observation (default: last purchase).
        With ``calibration_end`` only purchases up to it build frequency/recency/T, customers first
        seen after it are left out, and the holdout columns describe ``(calibration_end, observation_end]``.
    unit : {"D", "W", "M"}, optional
        Express times in this unit instead of periods; only with ``period="D"`` (e.g. ``unit="W"``
        gives the CDNOW papers' summary: distinct days, times in weeks).

    Returns
    -------
    Summary
        Customers sorted by id.
    """
    for col in (customer, timestamp) + ((amount,) if amount else ()):
        if col not in transactions:
            raise ValueError(f"transactions have no column {col!r}")
    if unit is not None and unit != period and period != "D":
        raise ValueError("unit can differ from period only when period='D'")
    scale = 1.0 if unit is None else _UNIT_DAYS[period] / _UNIT_DAYS[unit]
    ids = np.asarray(transactions[customer])
    if ids.shape[0] == 0:
        raise ValueError("no transactions to summarise")
    days = to_days(transactions[timestamp])
    if ids.shape[0] != days.shape[0]:
        raise ValueError("customer and timestamp columns have different lengths")
    if ids.shape[0] == 0:
        raise ValueError("no transactions to summarise")
    values = None
    if amount:
        values = np.asarray(transactions[amount], dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            raise ValueError(f"rows {np.flatnonzero(bad)[:10].tolist()}: amount is NaN or infinite")
    obs_day = int(days.max()) if observation_end is None else _one_day(observation_end)
    cal_day = obs_day if calibration_end is None else _one_day(calibration_end)
    if cal_day > obs_day:
        raise ValueError("calibration_end is after observation_end")
    keep = days <= obs_day
    ids, days = ids[keep], days[keep]
    values = None if values is None else values[keep]
    uniq_ids, code = np.unique(ids, return_inverse=True)
    code = code.ravel()
    per = _period_index(days, period)
    cal_per, obs_per = int(_period_index(np.array([cal_day]), period)[0]), int(_period_index(np.array([obs_day]), period)[0])

    # one row per (customer, period) with the amount summed
    order = np.lexsort((per, code))
    c_s, p_s = code[order], per[order]
    new = np.ones(c_s.size, dtype=bool)
    new[1:] = (c_s[1:] != c_s[:-1]) | (p_s[1:] != p_s[:-1])
    pc, pp = c_s[new], p_s[new]
    pv = np.add.reduceat(values[order], np.flatnonzero(new)) if values is not None else None

    n_all = uniq_ids.size
    first = np.full(n_all, np.iinfo(np.int64).max)
    np.minimum.at(first, pc, pp)
    in_cal = pp <= cal_per
    cust_keep = first <= cal_per
    last = np.full(n_all, np.iinfo(np.int64).min)
    np.maximum.at(last, pc[in_cal], pp[in_cal])
    count = np.bincount(pc[in_cal], minlength=n_all)
    freq = (count - 1).astype(np.float64)
    rec = (last - first).astype(np.float64)
    T = (cal_per - first).astype(np.float64)
    out = {"customer": uniq_ids, "frequency": freq, "recency": rec * scale, "T": T * scale}
    if pv is not None:
        repeat = in_cal & (pp != first[pc])
        tot = np.bincount(pc[repeat], weights=pv[repeat], minlength=n_all)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["monetary_value"] = np.where(freq > 0, tot / np.maximum(freq, 1), 0.0)
    if calibration_end is not None:
        hold = ~in_cal
        fh = np.bincount(pc[hold], minlength=n_all).astype(np.float64)
        out["frequency_holdout"] = fh
        if pv is not None:
            th = np.bincount(pc[hold], weights=pv[hold], minlength=n_all)
            out["monetary_value_holdout"] = np.where(fh > 0, th / np.maximum(fh, 1), 0.0)
        out["duration_holdout"] = np.full(n_all, (obs_per - cal_per) * scale, dtype=np.float64)
    return Summary(**{k: v[cust_keep] for k, v in out.items()})
