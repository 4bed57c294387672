"""Pareto/NBD model (Schmittlein, Morrison & Colombo 1987).

Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987). Counting Your Customers: Who Are They
and What Will They Do Next? *Management Science* 33(1), 1-24.

Fader, P. S. & Hardie, B. G. S. (2005). A Note on Deriving the Pareto/NBD Model and Related
Expressions. http://brucehardie.com/notes/009/ (the likelihood, eqs. 19-22, P(alive) eq. 18,
conditional expectation eq. 41).

While active a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)``; their lifetime is
exponential with rate ``mu ~ Gamma(s, beta)``.
"""

from __future__ import annotations

import numpy as np
from scipy import integrate
from scipy.special import digamma, gammaln

from .beta_geo import _NBDFamily

__all__ = ["ParetoNBD"]

_TOL = 1e-16


def _hyp_series(a, b, z, want_grad=True):
    r"""``log S`` and ``d log S / d(a, b, z)`` for ``S(a, b, z) = 2F1(a, b; a+1; z) / a``, ``0 <= z < 1``.

    Uses Euler's transformation ``2F1(a, b; a+1; z) = (1-z)^(1-b) 2F1(1, e; a+1; z)`` with ``e = a+1-b``
    (``e > 0`` for both Pareto/NBD cases: ``e = r+x`` or ``s+1``): the terms ``(e)_k / (a+1)_k z^k``
    of the new series fall from the first on by a ratio below ``z``, whatever the size of ``b``, so no
    rescaling is needed and the tail after a term ``c`` is below ``c z / (1-z)``. Vectorised over rows;
    a row leaves the loop once its tail is below ``1e-16`` of the sum.
    """
    a = np.asarray(a, dtype=np.float64)
    shape = a.shape
    a = a.ravel()
    b = np.broadcast_to(np.asarray(b, dtype=np.float64), shape).ravel()
    z = np.broadcast_to(np.asarray(z, dtype=np.float64), shape).ravel()
    n = a.size
    res = np.empty((4, n))  # G, dG/da, dG/db, dG/dz of G = 2F1(1, e; a+1; z)
    idx = np.arange(n)
    ee, a1, zz = a + 1.0 - b, a + 1.0, z
    G, c = np.ones(n), np.ones(n)
    Ga, Gb, Gz, ha, hb = (np.zeros(n) for _ in range(5))
    k = 0
    while idx.size:
        ie = 1.0 / (ee + k)
        q = c * ((ee + k) / (a1 + k))  # the next term without its last factor z
        if want_grad:
            Gz += (k + 1) * q  # d/dz of the term, exact also at z = 0
            ha += ie - 1.0 / (a1 + k)
            hb -= ie
        c = q * zz
        k += 1
        G += c
        if want_grad:
            Ga += c * ha
            Gb += c * hb
        if k % 4 == 0 or k < 4:
            done = c * zz <= _TOL * G * (1.0 - zz)
            if not done.all() and (~done).sum() <= 64:
                # a few slow rows (z near 1) left: finish them in one 2-d block rather than
                # thousands of passes of this loop
                rest = ~done
                G[rest], Ga[rest], Gb[rest], Gz[rest] = _series_tail(
                    k, ee[rest], a1[rest], zz[rest], c[rest], G[rest], Ga[rest], Gb[rest], Gz[rest],
                    ha[rest], hb[rest], want_grad)
                done[:] = True
            if done.any():
                rows = idx[done]
                res[0, rows] = G[done]
                if want_grad:
                    res[1, rows], res[2, rows], res[3, rows] = Ga[done], Gb[done], Gz[done]
                keep = ~done
                idx = idx[keep]
                ee, a1, zz, G, c, Ga, Gb, Gz, ha, hb = (v[keep] for v in (ee, a1, zz, G, c, Ga, Gb, Gz, ha, hb))
    out = np.empty((4, n))
    l1z = np.log1p(-z)
    Gv = res[0]
    out[0] = (1.0 - b) * l1z + np.log(Gv) - np.log(a)
    if want_grad:
        out[1] = res[1] / Gv - 1.0 / a
        out[2] = res[2] / Gv - l1z
        out[3] = (b - 1.0) / (1.0 - z) + res[3] / Gv
    return out.reshape((4,) + shape)


def _series_tail(k, e, a1, z, c, G, Ga, Gb, Gz, ha, hb, want_grad):
    """Add the terms after the ``k``-th of the series in :func:`_hyp_series` for a few rows at once."""
    # terms fall by a ratio below z: m more terms leave a tail below c z^(m+1) / (1-z)
    with np.errstate(divide="ignore"):
        need = np.log(_TOL * G * (1.0 - z) / np.maximum(c * z, 1e-300)) / np.log(np.maximum(z, 1e-300))
    m = int(min(max(float(np.max(need)), 1.0) + 2, 200_000))
    j = k + np.arange(m, dtype=np.float64)[:, None]  # the index of the term being multiplied in
    ie, ia = 1.0 / (e + j), 1.0 / (a1 + j)
    terms = c * np.cumprod((e + j) * ia * z, axis=0)
    G = G + terms.sum(axis=0)
    if want_grad:
        Ga = Ga + (terms * (ha + np.cumsum(ie - ia, axis=0))).sum(axis=0)
        Gb = Gb + (terms * (hb - np.cumsum(ie, axis=0))).sum(axis=0)
        Gz = Gz + (terms * (j + 1.0)).sum(axis=0) / z  # z > 0 here: rows with z = 0 stop at once
    return G, Ga, Gb, Gz


def _pairs(x, t):
    """Distinct (x, t) pairs and the inverse index, by one lexsort."""
    order = np.lexsort((t, x))
    xs, ts = x[order], t[order]
    new = np.empty(x.size, dtype=bool)
    new[0] = True
    new[1:] = (xs[1:] != xs[:-1]) | (ts[1:] != ts[:-1])
    group = np.cumsum(new) - 1
    inv = np.empty(x.size, dtype=np.intp)
    inv[order] = group
    return xs[new], ts[new], inv


class ParetoNBD(_NBDFamily):
    r"""Pareto/NBD model with parameters ``r, alpha`` (purchase rate) and ``s, beta`` (drop-out rate).

    The likelihood of one customer (Fader & Hardie 2005 note, eqs. 19-22) is

    .. math::
        L = \frac{\Gamma(r+x)\alpha^r\beta^s}{\Gamma(r)}
        \left[\frac{1}{(\alpha+T)^{r+x}(\beta+T)^s} + \frac{s}{r+s+x} A_0\right]

    with, for ``alpha >= beta``,
    ``A_0 = F(r+s+x, s+1; (alpha-beta)/(alpha+t_x)) / (alpha+t_x)^{r+s+x} - (same at T)``, and for
    ``alpha < beta`` the transformed version ``F(r+s+x, r+x; (beta-alpha)/(beta+t))/(beta+t)^{r+s+x}``,
    ``F(a, b; z) = 2F1(a, b; a+1; z)``, so that the hypergeometric argument is always in ``[0, 1)``.
    Everything is computed in log space (log-sum-exp of the two bracket terms, the difference in
    ``A_0`` by ``log1p(-exp(.))``) with a series for ``2F1(a, b; a+1; z)`` that also yields its
    derivatives, so the gradient is analytic. Hypergeometric terms are evaluated once per distinct
    ``(x, t_x)`` and ``(x, T)`` pair.
    """

    _param_names = ("r", "alpha", "s", "beta")
    _has_gradient = True

    def _prepare(self, x, t_x, T, w):
        d = super()._prepare(x, t_x, T, w)
        d["p1"] = _pairs(x, t_x)
        d["p2"] = _pairs(x, T)
        return d

    def fit(self, frequency, recency, T, weights=None, *, initial_params=None):
        """Fit by maximum likelihood; see :meth:`BetaGeo.fit` for the arguments.

        On more than 100,000 distinct rows, the fit starts from the estimate on a fixed-seed random
        subsample of 50,000 rows (same maximum, far fewer full-data likelihood evaluations).
        """
        if initial_params is None:
            n = np.asarray(frequency).shape[0] if np.ndim(frequency) else 1
            if n > 100_000:
                rng = np.random.default_rng(0)
                pick = np.sort(rng.choice(n, 50_000, replace=False))
                sub = lambda v: None if v is None else np.asarray(v)[pick]  # noqa: E731
                pilot = ParetoNBD().fit(sub(frequency), sub(recency), sub(T), sub(weights))
                initial_params = pilot.params
        return super().fit(frequency, recency, T, weights, initial_params=initial_params)

    def _log_terms(self, params, x, t_x, T, d=None, want_grad=False):
        """Per-row ``A1`` (alive branch), ``log J`` (died-in-(t_x,T) branch) and their pieces."""
        r, alpha, s, beta = params
        case1 = alpha >= beta
        m = max(alpha, beta)
        if d is None:
            x1, t1, inv1 = _pairs(x, t_x)
            x2, t2, inv2 = _pairs(x, T)
        else:
            (x1, t1, inv1), (x2, t2, inv2) = d["p1"], d["p2"]
        sides = []
        for xs, ts, inv in ((x1, t1, inv1), (x2, t2, inv2)):
            a = r + s + xs
            if case1:
                b, z = s + 1.0, (alpha - beta) / (alpha + ts)
            else:
                b, z = r + xs, (beta - alpha) / (beta + ts)
            ser = _hyp_series(a, b, z, want_grad)
            lmt = np.log(m + ts)
            L = ser[0] - a * lmt
            sides.append((xs, ts, inv, a, z, ser, lmt, L))
        L1 = sides[0][7][sides[0][2]]
        L2 = sides[1][7][sides[1][2]]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            rho = np.minimum(np.exp(L2 - L1), 1.0)
            logJ = np.log(s) + L1 + np.log1p(-rho)
        A1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        return A1, logJ, rho, sides, case1

    def _negloglik(self, log_params, d):
        params = np.exp(log_params)
        r, alpha, s, beta = params
        x, T, w, xu, wx, W = d["x"], d["T"], d["w"], d["xu"], d["wx"], d["W"]
        A1, logJ, rho, sides, case1 = self._log_terms(params, x, d["t_x"], T, d, want_grad=True)
        lse = np.logaddexp(A1, logJ)
        ll = float(wx @ (gammaln(r + xu) - gammaln(r))) + W * (r * np.log(alpha) + s * np.log(beta))
        ll += float(w @ lse)
        E1 = np.exp(A1 - lse)
        with np.errstate(invalid="ignore"):
            V = np.nan_to_num(np.exp(np.log(s) + sides[0][7][sides[0][2]] - lse))
        # gradient of L_i = log S_i - a log(m + t_i) with respect to (r, alpha, s, beta), per side
        g = []
        for xs, ts, inv, a, _z, ser, lmt, _L in sides:
            _, la, lb, lz = ser
            if case1:
                dz_alpha, dz_beta = (beta + ts) / (alpha + ts) ** 2, -1.0 / (alpha + ts)
                dm_alpha, dm_beta = a / (alpha + ts), 0.0
                gr = la - lmt
                gs = la + lb - lmt
            else:
                dz_alpha, dz_beta = -1.0 / (beta + ts), (alpha + ts) / (beta + ts) ** 2
                dm_alpha, dm_beta = 0.0, a / (beta + ts)
                gr = la + lb - lmt
                gs = la - lmt
            ga = lz * dz_alpha - dm_alpha
            gb = lz * dz_beta - dm_beta
            g.append([np.broadcast_to(v, xs.shape)[inv] for v in (gr, ga, gs, gb)])
        Vrho = V * rho
        EJ = 1.0 - E1
        lat = np.log(alpha + T)
        lbt = np.log(beta + T)
        g_r = (wx @ (digamma(r + xu) - digamma(r)) + W * np.log(alpha) - (w * E1) @ lat
               + w @ (V * g[0][0] - Vrho * g[1][0]))
        g_alpha = (W * r / alpha - (w * E1) @ ((r + x) / (alpha + T))
                   + w @ (V * g[0][1] - Vrho * g[1][1]))
        g_s = (W * np.log(beta) - (w * E1) @ lbt + (w @ EJ) / s
               + w @ (V * g[0][2] - Vrho * g[1][2]))
        g_beta = (W * s / beta - (w * E1) @ (s / (beta + T))
                  + w @ (V * g[0][3] - Vrho * g[1][3]))
        grad = np.array([g_r * r, g_alpha * alpha, g_s * s, g_beta * beta])
        return -ll / W, -grad / W

    # -- predictions -------------------------------------------------------------------------------
    def p_alive(self, frequency, recency, T):
        """P(alive | x, t_x, T): the share of the "still alive at T" branch of the likelihood (FH 2005 eq. 18)."""
        params = self._require_fit()
        x, t_x, T_ = self._rfm(frequency, recency, T)
        shape = x.shape
        A1, logJ, *_ = self._log_terms(params, x.ravel(), t_x.ravel(), T_.ravel())
        return np.exp(A1 - np.logaddexp(A1, logJ)).reshape(shape)

    def expected_purchases(self, t, frequency, recency, T):
        """Expected purchases in ``(T, T+t]`` given ``(x, t_x, T)`` (FH 2005 note eq. 41)."""
        r, alpha, s, beta = self._require_fit()
        x, t_x, T_ = self._rfm(frequency, recency, T)
        t = np.asarray(t, dtype=np.float64)
        pa = self.p_alive(x, t_x, T_)
        return (r + x) * (beta + T_) / (alpha + T_) * _shifted_log(t / (beta + T_), s) * pa

    def _expected_purchases_path(self, times, frequency, recency, T):
        """``expected_purchases`` at several horizons, sharing P(alive): shape ``(len(times), n)``."""
        r, alpha, s, beta = self._require_fit()
        x, t_x, T_ = self._rfm(frequency, recency, T)
        lead = (r + x) * (beta + T_) / (alpha + T_) * self.p_alive(x, t_x, T_)
        return np.stack([lead * _shifted_log(t / (beta + T_), s) for t in times])

    def expected_purchases_new(self, t):
        """Expected purchases by a new customer in ``(0, t]``: ``r beta/(alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]``."""
        r, alpha, s, beta = self._require_fit()
        t = np.asarray(t, dtype=np.float64)
        return r * beta / alpha * _shifted_log(t / beta, s)

    def probability_of_purchases(self, t, n):
        """``P(X(t) = n)`` for a new customer, by integrating the NBD count over the lifetime distribution.

        ``P = P(tau > t) NBD(n; t) + int_0^t f(tau) NBD(n; tau) dtau`` with ``tau`` Pareto-II(s, beta)
        (Fader & Hardie 2006 note 010 gives the closed form; the adaptive quadrature agrees to ~1e-10).
        """
        r, alpha, s, beta = self._require_fit()
        n = np.atleast_1d(np.asarray(n, dtype=np.float64))
        t = float(t)

        def nbd(tau):
            with np.errstate(divide="ignore", invalid="ignore"):
                lp = (gammaln(r + n) - gammaln(r) - gammaln(n + 1) + r * np.log(alpha / (alpha + tau))
                      + np.where(n > 0, n * np.log(tau / (alpha + tau)), 0.0))
            return np.exp(lp)

        def integrand(tau):
            return s / beta * (beta / (beta + tau)) ** (s + 1) * nbd(tau)

        tail = (beta / (beta + t)) ** s * nbd(t)
        if t <= 0:
            return tail
        body, _ = integrate.quad_vec(integrand, 0.0, t, epsabs=1e-13, epsrel=1e-11)
        return tail + body


def _shifted_log(u, s):
    """``(1 - (1+u)^(1-s)) / (s-1)``, continuous at ``s = 1`` where it equals ``log1p(u)``."""
    lu = np.log1p(u)
    if abs(s - 1.0) < 1e-10:
        return lu
    return -np.expm1(-(s - 1.0) * lu) / (s - 1.0)
