"""Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005; Fader & Hardie 2013).

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: Using Iso-Value Curves for
Customer Base Analysis. *Journal of Marketing Research* 42(4), 415-430.

Fader, P. S. & Hardie, B. G. S. (2013). The Gamma-Gamma Model of Monetary Value.
http://brucehardie.com/notes/025/

Transaction values of a customer are ``Gamma(p, nu)``; ``nu ~ Gamma(q, gamma)`` across customers.
Fit it on repeat buyers only (``frequency > 0``), with ``monetary_value`` the mean repeat value.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln

from .base import BaseModel, as_float_array, check_rows, pilot_rows
from .beta_geo import _distinct

__all__ = ["GammaGamma"]


class GammaGamma(BaseModel):
    r"""Gamma-Gamma spend model with parameters ``p, q, gamma``.

    Log-likelihood of the mean value ``m`` of ``x`` transactions (Fader & Hardie 2013, eq. 3, the
    density of the mean; ``gamma`` is written ``v``):

    .. math::
        \ln\Gamma(px+q) - \ln\Gamma(px) - \ln\Gamma(q) + q\ln v + (px-1)\ln m + px\ln x
        - (px+q)\ln(xm+v)

    The gradient is analytic; terms that depend only on ``x`` are computed once per distinct ``x``.
    """

    _param_names = ("p", "q", "gamma")
    _has_gradient = True

    def fit(self, frequency, monetary_value, weights=None, *, initial_params=None):
        """Fit on repeat buyers.

        Parameters
        ----------
        frequency : array_like
            Number of repeat transactions ``x`` (must be > 0).
        monetary_value : array_like
            Mean value of those transactions (must be > 0).
        weights : array_like, optional
            Number of customers with each row.
        """
        x = as_float_array(frequency, "frequency")
        m = as_float_array(monetary_value, "monetary_value")
        if x.size != m.size:
            raise ValueError(f"frequency and monetary_value must have the same length, got {x.size} and {m.size}")
        if x.size == 0:
            raise ValueError("empty input: no repeat buyers to fit")
        w = np.ones_like(x) if weights is None else as_float_array(weights, "weights")
        finite = np.isfinite(x) & np.isfinite(m) & np.isfinite(w)
        with np.errstate(invalid="ignore"):
            check_rows([
                (~finite, "NaN or infinite values"),
                (finite & (x <= 0), "frequency must be positive (fit Gamma-Gamma on repeat buyers only)"),
                (finite & (m <= 0), "monetary_value must be positive"),
                (finite & (w < 0), "negative weights"),
            ])
        self.n_customers = int(round(w.sum()))
        keep = w > 0
        data = self._prepare(x[keep], m[keep], w[keep])
        pick = pilot_rows(int(keep.sum()))
        pilot = None if pick is None else self._prepare(x[keep][pick], m[keep][pick], w[keep][pick])
        init = None if initial_params is None else [initial_params[k] for k in self._param_names]
        self._maximise(data, float(data["W"]), init, pilot=pilot)
        return self

    @staticmethod
    def _prepare(xs, ms, ws):
        # mean spends are continuous: identical rows are rare, so rows are not collapsed; what depends
        # on x alone is summed per distinct x
        xu, inv = _distinct(xs)
        lm = np.log(ms)
        return {"xm": xs * ms, "w": ws, "wx_row": ws * xs, "xu": xu, "W": float(ws.sum()), "m": ms,
                "wx": np.bincount(inv, weights=ws, minlength=xu.size),
                "wxlm": np.bincount(inv, weights=ws * lm, minlength=xu.size), "wlm": float(ws @ lm)}

    def _initial_log_params(self, data):
        return np.log([1.0, 1.0, float(np.average(data["m"], weights=data["w"]))])

    def _negloglik(self, log_params, d):
        p, q, v = np.exp(log_params)
        w, xu, wx, W = d["w"], d["xu"], d["wx"], d["W"]
        px = p * xu
        xmv = d["xm"] + v
        lxm = np.log(xmv)
        # sum over rows of w (p x + q) log(x m + v) and of w (p x + q) / (x m + v), without a per-row p x + q
        wxl, wl = d["wx_row"] @ lxm, w @ lxm
        ixm = 1.0 / xmv
        wxi, wi = d["wx_row"] @ ixm, w @ ixm
        ll = (wx @ (gammaln(px + q) - gammaln(px) + px * np.log(xu)) + W * (q * np.log(v) - gammaln(q))
              + d["wxlm"] @ px - d["wlm"] - p * wxl - q * wl)
        g_p = wx @ (xu * (digamma(px + q) - digamma(px) + np.log(xu))) + d["wxlm"] @ xu - wxl
        g_q = wx @ digamma(px + q) - W * digamma(q) + W * np.log(v) - wl
        g_v = W * q / v - p * wxi - q * wi
        grad = np.array([g_p * p, g_q * q, g_v * v])
        return -ll / W, -grad / W

    def expected_spend(self, frequency, monetary_value):
        """Conditional expected mean transaction value (Fader & Hardie 2013, eq. 5).

        ``(p (v + x m)) / (p x + q - 1)``; for ``x = 0`` this is the population mean ``p v / (q - 1)``.
        """
        p, q, v = self._require_fit()
        x = as_float_array(frequency, "frequency")
        m = as_float_array(monetary_value, "monetary_value")
        m = np.where(x > 0, m, 0.0)
        return p * (v + x * m) / (p * x + q - 1.0)

    def expected_spend_new(self):
        """Mean transaction value of a new customer: ``p gamma / (q - 1)`` (infinite if ``q <= 1``)."""
        p, q, v = self._require_fit()
        return p * v / (q - 1.0) if q > 1 else float("inf")
