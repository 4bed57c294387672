"""The lifecycle API: /api/v1/lifecycle/stages, /funnel and a customer's stage history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from clm.lifecycle import metrics, service
from clm.lifecycle.rules import current_rules
from clm.web.api_docs import Id, Instant, error_responses
from clm.web.deps import get_session, require_scope

router = APIRouter(prefix="/lifecycle", tags=["lifecycle"])
customers_read = [Depends(require_scope("customers:read"))]
Locale = Annotated[Literal["vi", "en"], Query(description="Language of the stage names.")]


class StageCount(BaseModel):
    stage: str = Field(description="The stage key from the rule file.")
    name: str = Field(description="The stage's display name in the requested language.")
    count: int = Field(description="Live customers in this stage now.")


class StageCounts(BaseModel):
    data: list[StageCount]


class FunnelStep(BaseModel):
    stage: str
    name: str
    next: str | None = Field(description="The following main stage; null for the last.")
    entered: int = Field(description="Customers who entered this stage (or skipped past it), since `since`.")
    reached_next: int | None = Field(description="Of those, how many reached the next stage.")
    conversion: float | None = Field(description="reached_next / entered; null when nobody entered.")


class Funnel(BaseModel):
    data: list[FunnelStep]


class StageChangeOut(BaseModel):
    from_stage: str | None
    to_stage: str
    rule: str = Field(description="The rule in the rule file that made this move.")
    changed_at: datetime = Field(description="When the move happened by the facts (UTC).")


class StageHistoryOut(BaseModel):
    data: list[StageChangeOut]


def _rules(request: Request):
    return current_rules(request.app.state.settings)


@router.get("/stages", response_model=StageCounts, summary="Customers per lifecycle stage",
            responses=error_responses(422), dependencies=customers_read)
def stages(request: Request, locale: Locale = "vi", session: Session = Depends(get_session)) -> StageCounts:
    """Every configured stage in order, with how many live customers are in it now (zero included)."""
    rules = _rules(request)
    names = metrics.stage_names(locale, rules)
    return StageCounts(data=[StageCount(stage=k, name=names[k], count=n)
                             for k, n in metrics.stage_counts(session, rules).items()])


@router.get("/funnel", response_model=Funnel, summary="Conversion between consecutive main stages",
            responses=error_responses(422), dependencies=customers_read)
def funnel(request: Request, since: Annotated[Instant | None, Query(description="Only customers who entered "
           "each stage at or after this time (ISO 8601).")] = None, locale: Locale = "vi",
           session: Session = Depends(get_session)) -> Funnel:
    """For each main stage: customers who entered it and how many went on to the next one."""
    rules = _rules(request)
    names = metrics.stage_names(locale, rules)
    return Funnel(data=[FunnelStep(name=names[row["stage"]], **row)
                        for row in metrics.funnel(session, since, rules)])


@router.get("/customers/{customer_id}/history", response_model=StageHistoryOut,
            summary="A customer's stage history", responses=error_responses(404, 422), dependencies=customers_read)
def history(customer_id: Id, session: Session = Depends(get_session)) -> StageHistoryOut:
    """The customer's stage moves, oldest first, each with the rule that made it."""
    changes = service.stage_history(session, customer_id)  # NotFound: the API's 404
    return StageHistoryOut(data=[StageChangeOut(**vars(c)) for c in changes])
