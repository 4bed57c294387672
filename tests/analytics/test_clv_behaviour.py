"""Simulation recovery, invariants (hypothesis), bad input and convergence warnings of the CLV models."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from clm.analytics.clv import (
    BetaGeo,
    BetaGeoBetaBinom,
    ConvergenceWarning,
    GammaGamma,
    ModifiedBetaGeo,
    NotFittedError,
    ParetoNBD,
    compare_models,
    cumulative_tracking,
    repeat_transaction_histogram,
    rfm_summary,
)
from tests.analytics._clvdata import (
    cdnow_master_transactions,
    cdnow_summary,
    simulate_bgnbd,
    simulate_pareto_nbd,
)


@pytest.fixture(scope="module")
def fitted():
    x, tx, T = cdnow_summary()
    return {"bg": BetaGeo().fit(x, tx, T), "pnbd": ParetoNBD().fit(x, tx, T), "mbg": ModifiedBetaGeo().fit(x, tx, T)}


@pytest.mark.slow
def test_bgnbd_recovers_the_parameters_it_was_simulated_with():
    truth = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    x, tx, T = simulate_bgnbd(200_000, **truth, seed=7)
    m = BetaGeo().fit(x, tx, T)
    for k, v in truth.items():
        assert abs(m.params[k] - v) < 4 * m.standard_errors[k], (k, m.params[k], v)


@pytest.mark.slow
def test_mbgnbd_recovers_the_parameters_it_was_simulated_with():
    truth = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
    x, tx, T = simulate_bgnbd(200_000, **truth, seed=8, modified=True)
    m = ModifiedBetaGeo().fit(x, tx, T)
    for k, v in truth.items():
        assert abs(m.params[k] - v) < 4 * m.standard_errors[k], (k, m.params[k], v)


@pytest.mark.slow
def test_pareto_nbd_recovers_the_parameters_it_was_simulated_with():
    truth = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    x, tx, T = simulate_pareto_nbd(60_000, **truth, seed=9)
    m = ParetoNBD().fit(x, tx, T)
    for k, v in truth.items():
        assert abs(m.params[k] - v) < 4 * m.standard_errors[k], (k, m.params[k], v)


def test_gamma_gamma_recovers_the_parameters_it_was_simulated_with():
    rng = np.random.default_rng(3)
    p, q, g = 6.25, 3.74, 15.44
    n = 20_000
    x = rng.integers(1, 10, n).astype(float)
    nu = rng.gamma(q, 1 / g, n)
    mean = rng.gamma(p * x, 1 / (nu * x))  # mean of x Gamma(p, nu) values
    m = GammaGamma().fit(x, mean)
    for k, v in {"p": p, "q": q, "gamma": g}.items():
        assert abs(m.params[k] - v) < 4 * m.standard_errors[k], (k, m.params[k], v)


@pytest.mark.parametrize("cls, truth", [
    (BetaGeo, {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}),
    (ParetoNBD, {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}),
])
def test_a_large_fit_started_from_a_subsample_ends_at_the_full_data_maximum(cls, truth):
    x, tx, T = simulate_bgnbd(150_000, **truth, seed=12)
    m = cls().fit(x, tx, T)
    data = m._prepare(*m._compress(x, tx, T, np.ones_like(x)))
    _, grad = m._negloglik(np.log(list(m.params.values())), data)
    assert np.max(np.abs(grad)) < 1e-7
    assert m.optimizer_result.nfev <= 12  # full-data evaluations: the subsample did the walking


def test_bgnbd_predicted_holdout_purchases_track_the_simulated_future():
    truth = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    x, tx, T = simulate_bgnbd(50_000, **truth, seed=11, t_min=78, t_max=78)
    m = BetaGeo().fit(x, tx, T)
    assert_allclose(m.expected_purchases_new(78.0), x.mean(), rtol=0.03)


small = st.floats(0.05, 20.0)


@settings(max_examples=60, deadline=None)
@given(r=small, alpha=small, a=small, b=small, x=st.integers(0, 5000), frac=st.floats(0.0, 1.0), T=st.floats(0.5, 500.0))
def test_bgnbd_log_likelihood_and_p_alive_stay_finite_and_in_range(r, alpha, a, b, x, frac, T):
    m = BetaGeo()
    tx = frac * T if x > 0 else 0.0
    if x > 0 and tx == 0:
        tx = T
    data = m._prepare(np.array([float(x)]), np.array([tx]), np.array([T]), np.ones(1))
    val, grad = m._negloglik(np.log([r, alpha, a, b]), data)
    assert np.isfinite(val) and np.all(np.isfinite(grad))
    m.params = {"r": r, "alpha": alpha, "a": a, "b": b}
    pa = m.p_alive(x, tx, T)
    assert np.all((pa >= 0) & (pa <= 1))


@settings(max_examples=40, deadline=None)
@given(r=small, alpha=small, s=small, beta=small, x=st.integers(0, 300), frac=st.floats(0.0, 1.0), T=st.floats(0.5, 100.0))
def test_pareto_nbd_log_likelihood_and_p_alive_stay_finite_and_in_range(r, alpha, s, beta, x, frac, T):
    m = ParetoNBD()
    tx = max(frac * T, 1e-3 * T) if x > 0 else 0.0
    data = m._prepare(np.array([float(x)]), np.array([tx]), np.array([T]), np.ones(1))
    val, grad = m._negloglik(np.log([r, alpha, s, beta]), data)
    assert np.isfinite(val) and np.all(np.isfinite(grad))
    m.params = {"r": r, "alpha": alpha, "s": s, "beta": beta}
    pa = m.p_alive(x, tx, T)
    assert np.all((pa >= 0) & (pa <= 1 + 1e-12))


@settings(max_examples=30, deadline=None)
@given(x=st.integers(0, 50), frac=st.floats(0.01, 1.0), T=st.floats(1.0, 60.0), t1=st.floats(0.0, 100.0),
       dt=st.floats(0.01, 100.0))
def test_expected_purchases_grow_with_the_horizon(fitted, x, frac, T, t1, dt):
    tx = frac * T if x > 0 else 0.0
    for m in fitted.values():
        e1, e2 = m.expected_purchases(t1, x, tx, T), m.expected_purchases(t1 + dt, x, tx, T)
        assert np.all(e2 >= e1 - 1e-12)
        assert np.all(e1 >= -1e-12)


def test_p_alive_falls_as_the_last_purchase_recedes(fitted):
    for m in fitted.values():
        pa = m.p_alive(np.full(5, 3.0), np.array([38.0, 30.0, 20.0, 10.0, 2.0]), np.full(5, 39.0))
        assert np.all(np.diff(pa) < 0)


def test_log_likelihood_is_finite_for_huge_frequencies():
    # the naive BG/NBD formula overflows: (alpha + T)^(r + x) with x = 10**5
    x = np.array([0.0, 1e5, 3.0])
    tx, T = np.array([0.0, 30.0, 10.0]), np.array([39.0, 39.0, 39.0])
    for m, p in ((BetaGeo(), [0.24, 4.4, 0.79, 2.4]), (ModifiedBetaGeo(), [0.5, 6.2, 0.9, 1.6]),
                 (ParetoNBD(), [0.55, 10.6, 0.6, 11.7])):
        data = m._prepare(x, tx, T, np.ones(3))
        val, grad = m._negloglik(np.log(p), data)
        assert np.isfinite(val) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("freq, rec, T, problem, rows", [
    ([1, 2, 3], [5.0, 50.0, 6.0], [10.0, 20.0, 30.0], "recency greater than T", "[1]"),
    ([1, -2, 3], [5.0, 5.0, 6.0], [10.0, 20.0, 30.0], "negative", "[1]"),
    ([0, 0, 3], [0.0, 4.0, 6.0], [10.0, 20.0, 30.0], "zero frequency with positive recency", "[1]"),
    ([1, 2, 3], [5.0, np.nan, 6.0], [10.0, 20.0, np.nan], "NaN", "[1, 2]"),
    ([1.5, 2, 3], [5.0, 5.0, 6.0], [10.0, 20.0, 30.0], "whole number", "[0]"),
])
def test_inconsistent_summaries_are_rejected_naming_rows_and_problem(freq, rec, T, problem, rows):
    for cls in (BetaGeo, ParetoNBD, ModifiedBetaGeo):
        with pytest.raises(ValueError) as err:
            cls().fit(freq, rec, T)
        assert problem in str(err.value) and rows in str(err.value)


def test_empty_input_is_rejected():
    for cls in (BetaGeo, ParetoNBD, ModifiedBetaGeo):
        with pytest.raises(ValueError, match="empty"):
            cls().fit([], [], [])
    with pytest.raises(ValueError, match="empty"):
        GammaGamma().fit([], [])
    with pytest.raises(ValueError, match="empty"):
        BetaGeoBetaBinom().fit([], [], [])


def test_gamma_gamma_rejects_non_repeat_buyers_naming_rows():
    with pytest.raises(ValueError, match=r"rows \[1\]: frequency must be positive"):
        GammaGamma().fit([1, 0, 2], [10.0, 0.0, 5.0])


def test_predictions_before_fit_ask_to_call_fit_first():
    for m, call in ((BetaGeo(), lambda m: m.p_alive(1, 1, 2)), (ParetoNBD(), lambda m: m.expected_purchases_new(3)),
                    (GammaGamma(), lambda m: m.expected_spend([1], [2.0])),
                    (BetaGeoBetaBinom(), lambda m: m.p_alive(1, 1, 6))):
        with pytest.raises(NotFittedError, match=r"call \.fit\(\) first"):
            call(m)


def test_a_degenerate_fit_warns_with_a_convergence_warning_naming_the_problem():
    # nobody ever buys again: the drop-out / rate parameters run off to a boundary
    with pytest.warns(ConvergenceWarning, match="bound|flat"):
        BetaGeo().fit([0, 0, 0, 1], [0.0, 0.0, 0.0, 1.0], [10.0, 20.0, 30.0, 30.0])
    assert issubclass(ConvergenceWarning, UserWarning)


def test_the_fit_accepts_weights_equivalent_to_repeated_rows():
    x, tx, T = cdnow_summary()
    full = BetaGeo().fit(np.r_[x, x[:100]], np.r_[tx, tx[:100]], np.r_[T, T[:100]])
    w = np.ones_like(x)
    w[:100] = 2
    weighted = BetaGeo().fit(x, tx, T, weights=w)
    assert_allclose(list(full.params.values()), list(weighted.params.values()), rtol=1e-6)


@pytest.fixture(scope="module")
def master():
    return cdnow_master_transactions()


def test_compare_models_scores_each_model_on_the_holdout(master):
    rows = compare_models(master, customer="customer", timestamp="date", holdout="39w")
    assert {r["model"] for r in rows} == {"bgnbd", "pnbd", "mbgnbd"}
    for r in rows:
        assert r["n_customers"] == 23570 and r["actual_total"] > 0
        assert 0 < r["mae"] <= r["rmse"]
        assert 0.7 < r["predicted_total"] / r["actual_total"] < 1.1
    assert [r["mae"] for r in rows] == sorted(r["mae"] for r in rows)


def test_the_fit_histogram_and_tracking_follow_the_data(master):
    s = rfm_summary(master, customer="customer", timestamp="date", period="D", unit="W", calibration_end="1997-09-30")
    m = BetaGeo().fit(s.frequency, s.recency, s.T)
    h = repeat_transaction_histogram(m, s.frequency, s.T, max_frequency=7)
    assert h["actual"].sum() == s.n_customers
    assert_allclose(h["expected"].sum(), s.n_customers, rtol=1e-6)
    assert_allclose(h["expected"], h["actual"], rtol=0.15)
    tr = cumulative_tracking(m, master, customer="customer", timestamp="date")
    assert np.all(np.diff(tr["actual"]) >= 0) and np.all(np.diff(tr["expected"]) >= 0)
    # inside the calibration period the model tracks the data closely (FHL 2005, Figure 3)
    assert_allclose(tr["expected"][38], tr["actual"][38], rtol=0.05)


def test_rfm_summary_counts_several_purchases_in_one_period_once():
    tx = {"c": ["a", "a", "a", "b", "a"], "t": ["2024-01-01", "2024-01-01", "2024-01-09", "2024-01-03", "2024-02-01"],
          "v": [10.0, 5.0, 20.0, 7.0, 30.0]}
    s = rfm_summary(tx, customer="c", timestamp="t", amount="v", period="W", calibration_end="2024-01-20")
    assert list(s.customer) == ["a", "b"]
    assert_allclose(s.frequency, [1, 0])
    assert_allclose(s.recency, [1, 0])
    assert_allclose(s["monetary_value"], [20.0, 0.0])
    assert_allclose(s.frequency_holdout, [1, 0])
    assert_allclose(s.monetary_value_holdout, [30.0, 0.0])
    assert set(s) >= {"frequency", "recency", "T", "duration_holdout"}
    d = rfm_summary(tx, customer="c", timestamp="t", period="D")
    assert_allclose(d.frequency, [2, 0]) and "monetary_value" not in d
    m = rfm_summary(tx, customer="c", timestamp="t", period="M")
    assert_allclose(m.frequency, [1, 0])


def test_rfm_summary_rejects_empty_and_bad_input():
    with pytest.raises(ValueError, match="no transactions"):
        rfm_summary({"c": [], "t": []}, customer="c", timestamp="t")
    with pytest.raises(ValueError, match="no column"):
        rfm_summary({"c": [1]}, customer="c", timestamp="t")
    with pytest.raises(ValueError, match="period"):
        rfm_summary({"c": [1], "t": ["2024-01-01"]}, customer="c", timestamp="t", period="Q")


def test_warnings_do_not_fire_on_a_clean_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BetaGeo().fit(*cdnow_summary())
        ParetoNBD().fit(*cdnow_summary())
