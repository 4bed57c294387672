"""Customer lifetime value: discounted expected future purchases times expected spend."""

from __future__ import annotations

import numpy as np

from .base import as_float_array

__all__ = ["customer_lifetime_value"]

# model time units in one discounting period (a month), as in lifetimes' ``_customer_lifetime_value``
_UNITS_PER_MONTH = {"D": 30.0, "W": 4.345, "M": 1.0}


def customer_lifetime_value(
    transaction_model,
    spend_model,
    frequency,
    recency,
    T,
    monetary_value,
    *,
    horizon: int = 12,
    discount_rate: float = 0.01,
    period: str = "W",
):
    r"""Discounted expected value of each customer's purchases over the next ``horizon`` months.

    .. math::
        CLV = \sum_{i=1}^{h} \frac{\bigl(E[X(i u)] - E[X((i-1) u)]\bigr)\, \bar m}{(1+d)^i}

    where ``E[X(t)]`` is ``transaction_model.expected_purchases(t, frequency, recency, T)``,
    ``u`` is the number of model time units in a month and ``m`` the expected spend per purchase.

    Parameters
    ----------
    transaction_model : fitted BetaGeo, ModifiedBetaGeo or ParetoNBD
    spend_model : fitted GammaGamma or None
        With ``None`` the observed ``monetary_value`` is used as the spend per purchase.
    frequency, recency, T, monetary_value : array_like
        The customers' summary, times in the units the transaction model was fitted in.
    horizon : int
        Number of months to sum over.
    discount_rate : float
        Discount rate *per month* (e.g. 0.01 for about 12.7 % a year).
    period : {"D", "W", "M"}
        Time unit of ``recency``/``T`` (and of the fitted model): a month is 30 days, 4.345 weeks or 1.

    Returns
    -------
    numpy.ndarray
        CLV per customer, in the currency of ``monetary_value``.
    """
    if period not in _UNITS_PER_MONTH:
        raise ValueError(f"period must be one of {sorted(_UNITS_PER_MONTH)}, got {period!r}")
    if horizon < 1:
        raise ValueError("horizon must be at least 1 month")
    u = _UNITS_PER_MONTH[period]
    x = as_float_array(frequency, "frequency")
    m = as_float_array(monetary_value, "monetary_value")
    spend = m if spend_model is None else spend_model.expected_spend(x, m)
    times = np.arange(horizon + 1) * u
    path = getattr(transaction_model, "_expected_purchases_path", None)
    if path is not None:
        cum = path(times[1:], x, recency, T)  # shape (horizon, n)
    else:
        cum = np.stack([transaction_model.expected_purchases(t, x, recency, T) for t in times[1:]])
    step = np.diff(np.vstack([np.zeros((1, cum.shape[1])), cum]), axis=0)
    disc = (1.0 + discount_rate) ** -np.arange(1, horizon + 1)
    return (disc @ step) * spend
