"""A/B statistics for a journey's random split: a variant's conversion rate against the control group's.

`compare` gives the uplift (relative and in percentage points) and a two-sided significance test of
"the two rates are equal": the two-proportion z-test with the pooled rate when every expected cell
count is at least 5 (the usual rule for the normal approximation), Fisher's exact test otherwise
(SciPy's `fisher_exact`). Significant means p < alpha (0.05 unless told).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

ALPHA = 0.05
MIN_EXPECTED = 5  # below this expected count in any cell the z-test's normal approximation is poor


@dataclass(frozen=True)
class Comparison:
    rate: float  # the variant's conversion rate
    control_rate: float
    difference: float  # rate - control_rate (a share: 0.05 is 5 percentage points)
    uplift: float | None  # difference / control_rate; None when the control converted nobody
    p_value: float
    significant: bool
    test: str  # "z" (two-proportion z-test) or "fisher" (Fisher's exact test)


def two_proportion_z_test(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """(z, two-sided p) for H0: p1 == p2, with the pooled proportion in the standard error."""
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:  # everyone or no one converted on both sides: no evidence of a difference
        return 0.0, 1.0
    z = (x1 / n1 - x2 / n2) / se
    return z, float(2 * stats.norm.sf(abs(z)))


def fisher_exact_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p of Fisher's exact test on [[x1, n1 - x1], [x2, n2 - x2]]."""
    return float(stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="two-sided").pvalue)


def compare(converted: int, entered: int, control_converted: int, control_entered: int,
            alpha: float = ALPHA) -> Comparison | None:
    """The variant (converted of entered) against the control; None while either side has nobody."""
    if min(entered, control_entered) <= 0:
        return None
    if not (0 <= converted <= entered and 0 <= control_converted <= control_entered):
        raise ValueError("conversions must be between 0 and the number who entered")
    rate, control_rate = converted / entered, control_converted / control_entered
    total, conversions = entered + control_entered, converted + control_converted
    expected = [n * share for n in (entered, control_entered)
                for share in (conversions / total, 1 - conversions / total)]
    if min(expected) >= MIN_EXPECTED:
        _, p_value, test = *two_proportion_z_test(converted, entered, control_converted, control_entered), "z"
    else:
        p_value, test = fisher_exact_p(converted, entered, control_converted, control_entered), "fisher"
    return Comparison(rate=rate, control_rate=control_rate, difference=rate - control_rate,
                      uplift=(rate - control_rate) / control_rate if control_rate else None,
                      p_value=p_value, significant=p_value < alpha, test=test)
