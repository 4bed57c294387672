"""RFM scores and segments, monthly acquisition cohorts."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from clm.analytics.cohorts import monthly_cohorts
from clm.analytics.rfm import SEGMENTS, quintile_scores, rfm_scores, rfm_segments


def test_quintile_scores_split_distinct_values_into_five_equal_groups():
    assert_array_equal(quintile_scores(np.arange(10)), [1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    assert_array_equal(quintile_scores(np.arange(10), higher_is_better=False), [5, 5, 4, 4, 3, 3, 2, 2, 1, 1])


def test_ties_share_a_score_and_the_result_does_not_depend_on_row_order():
    v = np.array([3, 1, 1, 1, 2, 5, 5, 4, 0, 9.0])
    s = quintile_scores(v)
    for value in np.unique(v):
        assert len(set(s[v == value])) == 1
    perm = np.random.default_rng(0).permutation(v.size)
    assert_array_equal(quintile_scores(v[perm]), s[perm])


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200))
def test_scores_are_between_one_and_five_and_monotone_in_the_value(values):
    v = np.array(values)
    s = quintile_scores(v)
    assert s.min() >= 1 and s.max() <= 5
    order = np.argsort(v, kind="stable")
    assert np.all(np.diff(s[order]) >= 0)


def test_every_cell_of_the_score_grid_has_exactly_one_segment():
    seen = {}
    for name, cells in SEGMENTS.items():
        for (r0, r1), (f0, f1) in cells:
            for r in range(r0, r1 + 1):
                for fm in range(f0, f1 + 1):
                    assert (r, fm) not in seen
                    seen[(r, fm)] = name
    assert len(seen) == 25 and len(SEGMENTS) == 11


def test_segments_follow_the_score_grid():
    r = np.array([5, 5, 1, 1, 2, 3, 4])
    f = np.array([5, 1, 5, 1, 1, 3, 1])
    m = np.array([5, 1, 5, 1, 2, 3, 1])
    assert list(rfm_segments(r, f, m)) == ["champions", "new", "can't lose them", "lost", "hibernating",
                                           "need attention", "promising"]
    rs, fs, ms = rfm_scores([1, 200, 30, 60, 90], [10, 0, 3, 2, 1], [500.0, 5.0, 50.0, 40.0, 30.0])
    assert_array_equal(rs, [5, 1, 4, 3, 2])
    assert_array_equal(fs, [5, 1, 4, 3, 2])
    assert_array_equal(ms, [5, 1, 4, 3, 2])
    with pytest.raises(ValueError, match="NaN"):
        quintile_scores([1.0, np.nan])


def test_monthly_cohorts_build_retention_and_revenue_matrices():
    c = monthly_cohorts(["a", "a", "b", "a", "c", "b"],
                        ["2024-01-05", "2024-01-20", "2024-01-09", "2024-03-01", "2024-02-11", "2024-02-02"],
                        [10.0, 5.0, 7.0, 20.0, 3.0, 4.0])
    assert_array_equal(c.months, np.array(["2024-01", "2024-02", "2024-03"], dtype="datetime64[M]"))
    assert_allclose(c.size, [2, 1, 0])
    assert_allclose(c.retention[0, :3], [1.0, 0.5, 0.5])
    assert_allclose(c.revenue[0, :3], [22.0, 4.0, 20.0])
    assert_allclose(c.retention[1, :2], [1.0, 0.0])
    assert np.isnan(c.retention[1, 2]) and np.isnan(c.revenue[2, 1])
    with pytest.raises(ValueError, match="no transactions"):
        monthly_cohorts([], [])
