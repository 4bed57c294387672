"""Customer-base analysis and customer lifetime value (CLV).

Probability models of repeat buying fitted on per-customer RFM summaries, usable as a library
without the web app::

    from clm.analytics.clv import rfm_summary, BetaGeo, GammaGamma, customer_lifetime_value

    s = rfm_summary({"id": ids, "ts": dates, "amount": amounts}, customer="id", timestamp="ts",
                    amount="amount", period="D", unit="W")
    bg = BetaGeo().fit(s.frequency, s.recency, s.T)
    gg = GammaGamma().fit(s.frequency[s.frequency > 0], s.monetary_value[s.frequency > 0])
    clv = customer_lifetime_value(bg, gg, s.frequency, s.recency, s.T, s.monetary_value,
                                  horizon=12, discount_rate=0.01, period="W")

Models: :class:`BetaGeo` (BG/NBD), :class:`ParetoNBD`, :class:`ModifiedBetaGeo` (MBG/NBD),
:class:`BetaGeoBetaBinom` (BG/BB, discrete time) and :class:`GammaGamma` (spend).
"""

from .base import ConvergenceWarning, NotFittedError
from .beta_geo import BetaGeo
from .beta_geo_beta_binom import BetaGeoBetaBinom
from .diagnostics import (
    calibration_holdout,
    compare_models,
    cumulative_tracking,
    repeat_transaction_histogram,
)
from .gamma_gamma import GammaGamma
from .modified_beta_geo import ModifiedBetaGeo
from .pareto_nbd import ParetoNBD
from .summary import Summary, rfm_summary
from .value import customer_lifetime_value

__all__ = [
    "BetaGeo", "BetaGeoBetaBinom", "ConvergenceWarning", "GammaGamma", "ModifiedBetaGeo", "NotFittedError",
    "ParetoNBD", "Summary", "calibration_holdout", "compare_models", "cumulative_tracking",
    "customer_lifetime_value", "repeat_transaction_histogram", "rfm_summary",
]
