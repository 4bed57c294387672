"""A/B statistics against known values: the z-test against the textbook computation and SciPy's
uncorrected chi-square (the same test squared), Fisher's exact test against Fisher's tea-tasting table."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.stats import chi2_contingency

from clm.journeys.stats import compare, fisher_exact_p, two_proportion_z_test


def test_the_z_test_matches_the_textbook_value_for_20_percent_against_15_percent():
    z, p = two_proportion_z_test(200, 1000, 150, 1000)
    # pooled 0.175; se = sqrt(0.175 * 0.825 * 2 / 1000) = 0.016993; z = 0.05 / se
    assert_allclose(z, 0.05 / math.sqrt(0.175 * 0.825 * 0.002), rtol=1e-12)
    assert_allclose(z, 2.9424, atol=1e-4)
    assert_allclose(p, 0.003257, atol=1e-6)


def test_fishers_exact_test_gives_the_tea_tasting_p_value():
    # Fisher (1935): 3 of 4 cups called right each way; two-sided p = 34/70
    assert_allclose(fisher_exact_p(3, 4, 1, 4), 34 / 70, rtol=1e-9)


def test_a_clear_uplift_on_large_groups_is_significant_by_the_z_test():
    result = compare(200, 1000, 150, 1000)
    assert result.test == "z" and result.significant
    assert_allclose(result.uplift, 1 / 3, rtol=1e-12)
    assert_allclose(result.difference, 0.05, rtol=1e-12)


def test_small_groups_use_fishers_test_and_a_small_difference_is_not_significant():
    result = compare(3, 4, 1, 4)
    assert result.test == "fisher" and not result.significant
    assert_allclose(result.p_value, 34 / 70, rtol=1e-9)


def test_no_conversions_in_the_control_leaves_the_relative_uplift_undefined():
    result = compare(12, 100, 0, 100)
    assert result.uplift is None and result.difference == pytest.approx(0.12)
    assert result.test == "z" and result.significant  # 12 of 100 against 0 of 100: 6 expected each side


def test_nobody_on_one_side_gives_no_comparison_and_impossible_counts_are_refused():
    assert compare(0, 0, 5, 50) is None and compare(5, 50, 0, 0) is None
    with pytest.raises(ValueError):
        compare(11, 10, 1, 10)


def test_equal_rates_of_everyone_or_no_one_are_not_a_difference():
    assert two_proportion_z_test(0, 50, 0, 50) == (0.0, 1.0)
    assert two_proportion_z_test(50, 50, 80, 80) == (0.0, 1.0)


@given(st.integers(10, 400), st.integers(10, 400), st.data())
def test_the_z_tests_p_value_is_the_uncorrected_chi_square_p_value(n1, n2, data):
    x1, x2 = data.draw(st.integers(1, n1 - 1)), data.draw(st.integers(1, n2 - 1))
    _, p = two_proportion_z_test(x1, n1, x2, n2)
    reference = chi2_contingency([[x1, n1 - x1], [x2, n2 - x2]], correction=False).pvalue
    assert_allclose(p, reference, rtol=1e-7, atol=1e-12)
    assert 0 <= p <= 1
