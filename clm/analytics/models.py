"""Tables of the analytics refresh: every customer's scores, and the runs that computed them.

Both are recomputed from the orders by ``clm analytics refresh`` (and the worker, daily): nothing here
is a fact, so a merge simply drops the loser's row and the next refresh scores the winner anew.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clm.db.base import Base, BigId, Json, UTCDateTime

STATUSES = ("ok", "not_enough_data")
# Why a customer has no model scores: no orders (in the shop's currency), or the shop as a whole has
# too few (repeat) buyers for the model to be fitted, or the fitted model gave no finite prediction.
REASONS = ("no_orders", "other_currency", "too_few_buyers", "too_few_repeat_buyers", "fit_failed")


class CustomerScore(Base):
    """One customer's RFM and CLV scores as of the run that wrote them.

    RFM columns are filled for every customer with an order in the shop's currency; the model columns
    (p_alive ... churn_risk) only when ``status == "ok"``. ``recency_days`` counts days since the last
    purchase, ``tenure_days`` since the first, ``frequency`` the repeat purchase days (the models' x),
    ``monetary`` the total spend net of refunds in minor units of ``currency``.
    """

    __tablename__ = "customer_scores"
    __table_args__ = (sa.Index("ix_customer_scores_clv", "predicted_clv_12m"),
                      sa.Index("ix_customer_scores_segment", "rfm_segment"))

    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.String(32))
    recency_days: Mapped[int | None] = mapped_column(sa.Integer)
    tenure_days: Mapped[int | None] = mapped_column(sa.Integer)
    frequency: Mapped[int | None] = mapped_column(sa.Integer)
    monetary: Mapped[int | None] = mapped_column(sa.BigInteger)
    r_score: Mapped[int | None] = mapped_column(sa.SmallInteger)
    f_score: Mapped[int | None] = mapped_column(sa.SmallInteger)
    m_score: Mapped[int | None] = mapped_column(sa.SmallInteger)
    rfm_segment: Mapped[str | None] = mapped_column(sa.String(32))
    p_alive: Mapped[float | None] = mapped_column(sa.Float)
    expected_purchases_90d: Mapped[float | None] = mapped_column(sa.Float)
    predicted_clv_12m: Mapped[int | None] = mapped_column(sa.BigInteger)
    churn_risk: Mapped[float | None] = mapped_column(sa.Float)
    currency: Mapped[str] = mapped_column(sa.String(3))
    model: Mapped[str | None] = mapped_column(sa.String(16))
    run_id: Mapped[int] = mapped_column(sa.BigInteger)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def merge_customers(cls, session, pairs: list[tuple[int, int]]) -> dict[int, int]:
        """Drop the losers' rows: scores are recomputed from the (now merged) orders at the next refresh."""
        losers = [lo for _, lo in pairs]
        table = cls.__table__
        counts = dict(session.execute(sa.select(table.c.customer_id, sa.func.count())
                                      .where(table.c.customer_id.in_(losers)).group_by(table.c.customer_id)).all())
        if counts:
            session.execute(sa.delete(table).where(table.c.customer_id.in_(list(counts))))
        return counts


class AnalyticsRun(Base):
    """One refresh: the model and its parameters, what it scored, and the figures the pages draw.

    ``holdout`` holds the model comparison on a calibration/holdout split (one row per model);
    ``diagnostics`` the fit charts, the CLV distribution, the RFM grid and the cohorts, so the pages
    read one row instead of aggregating a million scores.
    """

    __tablename__ = "analytics_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(16))  # running, ok, not_enough_data
    reason: Mapped[str | None] = mapped_column(sa.String(32))
    model: Mapped[str | None] = mapped_column(sa.String(16))
    currency: Mapped[str] = mapped_column(sa.String(3))
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    log_likelihood: Mapped[float | None] = mapped_column(sa.Float)
    customers_total: Mapped[int] = mapped_column(sa.Integer, default=0)
    customers_scored: Mapped[int] = mapped_column(sa.Integer, default=0)
    buyers: Mapped[int] = mapped_column(sa.Integer, default=0)
    repeat_buyers: Mapped[int] = mapped_column(sa.Integer, default=0)
    holdout: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    diagnostics: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    notes: Mapped[list[str]] = mapped_column(Json, default=list)
