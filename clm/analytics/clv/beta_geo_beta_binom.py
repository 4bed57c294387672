"""BG/BB model for discrete-time, non-contractual settings (Fader, Hardie & Shang 2010).

Fader, P. S., Hardie, B. G. S. & Shang, J. (2010). Customer-Base Analysis in a Discrete-Time
Noncontractual Setting. *Marketing Science* 29(6), 1086-1108.

At each of ``n`` transaction opportunities an active customer buys with probability
``p ~ Beta(alpha, beta)`` and, before the next opportunity, drops out with probability
``theta ~ Beta(gamma, delta)``. ``frequency`` = repeat transactions ``x``, ``recency`` = the
opportunity of the last one ``t_x`` (0 if none), ``n_periods`` = number of opportunities ``n``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, gammaln, logsumexp

from .base import BaseModel, as_float_array, check_rows, collapse

__all__ = ["BetaGeoBetaBinom"]


def _log_binom(n, k):
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


class BetaGeoBetaBinom(BaseModel):
    r"""BG/BB model with parameters ``alpha, beta`` (purchase) and ``gamma, delta`` (drop-out).

    Likelihood of one customer (FHS 2010, eq. 5):

    .. math::
        L = \frac{B(\alpha+x, \beta+n-x)}{B(\alpha,\beta)}\frac{B(\gamma, \delta+n)}{B(\gamma,\delta)}
        + \sum_{i=0}^{n-t_x-1} \frac{B(\alpha+x, \beta+t_x-x+i)}{B(\alpha,\beta)}
          \frac{B(\gamma+1, \delta+t_x+i)}{B(\gamma,\delta)}

    summed in log space (log-sum-exp). Fitted with a numerical gradient: the data are grouped by
    ``(x, t_x, n)``, which has at most ``O(n^3)`` distinct rows.
    """

    _param_names = ("alpha", "beta", "gamma", "delta")
    _has_gradient = False

    def fit(self, frequency, recency, n_periods, weights=None, *, initial_params=None):
        """Fit by maximum likelihood on ``(x, t_x, n)`` rows, optionally grouped with ``weights``."""
        x = as_float_array(frequency, "frequency")
        t_x = as_float_array(recency, "recency")
        n = as_float_array(n_periods, "n_periods")
        if not (x.size == t_x.size == n.size):
            raise ValueError("frequency, recency and n_periods must have the same length")
        if x.size == 0:
            raise ValueError("empty customer summary: no rows to fit")
        w = np.ones_like(x) if weights is None else as_float_array(weights, "weights")
        finite = np.isfinite(x) & np.isfinite(t_x) & np.isfinite(n) & np.isfinite(w)
        with np.errstate(invalid="ignore"):
            check_rows([
                (~finite, "NaN or infinite values"),
                (finite & ((x < 0) | (t_x < 0) | (n < 0) | (w < 0)), "negative values"),
                (finite & ((x != np.round(x)) | (t_x != np.round(t_x)) | (n != np.round(n))),
                 "frequency, recency and n_periods must be whole numbers"),
                (finite & (t_x > n), "recency greater than n_periods"),
                (finite & (x > t_x), "frequency greater than recency"),
                (finite & (x == 0) & (t_x > 0), "zero frequency with positive recency"),
                (finite & (x > 0) & (t_x == 0), "positive frequency with zero recency"),
            ])
        self.n_customers = int(round(w.sum()))
        (xs, ts, ns), ws = collapse(x, t_x, n, weights=w)
        data = {"x": xs, "t_x": ts, "n": ns, "w": ws}
        init = None if initial_params is None else [initial_params[k] for k in self._param_names]
        self._maximise(data, float(ws.sum()), init)
        return self

    def _initial_log_params(self, data):
        return np.zeros(4)

    @staticmethod
    def _loglik(params, x, t_x, n):
        alpha, beta, gamma, delta = params
        x, t_x, n = np.broadcast_arrays(x, t_x, n)
        base_ab, base_gd = betaln(alpha, beta), betaln(gamma, delta)
        alive = betaln(alpha + x, beta + n - x) - base_ab + betaln(gamma, delta + n) - base_gd
        span = int(np.max(n - t_x)) if x.size else 0
        i = np.arange(max(span, 1))[:, None]
        with np.errstate(invalid="ignore"):
            died = (betaln(alpha + x, beta + t_x - x + i) - base_ab + betaln(gamma + 1, delta + t_x + i) - base_gd)
        died = np.where(i < (n - t_x), died, -np.inf)
        return np.logaddexp(alive, logsumexp(died, axis=0))

    def _negloglik(self, log_params, d):
        ll = self._loglik(np.exp(log_params), d["x"], d["t_x"], d["n"])
        return -float(d["w"] @ ll) / d["w"].sum()

    # -- predictions -------------------------------------------------------------------------------
    def _xtn(self, frequency, recency, n_periods):
        return np.broadcast_arrays(as_float_array(frequency, "frequency"), as_float_array(recency, "recency"),
                                   as_float_array(n_periods, "n_periods"))

    def p_alive(self, frequency, recency, n_periods, m_periods=1):
        """P(still alive at opportunity ``n + m_periods``) given ``(x, t_x, n)`` (FHS 2010 eq. 11)."""
        alpha, beta, gamma, delta = params = self._require_fit()
        x, t_x, n = self._xtn(frequency, recency, n_periods)
        lp = (betaln(alpha + x, beta + n - x) - betaln(alpha, beta)
              + betaln(gamma, delta + n + m_periods) - betaln(gamma, delta))
        return np.exp(lp - self._loglik(params, x, t_x, n))

    def expected_purchases(self, t, frequency, recency, n_periods):
        """Expected transactions in the next ``t`` opportunities given ``(x, t_x, n)`` (FHS 2010 eq. 13)."""
        alpha, beta, gamma, delta = params = self._require_fit()
        x, t_x, n = self._xtn(frequency, recency, n_periods)
        lead = np.exp(betaln(alpha + x + 1, beta + n - x) - betaln(alpha, beta) - self._loglik(params, x, t_x, n))
        k = delta / (gamma - 1) * np.exp(gammaln(gamma + delta) - gammaln(1 + delta))
        diff = np.exp(gammaln(1 + delta + n) - gammaln(gamma + delta + n)) - np.exp(
            gammaln(1 + delta + n + t) - gammaln(gamma + delta + n + t))
        return lead * k * diff

    def expected_purchases_new(self, n):
        """Expected transactions of a new customer in the first ``n`` opportunities (FHS 2010 eq. 8)."""
        alpha, beta, gamma, delta = self._require_fit()
        n = np.asarray(n, dtype=np.float64)
        ratio = np.exp(gammaln(gamma + delta) - gammaln(gamma + delta + n) + gammaln(1 + delta + n) - gammaln(1 + delta))
        return alpha / (alpha + beta) * delta / (gamma - 1) * (1 - ratio)

    def probability_of_purchases(self, n, x):
        """``P(X(n) = x)`` for a new customer (FHS 2010 eq. 7); ``x`` may be an array of counts."""
        alpha, beta, gamma, delta = self._require_fit()
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        n = int(n)
        bab, bgd = betaln(alpha, beta), betaln(gamma, delta)
        with np.errstate(invalid="ignore"):
            first = _log_binom(n, x) + betaln(alpha + x, beta + n - x) - bab + betaln(gamma, delta + n) - bgd
        first = np.where(x <= n, first, -np.inf)
        i = np.arange(n)[:, None]
        with np.errstate(invalid="ignore"):
            terms = _log_binom(i, x) + betaln(alpha + x, beta + i - x) - bab + betaln(gamma + 1, delta + i) - bgd
        terms = np.where(i >= x, terms, -np.inf)
        return np.exp(np.logaddexp(first, logsumexp(terms, axis=0) if n else -np.inf))
