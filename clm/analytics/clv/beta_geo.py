"""BG/NBD model (Fader, Hardie & Lee 2005).

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting Your Customers" the Easy Way:
An Alternative to the Pareto/NBD Model. *Marketing Science* 24(2), 275-284.

Fader, P. S. & Hardie, B. G. S. (2013). Overcoming the BG/NBD Model's #NUM! Error Problem.
http://brucehardie.com/notes/027/

While active, a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)``; after each purchase
they drop out with probability ``p ~ Beta(a, b)``. Time is in the units of ``recency``/``T``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1

from .base import BaseModel, as_float_array, collapse, dot, pilot_rows, softplus, validate_rfm

__all__ = ["BetaGeo"]


class _NBDFamily(BaseModel):
    """Fit plumbing shared by BG/NBD, MBG/NBD and Pareto/NBD: data on (x, t_x, T) with weights."""

    def fit(self, frequency, recency, T, weights=None, *, initial_params=None):
        """Fit by maximum likelihood.

        Parameters
        ----------
        frequency, recency, T : array_like
            Repeat purchases ``x``, time of the last purchase ``t_x`` and age ``T`` of each customer,
            times measured from the first purchase, in any unit (the scale parameters follow it).
        weights : array_like, optional
            Number of customers with each row (default 1 each).
        initial_params : dict, optional
            Starting values of the parameters.

        Returns
        -------
        self
        """
        x, t_x, T_, w = validate_rfm(frequency, recency, T, weights)
        self.n_customers = int(round(w.sum()))
        data = self._prepare(*self._compress(x, t_x, T_, w))
        pick = pilot_rows(x.size)
        pilot = None if pick is None else self._prepare(*self._compress(x[pick], t_x[pick], T_[pick], w[pick]))
        init = None if initial_params is None else [initial_params[k] for k in self._param_names]
        self._maximise(data, float(data["W"]), init, pilot=pilot)
        return self

    @staticmethod
    def _compress(x, t_x, T, w):
        """Merge identical ``(x, t_x, T)`` rows into one with the summed weight."""
        if x.size > 50_000:
            # Continuous recency makes nearly every repeat buyer's row distinct, so a full collapse
            # costs more than it saves; customers without repeat purchases differ only by T, merge those.
            zero = (x == 0) & (w > 0)
            rest = (x > 0) & (w > 0)
            Tz, invz = np.unique(T[zero], return_inverse=True)
            wz = np.bincount(invz.ravel(), weights=w[zero], minlength=Tz.size)
            return (np.concatenate([np.zeros(Tz.size), x[rest]]), np.concatenate([np.zeros(Tz.size), t_x[rest]]),
                    np.concatenate([Tz, T[rest]]), np.concatenate([wz, w[rest]]))
        (xs, ts, Ts), ws = collapse(x, t_x, T, weights=w)
        return xs, ts, Ts, ws

    def _prepare(self, x, t_x, T, w):
        xu, inv = _distinct(x)
        Tu, invT = _distinct(T)
        return {
            "x": x, "t_x": t_x, "T": T, "w": w, "xu": xu, "inv": inv,
            "wx": np.bincount(inv, weights=w, minlength=xu.size), "W": float(w.sum()),
            # per distinct T: the weights and weighted purchase counts of its rows
            "Tu": Tu, "invT": invT, "wT": np.bincount(invT, weights=w, minlength=Tu.size),
            "wxT": np.bincount(invT, weights=w * x, minlength=Tu.size),
        }

    def _initial_log_params(self, data):
        scale = max(float(np.max(data["T"])), 1e-3) / 10.0
        p = {"r": 1.0, "alpha": scale, "a": 1.0, "b": 1.0, "s": 1.0, "beta": scale}
        return np.log([p[k] for k in self._param_names])

    # -- predictions common to the family --------------------------------------------------------
    def _rfm(self, frequency, recency, T):
        x = as_float_array(frequency, "frequency")
        t_x = as_float_array(recency, "recency")
        T_ = as_float_array(T, "T")
        return np.broadcast_arrays(x, t_x, T_)


def _distinct(v):
    """Distinct values of ``v`` and the inverse index; by counting when ``v`` holds small whole numbers."""
    if v.size and v[0] == int(v[0]) and 0 <= v.min() and v.max() < 4 * v.size + 1000:
        iv = v.astype(np.intp)
        if np.array_equal(iv, v):
            seen = np.bincount(iv) > 0
            vu = np.flatnonzero(seen)
            code = np.cumsum(seen) - 1
            return vu.astype(np.float64), code[iv]
    vu, inv = np.unique(v, return_inverse=True)
    return vu, inv.ravel()


class BetaGeo(_NBDFamily):
    r"""BG/NBD model: Poisson purchases, geometric drop-out after each purchase.

    Parameters (after :meth:`fit`, in ``.params``): ``r``, ``alpha`` (gamma heterogeneity of the
    purchase rate; ``alpha`` in the time unit of the data) and ``a``, ``b`` (beta heterogeneity of
    the drop-out probability).

    The likelihood of one customer is FHL (2005) eq. (6), evaluated in log space as in Fader &
    Hardie (2013) so that it stays finite for large ``x``:

    .. math::
        \ln L = \ln\Gamma(r+x) - \ln\Gamma(r) + r\ln\alpha + \ln B(a, b+x) - \ln B(a,b)
        + \operatorname{logaddexp}\left(-(r+x)\ln(\alpha+T),\;
          \ln a - \ln(b+x-1) - (r+x)\ln(\alpha+t_x)\right)

    (the second term only when ``x > 0``). The gradient is analytic.

    Examples
    --------
    >>> m = BetaGeo().fit([2, 1, 0], [30.43, 1.71, 0.0], [38.86, 38.86, 38.86])  # doctest: +SKIP
    """

    _param_names = ("r", "alpha", "a", "b")
    _has_gradient = True
    _modified = False  # MBG/NBD flips this

    def _negloglik(self, log_params, d):
        r, alpha, a, b = np.exp(log_params)
        xu, inv, w, wx, W = d["xu"], d["inv"], d["w"], d["wx"], d["W"]
        Tu, invT, wT, wxT = d["Tu"], d["invT"], d["wT"], d["wxT"]
        mod = 1.0 if self._modified else 0.0
        # terms that depend only on the purchase count: one value per distinct x
        c_beta = betaln(a, b + xu + mod) - betaln(a, b)
        c_r = gammaln(r + xu) - gammaln(r) + r * np.log(alpha)
        with np.errstate(divide="ignore"):
            c4 = np.where(xu + mod > 0, np.log(a) - np.log(np.maximum(b + xu + mod - 1, 1e-300)), -np.inf)
        # per distinct T: log(alpha + T) and 1/(alpha + T)
        latu = np.log(alpha + Tu)
        iaTu = 1.0 / (alpha + Tu)
        # per row: D = log((alpha + t_x)/(alpha + T)) <= 0 and d = A4 - A3, the log-odds of
        # "dropped out right after the last purchase" against "still alive" (-inf when x = 0)
        rx = r + d["x"]
        atx = alpha + d["t_x"]
        D = np.log(atx)
        D -= latu[invT]
        dd = c4[inv]
        dd -= rx * D
        with np.errstate(invalid="ignore"):
            sp = softplus(dd)
            q = np.exp(dd - sp)  # the share of that branch: a logistic of d
        # log L = c_beta + c_r + A3 + softplus(d), with A3 = -(r + x) log(alpha + T)
        ll = float(wx @ (c_beta + c_r)) - float(latu @ (r * wT + wxT)) + dot(w, sp)
        wq = w * q
        wq_x = np.bincount(inv, weights=wq, minlength=xu.size)
        g_r = wx @ (digamma(r + xu) - digamma(r) + np.log(alpha)) - float(wT @ latu) - dot(wq, D)
        np.reciprocal(atx, out=atx)
        atx -= iaTu[invT]
        g_alpha = W * r / alpha - float(iaTu @ (r * wT + wxT)) - dot(wq * rx, atx)
        dab = digamma(a + b) - digamma(a + b + xu + mod)
        g_a = wx @ dab + wq_x.sum() / a
        bx1 = np.maximum(b + xu + mod - 1, 1e-300)
        g_b = wx @ (dab + digamma(b + xu + mod) - digamma(b)) - wq_x @ (1.0 / bx1)
        grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
        return -ll / W, -grad / W

    # -- predictions -------------------------------------------------------------------------------
    def p_alive(self, frequency, recency, T):
        """Probability that a customer with history ``(x, t_x, T)`` is still active (FHL 2005 eq. 13).

        In log space: ``1 / (1 + a/(b+x-1) * ((alpha+T)/(alpha+t_x))**(r+x))`` for ``x > 0``, 1 for ``x = 0``.
        """
        r, alpha, a, b = self._require_fit()
        x, t_x, T_ = self._rfm(frequency, recency, T)
        return np.exp(-self._log_odds_dead(x, t_x, T_, r, alpha, a, b))

    def _log_odds_dead(self, x, t_x, T, r, alpha, a, b):
        """``log(1 + odds)`` where odds = P(dropped at last purchase)/P(alive)."""
        mod = 1.0 if self._modified else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (np.log(a) - np.log(np.maximum(b + x + mod - 1, 1e-300))
                 + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)))
            z = np.where(x + mod > 0, z, -np.inf)
        return np.logaddexp(0.0, z)

    def expected_purchases(self, t, frequency, recency, T):
        """Expected repeat purchases in ``(T, T+t]`` given ``(x, t_x, T)`` (FHL 2005 eq. 10).

        The Gauss hypergeometric factor ``((alpha+T)/(alpha+T+t))**(r+x) * 2F1(r+x, b+x; a+b+x-1; z)``
        is rewritten with Euler's transformation as
        ``((alpha+T)/(alpha+T+t))**(a-1) * 2F1(a+b-1-r, a-1; a+b+x-1; z)``, which stays finite for any ``x``.
        ``t`` may be a scalar or an array broadcastable with the customers.
        """
        r, alpha, a, b = self._require_fit()
        x, t_x, T_ = self._rfm(frequency, recency, T)
        t = np.asarray(t, dtype=np.float64)
        mod = 1.0 if self._modified else 0.0
        ratio = (alpha + T_) / (alpha + T_ + t)
        z = t / (alpha + T_ + t)
        c = a + b + x - 1 + mod
        hyp = ratio ** (a - 1) * hyp2f1(a + b - 1 + mod - r, a - 1, c, z)
        front = c / (a - 1)
        return front * (1.0 - hyp) * np.exp(-self._log_odds_dead(x, t_x, T_, r, alpha, a, b))

    def _expected_purchases_path(self, times, frequency, recency, T):
        """``expected_purchases`` at several horizons, sharing P(alive): shape ``(len(times), n)``."""
        r, alpha, a, b = self._require_fit()
        x, t_x, T_ = self._rfm(frequency, recency, T)
        mod = 1.0 if self._modified else 0.0
        pa = np.exp(-self._log_odds_dead(x, t_x, T_, r, alpha, a, b))
        c = a + b + x - 1 + mod
        lead = c / (a - 1) * pa
        # the hypergeometric factor depends on (x, T) only: evaluate it once per distinct pair
        from .pareto_nbd import _pairs

        xs, Ts, inv = _pairs(x.ravel(), T_.ravel(), identity=False)
        cs = a + b + xs - 1 + mod
        out = np.empty((len(times), x.size))
        for i, t in enumerate(times):
            z = t / (alpha + Ts + t)
            hyp = (1.0 - z) ** (a - 1) * hyp2f1(a + b - 1 + mod - r, a - 1, cs, z)
            out[i] = lead.ravel() * (1.0 - hyp[inv])
        return out

    def expected_purchases_new(self, t):
        """Expected repeat purchases by a new customer in ``(0, t]`` (FHL 2005 eq. 9)."""
        r, alpha, a, b = self._require_fit()
        t = np.asarray(t, dtype=np.float64)
        z = t / (alpha + t)
        hyp = (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z)
        return (a + b - 1) / (a - 1) * (1.0 - hyp)

    def probability_of_purchases(self, t, n):
        """``P(X(t) = n)`` for a new customer (FHL 2005 eq. 8). ``n`` may be an array of counts."""
        r, alpha, a, b = self._require_fit()
        n = np.asarray(n, dtype=np.float64)
        t = float(t)
        lp = r * np.log(alpha / (alpha + t))
        lq = np.log(t / (alpha + t)) if t > 0 else -np.inf
        nb = gammaln(r + n) - gammaln(r) - gammaln(n + 1) + lp + (n * lq if t > 0 else np.where(n == 0, 0.0, -np.inf))
        first = np.exp(betaln(a, b + n) - betaln(a, b) + nb)
        # 1 - sum_{j<n} NBD(j): the NBD survival function, via the regularised incomplete beta
        from scipy.special import betainc

        surv = np.where(n > 0, betainc(np.maximum(n, 1e-300), r, t / (alpha + t)), 0.0)
        second = np.where(n > 0, np.exp(betaln(a + 1, b + n - 1) - betaln(a, b)) * surv, 0.0)
        return first + second
