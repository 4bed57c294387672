"""MBG/NBD model (Batislam, Denizel & Filiztekin 2007).

Batislam, E. P., Denizel, M. & Filiztekin, A. (2007). Empirical validation and comparison of
models for customer base analysis. *International Journal of Research in Marketing* 24(3), 201-209.

Like BG/NBD (:class:`~clm.analytics.clv.BetaGeo`) but a customer may also drop out at time zero,
right after the first (unrecorded) purchase, so customers with no repeat purchase are not assumed
alive. The likelihood replaces ``B(a, b+x)`` by ``B(a, b+x+1)`` and the drop-out term
``a/(b+x-1)`` by ``a/(b+x)``, present for every customer.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betainc, betaln, gammaln, hyp2f1

from .beta_geo import BetaGeo

__all__ = ["ModifiedBetaGeo"]


class ModifiedBetaGeo(BetaGeo):
    r"""MBG/NBD model with parameters ``r, alpha, a, b`` (same meaning as BG/NBD).

    Log-likelihood of one customer (Batislam et al. 2007, eq. 4):

    .. math::
        \ln\Gamma(r+x) - \ln\Gamma(r) + r\ln\alpha + \ln B(a, b+x+1) - \ln B(a,b)
        + \operatorname{logaddexp}\left(-(r+x)\ln(\alpha+T),\;
          \ln a - \ln(b+x) - (r+x)\ln(\alpha+t_x)\right)

    ``p_alive`` is ``1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))**(r+x))`` for every x;
    ``expected_purchases`` is Batislam et al. eq. (7) with ``(a+b+x)/(a-1)`` in front.
    """

    _modified = True

    def expected_purchases_new(self, t):
        """Expected repeat purchases by a new customer in ``(0, t]`` (Batislam et al. 2007 eq. 6)."""
        r, alpha, a, b = self._require_fit()
        t = np.asarray(t, dtype=np.float64)
        hyp = (alpha / (alpha + t)) ** r * hyp2f1(r, b + 1, a + b, t / (alpha + t))
        return b / (a - 1) * (1.0 - hyp)

    def probability_of_purchases(self, t, n):
        """``P(X(t) = n)`` for a new customer under MBG/NBD."""
        r, alpha, a, b = self._require_fit()
        n = np.asarray(n, dtype=np.float64)
        t = float(t)
        p0 = alpha / (alpha + t)
        with np.errstate(divide="ignore"):
            nb = gammaln(r + n) - gammaln(r) - gammaln(n + 1) + r * np.log(p0) + n * np.log1p(-p0)
        nb = np.where((n == 0) & (t == 0), 0.0, nb)
        first = np.exp(betaln(a, b + n + 1) - betaln(a, b) + nb)
        surv = np.where(n > 0, betainc(np.maximum(n, 1e-300), r, 1.0 - p0), 1.0)
        second = np.exp(betaln(a + 1, b + n) - betaln(a, b)) * surv
        return first + second
