"""Pareto/NBD near its degenerate limit (s, beta -> infinity): a small shop whose fit once took minutes."""

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate
from scipy.special import gammaln

from clm.analytics.clv import ParetoNBD
from clm.analytics.clv.pareto_nbd import _hyp_quadrature, _hyp_series

SLOW = Path(__file__).resolve().parents[1] / "data" / "pnbd_slow.npz"
# where the optimiser used to stop on these data, after 108 s in the hypergeometric series
OLD_OPTIMUM = {"r": 0.6510724501045128, "alpha": 5.600445535138589, "s": 2648.791378163698, "beta": 76404.34711478799}
OLD_LOG_LIKELIHOOD = -361.4340657875873


def slow_shop():
    d = np.load(SLOW)
    return d["x"], d["t_x"], d["T"]


def log_likelihood_by_quadrature(params, x, tx, T):
    """The Pareto/NBD log-likelihood from its defining integral over the drop-out time, by adaptive quadrature."""
    r, alpha, s, beta = params
    total = 0.0
    for xi, ti, Ti in zip(x, tx, T, strict=True):
        def log_f(tau, xi=xi):
            return -(r + xi) * np.log(alpha + tau) - (s + 1) * np.log(beta + tau)

        alive = -(r + xi) * np.log(alpha + Ti) - s * np.log(beta + Ti)
        peak = log_f(ti)
        died, _ = integrate.quad(lambda tau, xi=xi, peak=peak: np.exp(log_f(tau, xi) - peak), ti, Ti,
                                 epsabs=0.0, epsrel=1e-13, limit=200)
        total += (gammaln(r + xi) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
                  + np.logaddexp(alive, np.log(s) + peak + np.log(died) if died > 0 else -np.inf))
    return total


def test_pareto_nbd_fits_the_small_shop_that_drifts_to_the_degenerate_limit():
    x, tx, T = slow_shop()
    m = ParetoNBD().fit(x, tx, T)
    assert np.isfinite(m.log_likelihood)
    assert m.log_likelihood >= OLD_LOG_LIKELIHOOD - 1e-6
    assert all(np.isfinite(v) and v > 0 for v in m.params.values())
    pa = m.p_alive(x, tx, T)
    assert np.all(np.isfinite(pa) & (pa >= 0) & (pa <= 1 + 1e-12))
    e = m.expected_purchases(39.0, x, tx, T)
    assert np.all(np.isfinite(e) & (e >= 0))
    assert np.isfinite(m.expected_purchases_new(39.0))
    p = m.probability_of_purchases(39.0, np.arange(200))
    assert np.all(np.isfinite(p)) and abs(p.sum() - 1.0) < 1e-6


def test_pareto_nbd_likelihood_near_the_degenerate_limit_matches_its_defining_integral():
    x, tx, T = slow_shop()
    params = [OLD_OPTIMUM[k] for k in ("r", "alpha", "s", "beta")]
    m = ParetoNBD()
    data = m._prepare(x, tx, T, np.ones_like(x))
    value, _ = m._negloglik(np.log(params), data)
    assert_allclose(-value * x.size, log_likelihood_by_quadrature(params, x, tx, T), rtol=1e-11)
    # the gradient, away from the optimum where it is not ~0
    lp = np.log(params) + np.array([0.2, -0.1, 0.0, 0.1])
    grad = m._negloglik(lp, data)[1]
    h = 1e-5
    numeric = [(m._negloglik(lp + e, data)[0] - m._negloglik(lp - e, data)[0]) / (2 * h) for e in np.eye(4) * h]
    assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def hypergeometric_term_by_adaptive_quadrature(a, b, omz):
    """``log S`` and ``d log S/d(a, b, z)`` for ``S = int_0^inf e^(-a y) (1 - z e^-y)^(-b) dy`` by scipy's ``quad``.

    The y axis is cut at ``1-z`` times powers of 10, so that every piece sees one scale of the ``(1-z+y)^-b`` peak.
    """
    def q(y):
        return -np.expm1(-y) + omz * np.exp(-y)

    def f(y):
        return np.exp(-a * y - b * np.log(q(y)) + b * np.log(omz))  # scaled by its value at y = 0

    cuts = [0.0] + [omz * 10.0**k for k in range(60) if omz * 10.0**k < 200.0 / a] + [np.inf]
    moments = []
    for g in (lambda y: 1.0, lambda y: y, lambda y: np.log(q(y)), lambda y: np.exp(-y) / q(y)):
        moments.append(sum(integrate.quad(lambda y, g=g: f(y) * g(y), lo, hi, epsabs=0.0, epsrel=1e-13, limit=200)[0]
                           for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)))
    S, Sy, Slq, Sz = moments
    return np.array([np.log(S) - b * np.log(omz), -Sy / S, -Slq / S, b * Sz / S])


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("a, b, omz", [
    (2650.0, 0.65, 1e-4), (2650.0, 3.65, 3e-4), (20.0, 15.0, 1e-9), (0.6, 0.05, 2e-3),
    (0.08, 0.04, 3e-4), (1e4, 40.0, 1e-6), (1.2, 2.0, 1e-12), (5e8, 1.6, 1e-9),
])
def test_the_quadrature_gives_the_hypergeometric_term_and_its_derivatives_where_the_series_is_slow(a, b, omz):
    mine = _hyp_quadrature(np.array([a]), np.array([b]), np.array([omz]))[:, 0]
    assert_allclose(mine, hypergeometric_term_by_adaptive_quadrature(a, b, omz), rtol=1e-11)


@pytest.mark.parametrize("a, b, omz", [(3.0, 1.5, 0.3), (40.0, 2.5, 2e-3), (0.7, 0.3, 0.01)])
def test_the_quadrature_agrees_with_the_series_where_both_are_cheap(a, b, omz):
    z = 1.0 - omz
    omz = 1.0 - z  # the series sees z: both use the same rounded 1 - z
    series = _hyp_series(np.array([a]), np.array([b]), np.array([z]), omz=np.array([omz]), max_terms=np.inf)[:, 0]
    quad = _hyp_quadrature(np.array([a]), np.array([b]), np.array([omz]))[:, 0]
    assert_allclose(quad, series, rtol=1e-12, atol=1e-13)
