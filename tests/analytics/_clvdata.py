"""Loaders for the CDNOW and donations fixtures, and a BG/NBD simulator (shared by the CLV tests)."""

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data" / "cdnow"


def cdnow_summary():
    d = np.genfromtxt(DATA / "cdnow_customers_summary.csv", delimiter=",", names=True)
    return d["frequency"], d["recency"], d["T"]


def cdnow_with_value():
    return np.genfromtxt(DATA / "cdnow_customers_summary_with_transactions.csv", delimiter=",", names=True)


def donations():
    return np.genfromtxt(DATA / "donations.csv", delimiter=",", names=True)


def _dates(yyyymmdd):
    d = yyyymmdd.astype(np.int64)
    y, m, day = d // 10000, d // 100 % 100, d % 100
    months = (y - 1970) * 12 + (m - 1)
    return months.astype("datetime64[M]").astype("datetime64[D]") + (day - 1).astype("timedelta64[D]")


def cdnow_sample_transactions():
    raw = np.loadtxt(DATA / "CDNOW_sample.txt")
    return {"customer": raw[:, 1].astype(np.int64), "date": _dates(raw[:, 2]), "amount": raw[:, 4]}


def cdnow_master_transactions():
    raw = np.loadtxt(DATA / "CDNOW_master.txt", skiprows=1)
    return {"customer": raw[:, 0].astype(np.int64), "date": _dates(raw[:, 1]), "amount": raw[:, 3]}


def simulate_bgnbd(n, r, alpha, a, b, *, seed, t_min=27.0, t_max=39.0, modified=False):
    """Draw (x, t_x, T) from BG/NBD (or MBG/NBD) with ages T on a daily grid in weeks."""
    rng = np.random.default_rng(seed)
    T = rng.integers(int(t_min * 7), int(t_max * 7) + 1, n) / 7.0
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    x, tx, t = np.zeros(n), np.zeros(n), np.zeros(n)
    alive = np.ones(n, dtype=bool)
    if modified:  # MBG/NBD: may drop out right at the first purchase
        alive &= rng.random(n) >= p
    while alive.any():
        idx = np.flatnonzero(alive)
        t[idx] += rng.exponential(1.0 / np.maximum(lam[idx], 1e-300))
        ok = t[idx] < T[idx]
        alive[idx[~ok]] = False
        j = idx[ok]
        x[j] += 1
        tx[j] = t[j]
        alive[j[rng.random(j.size) < p[j]]] = False
    return x, tx, T


def simulate_pareto_nbd(n, r, alpha, s, beta, *, seed, t_min=27.0, t_max=39.0):
    """Draw (x, t_x, T) from Pareto/NBD."""
    rng = np.random.default_rng(seed)
    T = rng.integers(int(t_min * 7), int(t_max * 7) + 1, n) / 7.0
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    death = np.minimum(rng.exponential(1.0 / np.maximum(mu, 1e-300)), T)
    x, tx, t = np.zeros(n), np.zeros(n), np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        t[idx] += rng.exponential(1.0 / np.maximum(lam[idx], 1e-300))
        ok = t[idx] < death[idx]
        alive[idx[~ok]] = False
        j = idx[ok]
        x[j] += 1
        tx[j] = t[j]
    return x, tx, T
