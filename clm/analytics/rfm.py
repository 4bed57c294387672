"""RFM scores (quintiles 1..5) and the usual named RFM segments, in pure NumPy."""

from __future__ import annotations

import numpy as np

__all__ = ["rfm_scores", "rfm_segments", "SEGMENTS", "quintile_scores"]


def quintile_scores(values, *, higher_is_better: bool = True) -> np.ndarray:
    """Scores 1..5 by quintile of rank; ties get the same score (ranked by value, then stably).

    Customers are ranked with a stable sort so equal values share the *lowest* rank of their tie
    group (``method="min"``), then score = ``1 + floor(5 * rank / n)``. Deterministic for any input.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError("values must be one-dimensional")
    if np.isnan(v).any():
        raise ValueError(f"rows {np.flatnonzero(np.isnan(v))[:10].tolist()}: NaN values cannot be scored")
    n = v.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    key = v if higher_is_better else -v
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    first = np.searchsorted(sorted_key, sorted_key, side="left")  # min rank of each tie group
    rank = np.empty(n, dtype=np.int64)
    rank[order] = first
    return 1 + (5 * rank) // n


def rfm_scores(recency_days, frequency, monetary):
    """R, F and M scores 1..5: recent, frequent, high-spending customers score 5.

    ``recency_days`` is the time since the last purchase (smaller is better).
    """
    r = quintile_scores(recency_days, higher_is_better=False)
    f = quintile_scores(frequency)
    m = quintile_scores(monetary)
    return r, f, m


# The standard R x FM grid (FM = rounded mean of F and M), as used by common RFM segmentations.
# Each entry: segment name -> list of (R range, FM range), inclusive.
SEGMENTS = {
    "champions": [((5, 5), (4, 5)), ((4, 4), (5, 5))],
    "loyal": [((3, 3), (4, 5)), ((4, 4), (4, 4))],
    "potential loyalist": [((4, 5), (2, 3))],
    "new": [((5, 5), (1, 1))],
    "promising": [((4, 4), (1, 1))],
    "need attention": [((3, 3), (3, 3))],
    "about to sleep": [((3, 3), (1, 2))],
    "can't lose them": [((1, 1), (5, 5))],
    "at risk": [((1, 2), (3, 4)), ((2, 2), (5, 5))],
    "hibernating": [((2, 2), (1, 2))],
    "lost": [((1, 1), (1, 2))],
}


def rfm_segments(r_score, f_score, m_score) -> np.ndarray:
    """Map scores to named segments through the R x FM grid; every (R, FM) cell has exactly one name."""
    r = np.asarray(r_score, dtype=np.int64)
    fm = np.floor((np.asarray(f_score) + np.asarray(m_score)) / 2 + 0.5).astype(np.int64)
    grid = np.empty((6, 6), dtype=object)
    for name, cells in SEGMENTS.items():
        for (r0, r1), (f0, f1) in cells:
            grid[r0:r1 + 1, f0:f1 + 1] = name
    if ((r < 1) | (r > 5) | (fm < 1) | (fm > 5)).any():
        raise ValueError("scores must be between 1 and 5")
    return grid[r, fm].astype(str)
