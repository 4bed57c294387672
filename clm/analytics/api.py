"""The analytics API: a customer's scores, and the latest refresh (model, parameters, holdout comparison)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from clm.analytics import scores
from clm.customers import service
from clm.web import i18n
from clm.web.api_docs import Id, error_responses
from clm.web.deps import get_session, require_scope
from clm.web.errors import ApiError

router = APIRouter(tags=["analytics"])
customers_read = [Depends(require_scope("customers:read"))]
Locale = Annotated[Literal["vi", "en"], Query(description="Language of the explanation.")]


class ScoresOut(BaseModel):
    customer_id: int
    status: Literal["ok", "not_enough_data"] = Field(
        description="ok: the model columns are filled; not_enough_data: see `reason`, model columns are null.")
    reason: str | None = Field(description="no_orders, other_currency, too_few_buyers or too_few_repeat_buyers.")
    explanation: str = Field(description="One line for people, in `locale`.")
    recency_days: int | None = Field(description="Days since the last purchase.")
    tenure_days: int | None = Field(description="Days since the first purchase.")
    frequency: int | None = Field(description="Repeat purchase days (purchases on one day count once).")
    monetary: int | None = Field(description="Total spend net of refunds, minor units of `currency`.")
    r_score: int | None = Field(description="Recency quintile, 1..5 (5 = most recent).")
    f_score: int | None
    m_score: int | None
    rfm_segment: str | None = Field(description="champions, loyal, potential loyalist, new, promising, need "
                                    "attention, about to sleep, can't lose them, at risk, hibernating or lost.")
    p_alive: float | None = Field(description="Probability the customer is still buying (0..1).")
    expected_purchases_90d: float | None
    predicted_clv_12m: int | None = Field(description="Discounted value of the next 12 months, minor units.")
    churn_risk: float | None = Field(description="1 - p_alive.")
    currency: str
    model: str | None = Field(description="bgnbd, pnbd or mbgnbd.")
    run_id: int
    computed_at: datetime = Field(description="The time the scores describe (the refresh's `as_of`).")


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: str = Field(description="ok or not_enough_data (then `reason` says why).")
    reason: str | None
    model: str | None
    currency: str
    params: dict[str, float] = Field(description="Transaction model and Gamma-Gamma (gg_*) parameters.")
    log_likelihood: float | None
    customers_total: int
    customers_scored: int
    buyers: int
    repeat_buyers: int
    holdout: dict[str, Any] = Field(description="The model comparison: days, calibration_end and one row per "
                                    "model (mae, rmse, predicted_total, actual_total), best first.")
    notes: list[str]
    as_of: datetime
    started_at: datetime
    finished_at: datetime | None


@router.get("/customers/{customer_id}/scores", response_model=ScoresOut, summary="A customer's RFM and CLV scores",
            responses=error_responses(308, 404, 422), dependencies=customers_read)
def customer_scores(customer_id: Id, request: Request, locale: Locale = "en",
                    session: Session = Depends(get_session)) -> ScoresOut:
    """The scores of the latest refresh; 404 when the customer has none yet (new since the last refresh)."""
    try:
        service.get_customer(session, customer_id)
    except service.Merged as exc:
        location = request.url.path.replace(f"/customers/{customer_id}", f"/customers/{exc.winner_id}", 1)
        raise ApiError(308, "merged", str(exc), headers={"Location": location},
                       merged_into_id=exc.winner_id) from None
    score = scores.score_of(session, customer_id)
    if score is None:
        raise ApiError(404, "not_found", f"customer {customer_id} has no scores yet: run `clm analytics refresh`")
    from clm.analytics.pages import explain

    text = explain(score, i18n.translator(locale), i18n.Formatter(locale, request.app.state.settings.timezone))
    return ScoresOut(**{k: getattr(score, k) for k in ScoresOut.model_fields if k != "explanation"},
                     explanation=text)


@router.get("/analytics/runs/latest", response_model=RunOut, summary="The latest analytics refresh",
            responses=error_responses(404, 422), dependencies=customers_read)
def latest_run(session: Session = Depends(get_session)) -> RunOut:
    """The model, parameters, counts and holdout comparison of the newest finished refresh."""
    run = scores.latest_run(session)
    if run is None:
        raise ApiError(404, "not_found", "no analytics refresh has run yet: run `clm analytics refresh`")
    return RunOut.model_validate(run)
