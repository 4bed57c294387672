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

from .base import dot, softplus
from .beta_geo import _NBDFamily

__all__ = ["ParetoNBD"]

_TOL = 1e-16
_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)
_GL_X, _GL_W = 0.5 * (_GL_X + 1.0), 0.5 * _GL_W  # on [0, 1]
_MAX_TERMS = 2000  # past this many series terms (z near 1 with a slow ratio) the quadrature is cheaper
_SLOPE = 6.0  # the log-integrand changes by at most about this much across one 16-node panel
_CUT = 50.0  # the integrand is cut where a y = _CUT: the rest is below exp(-_CUT) of it


def _hyp_series(a, b, z, want_grad=True, omz=None, max_terms=None):
    r"""``log S`` and ``d log S / d(a, b, z)`` for ``S(a, b, z) = 2F1(a, b; a+1; z) / a``, ``0 <= z < 1``.

    ``omz`` is ``1 - z`` computed without cancellation by the caller (``1 - z`` when omitted). Rows
    whose series would need more than ``_MAX_TERMS`` terms (``z`` near 1 with ``b`` small against
    ``a``: the Pareto/NBD near its degenerate limits, e.g. ``s, beta -> inf``, where the count grows
    like ``beta``) are computed by :func:`_hyp_quadrature` instead, at a bounded cost (``max_terms``
    overrides the limit).

    Uses Euler's transformation ``2F1(a, b; a+1; z) = (1-z)^(1-b) 2F1(1, e; a+1; z)`` with ``e = a+1-b``
    (``e > 0`` for both Pareto/NBD cases: ``e = r+x`` or ``s+1``): the terms ``(e)_k / (a+1)_k z^k``
    of the new series fall from the first on by a ratio below ``z``, whatever the size of ``b``, so no
    rescaling is needed and the tail after a term ``c`` is below ``c z / (1-z)``.

    Vectorised over rows, in place on a shrinking prefix: rows are processed in decreasing order of
    ``z`` (callers pass them sorted by increasing ``t``, which is the same thing), so the rows still
    summing are, up to a few, the first ones. A row's sum stops growing once its tail is below ``1e-16``
    of the sum; the last few slow rows (``z`` near 1) are finished in one 2-d block.
    """
    a = np.asarray(a, dtype=np.float64)
    shape = a.shape
    a = a.ravel()
    b = np.broadcast_to(np.asarray(b, dtype=np.float64), shape).ravel()
    z = np.broadcast_to(np.asarray(z, dtype=np.float64), shape).ravel()
    omz = 1.0 - z if omz is None else np.broadcast_to(np.asarray(omz, dtype=np.float64), shape).ravel()
    slow = _series_terms(a, b, omz) > (_MAX_TERMS if max_terms is None else max_terms)
    if slow.any():
        out = np.empty((4, a.size))
        out[:, slow] = _hyp_quadrature(a[slow], b[slow], omz[slow], want_grad)
        fast = ~slow
        if fast.any():
            out[:, fast] = _hyp_series(a[fast], b[fast], z[fast], want_grad, omz[fast]).reshape(4, -1)
        return out.reshape((4,) + shape)
    n = a.size
    order = None
    if n > 1 and np.any(z[1:] > z[:-1]):
        order = np.argsort(-z, kind="stable")
        a, b, z, omz = a[order], b[order], z[order], omz[order]
    ee, a1 = a + 1.0 - b, a + 1.0
    G, c = np.ones(n), np.ones(n)
    Ga, Gb, Gz, ha, hb = (np.zeros(n) for _ in range(5))  # dG/da, dG/db, dG/dz and running harmonic sums
    act = n  # at least one pass, also when z = 0: the z-derivative needs the first term
    k = 0
    while act:
        sl = slice(0, act)
        u = ee[sl] + k
        iv = 1.0 / (a1[sl] + k)
        q = c[sl] * u
        q *= iv  # the next term without its last factor z
        if want_grad:
            Gz[sl] += (k + 1) * q  # d/dz of the term, exact also at z = 0
            iu = 1.0 / u
            iv -= iu
            ha[sl] -= iv
            hb[sl] -= iu
        np.multiply(q, z[sl], out=c[sl])
        G[sl] += c[sl]
        if want_grad:
            Ga[sl] += c[sl] * ha[sl]
            Gb[sl] += c[sl] * hb[sl]
        k += 1
        if k % 2 == 0:
            busy = c[sl] * z[sl] > _TOL * G[sl] * (1.0 - z[sl])
            act = act - int(np.argmax(busy[::-1])) if busy.any() else 0
            if 0 < act <= 64:
                sl = slice(0, act)
                G[sl], Ga[sl], Gb[sl], Gz[sl] = _series_tail(
                    k, ee[sl], a1[sl], z[sl], c[sl], G[sl], Ga[sl], Gb[sl], Gz[sl], ha[sl], hb[sl], want_grad)
                act = 0
    out = np.empty((4, n))
    l1z = np.log(omz)
    out[0] = (1.0 - b) * l1z + np.log(G) - np.log(a)
    if want_grad:
        out[1] = Ga / G - 1.0 / a
        out[2] = Gb / G - l1z
        out[3] = (b - 1.0) / omz + Gz / G
    if order is not None:
        back = np.empty_like(out)
        back[:, order] = out
        out = back
    return out.reshape((4,) + shape)


def _series_terms(a, b, omz):
    """Upper estimate of the number of terms the series of :func:`_hyp_series` needs (``omz = 1 - z``)."""
    with np.errstate(divide="ignore", over="ignore"):
        need = 37.0 - np.log(omz)
        by_z = need / -np.log1p(-omz)  # z^k alone
        by_ratio = (a + 1.0) * np.expm1(np.minimum(need / b, 700.0))  # prod (1 - b/(a+1+j)) alone
    return np.minimum(by_z, by_ratio)


def _hyp_quadrature(a, b, omz, want_grad=True):
    r"""``log S`` and its derivatives as in :func:`_hyp_series`, by Gauss-Legendre quadrature.

    ``S(a, b, z) = int_0^1 u^(a-1) (1-zu)^(-b) du = int_0^inf e^(-a y) (1 - z e^(-y))^(-b) dy``
    (``u = e^(-y)``). Near ``y = 0`` the second factor behaves like ``(1-z+y)^(-b)``, so the
    variable is ``w = log(1 + y/(1-z))``: in ``w`` the log-integrand has a bounded slope
    ``1 - b g(y) - a y'`` with ``0 < g <= 1`` (``y' = dy/dw = 1-z+y``), up to the cut ``a y = 50``.
    Panels of 16 nodes are laid so that the log-integrand changes by at most about 6 across each
    (``3/(1+b)`` wide for the power part, narrower where the ``e^(-a y)`` cut sets in). Derivatives
    are the quadrature of the differentiated integrand: ``d log S/da = -<y>``,
    ``d log S/db = -<log(1 - z e^-y)>``, ``d log S/dz = b <e^-y / (1 - z e^-y)>``.
    Cost: a few hundred nodes per row, whatever the number of series terms would be.
    """
    a, b, omz = (np.asarray(v, dtype=np.float64).ravel() for v in (a, b, omz))
    n = a.size
    w_max = np.log1p(_CUT / (a * omz))
    h_pow = np.minimum(1.0, _SLOPE / (1.0 + b))  # and at most 1: g(y) turns from 1 to 0 over about 1 in w
    edges = [np.zeros(n)]
    w = edges[0]
    while True:
        done = w >= w_max
        if done.all():
            break
        cut = a * omz * np.expm1(w)  # a y at the panel's left end: the cut adds a (y' e^h - y') across it
        h = np.minimum(h_pow, np.log1p(_SLOPE / np.maximum(cut + a * omz, 1e-300)))
        w = np.minimum(w + h, w_max)
        edges.append(w)
    E = np.stack(edges, axis=1)  # (n, panels + 1), padded with w_max: empty panels weigh nothing
    width = np.diff(E, axis=1)
    wn = E[:, :-1, None] + width[:, :, None] * _GL_X  # nodes (n, panels, 16)
    om = omz[:, None, None]
    em1 = np.expm1(wn)
    y = om * em1
    q = -np.expm1(-y) + om * np.exp(-y)  # 1 - z e^-y without cancellation
    lq = np.log(q)
    logf = -a[:, None, None] * y - b[:, None, None] * lq + np.log(om * (em1 + 1.0))  # with dy/dw
    top = logf.max(axis=(1, 2), keepdims=True)
    p = np.exp(logf - top) * (width[:, :, None] * _GL_W)
    tot = p.sum(axis=(1, 2))
    out = np.empty((4, n))
    out[0] = top[:, 0, 0] + np.log(tot)
    if want_grad:
        p /= tot[:, None, None]
        out[1] = -(p * y).sum(axis=(1, 2))
        out[2] = -(p * lq).sum(axis=(1, 2))
        out[3] = b * (p * (np.exp(-y) / q)).sum(axis=(1, 2))
    return out


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


def _pairs(x, t, identity=True):
    """Distinct (x, t) pairs sorted by ``t`` (the order :func:`_hyp_series` runs fastest in) and the inverse index.

    With continuous ``t`` nearly every pair is distinct and merging them costs more than it saves: past
    50,000 rows, if a sample of 5,000 rows has under 10 % repeats, every row is its own pair (``inv`` is
    ``None`` if the rows were already sorted by ``t`` and ``identity`` allows it).
    """
    if x.size > 50_000 and x.min() == 0 and x.max() > 0:
        # customers without repeat purchases are usually the majority and share few t values:
        # pair them up apart from the others, with a sort of one column
        zero = x == 0
        t0, inv0 = np.unique(t[zero], return_inverse=True)
        x1, t1, inv1 = _pairs(x[~zero], t[~zero], identity=False)
        inv = np.empty(x.size, dtype=np.intp)
        inv[zero] = inv0.ravel()
        inv[~zero] = inv1 + t0.size
        return np.concatenate([np.zeros(t0.size), x1]), np.concatenate([t0, t1]), inv
    if x.size > 50_000:
        k = np.unique(t[:: max(x.size // 5000, 1)]).size
        if k > 0.9 * np.ceil(x.size / max(x.size // 5000, 1)):
            if np.all(t[1:] >= t[:-1]) and identity:
                return x, t, None
            order = np.argsort(t, kind="stable")
            inv = np.empty(x.size, dtype=np.intp)
            inv[order] = np.arange(x.size)
            return x[order], t[order], inv
    order = np.lexsort((x, t))
    xs, ts = x[order], t[order]
    new = np.empty(x.size, dtype=bool)
    new[0] = True
    new[1:] = (xs[1:] != xs[:-1]) | (ts[1:] != ts[:-1])
    group = np.cumsum(new) - 1
    inv = np.empty(x.size, dtype=np.intp)
    inv[order] = group
    return xs[new], ts[new], inv


def _take(values, inv):
    return values if inv is None else values[inv]


def _sum_by(inv, weights, n):
    return weights if inv is None else np.bincount(inv, weights=weights, minlength=n)


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
        d["p2"] = _pairs(x, T, identity=False)
        return d

    def _log_terms(self, params, x, t_x, T, d=None, want_grad=False):
        """Per-row ``A1`` (alive branch), ``log J`` (died-in-(t_x,T) branch) and the per-pair pieces.

        The hypergeometric terms are computed once per distinct ``(x, t_x)`` pair (side 1) and
        ``(x, T)`` pair (side 2); ``A1`` too depends on ``(x, T)`` only.
        """
        r, alpha, s, beta = params
        case1 = alpha >= beta
        m = max(alpha, beta)
        p1, p2 = (_pairs(x, t_x), _pairs(x, T, identity=False)) if d is None else (d["p1"], d["p2"])
        sides = []
        for xs, ts, inv in (p1, p2):
            a = r + s + xs
            if case1:
                b, z, omz = s + 1.0, (alpha - beta) / (alpha + ts), (beta + ts) / (alpha + ts)
            else:
                b, z, omz = r + xs, (beta - alpha) / (beta + ts), (alpha + ts) / (beta + ts)
            ser = _hyp_series(a, b, z, want_grad, omz)
            lmt = np.log(m + ts)
            L = ser[0] - a * lmt
            sides.append((xs, ts, inv, a, ser, lmt, L))
        x2, T2, inv2 = p2
        lat2, lbt2 = np.log(alpha + T2), np.log(beta + T2)
        A1p = -(r + x2) * lat2 - s * lbt2
        L1 = _take(sides[0][6], sides[0][2])
        L2, A1 = sides[1][6][inv2], A1p[inv2]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            rho = np.minimum(np.exp(L2 - L1), 1.0)
            logJ = np.log(s) + L1 + np.log1p(-rho)
        return A1, logJ, L1, rho, sides, case1, (lat2, lbt2)

    def _negloglik(self, log_params, d):
        params = np.exp(log_params)
        r, alpha, s, beta = params
        w, xu, wx, W = d["w"], d["xu"], d["wx"], d["W"]
        A1, logJ, L1, rho, sides, case1, (lat2, lbt2) = self._log_terms(
            params, d["x"], d["t_x"], d["T"], d, want_grad=True)
        with np.errstate(invalid="ignore"):
            lse = A1 + softplus(logJ - A1)  # logJ = -inf (x = 0, t_x = T) gives A1
        ll = float(wx @ (gammaln(r + xu) - gammaln(r))) + W * (r * np.log(alpha) + s * np.log(beta))
        ll += dot(w, lse)
        # per-row shares of the two branches, summed per pair: the gradient is then a few short dot products
        wE1 = w * np.exp(A1 - lse)
        with np.errstate(invalid="ignore"):
            wV = w * np.nan_to_num(np.exp(np.log(s) + L1 - lse))
        x2, T2, inv2 = sides[1][0], sides[1][1], sides[1][2]
        n2 = x2.size
        wE1_2 = np.bincount(inv2, weights=wE1, minlength=n2)
        per_side = (_sum_by(sides[0][2], wV, sides[0][0].size), np.bincount(inv2, weights=wV * rho, minlength=n2))
        g = np.zeros(4)
        for (_xs, ts, _inv, a, ser, lmt, _L), wts, sign in zip(sides, per_side, (1.0, -1.0), strict=True):
            # gradient of L = log S(a, b, z) - a log(m + t) with respect to (r, alpha, s, beta)
            _, la, lb, lz = ser
            if case1:
                dz_alpha, dz_beta = (beta + ts) / (alpha + ts) ** 2, -1.0 / (alpha + ts)
                dm_alpha, dm_beta = a / (alpha + ts), 0.0
                gr, gs = la - lmt, la + lb - lmt
            else:
                dz_alpha, dz_beta = -1.0 / (beta + ts), (alpha + ts) / (beta + ts) ** 2
                dm_alpha, dm_beta = 0.0, a / (beta + ts)
                gr, gs = la + lb - lmt, la - lmt
            g += sign * np.array([dot(wts, gr), dot(wts, lz * dz_alpha - dm_alpha), dot(wts, gs),
                                  dot(wts, lz * dz_beta - dm_beta)])
        sE1 = float(wE1_2.sum())
        g_r = wx @ (digamma(r + xu) - digamma(r)) + W * np.log(alpha) - wE1_2 @ lat2 + g[0]
        g_alpha = W * r / alpha - wE1_2 @ ((r + x2) / (alpha + T2)) + g[1]
        g_s = W * np.log(beta) - wE1_2 @ lbt2 + (W - sE1) / s + g[2]
        g_beta = W * s / beta - s * (wE1_2 @ (1.0 / (beta + T2))) + g[3]
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
