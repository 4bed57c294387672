"""The sales API: /api/v1/leads, /api/v1/pipelines, /api/v1/sales/forecast, /sales/scoring and /sales/reports.
Opportunities, activities and tasks are in clm.sales.deals_api. A thin adapter over clm.sales.

Scopes: `sales:read` (lists, records, board, forecast, reports), `sales:write` (what a sales rep does: add and
change leads, convert, move and close deals, log activities, tasks), `sales:manage` (pipelines).
A request that the record's state forbids (converting a converted lead) is answered 409.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from clm.db.engine import for_writing
from clm.lib.clock import utcnow
from clm.sales import forecast as sales_forecast
from clm.sales import leads as lead_service
from clm.sales import pipelines as pipeline_service
from clm.sales import reports as sales_reports
from clm.sales.errors import SalesConflict
from clm.sales.models import CLASSIFICATIONS, LEAD_STATUSES, PRIORITIES, SOURCES, LeadScoreModel, Opportunity
from clm.sales.opportunities import DealIn, board, convert_lead
from clm.sales.schemas import (
    BoardOut,
    CapturedOut,
    ColumnOut,
    LeadOut,
    LeadPage,
    OpportunityOut,
    PipelineList,
    PipelineOut,
    StageOut,
)
from clm.web.api_docs import MAX_ID, Cursor, Id, Limit, error_responses, text_param
from clm.web.deps import get_session, require_scope
from clm.web.errors import ApiError

router = APIRouter(tags=["sales"])
read = Depends(require_scope("sales:read"))
write = Depends(require_scope("sales:write"))
manage = Depends(require_scope("sales:manage"))


@contextmanager
def writing(session: Session) -> Iterator[Session]:
    """A writer's transaction, committed on success; a refusal applies nothing (409 for a state conflict)."""
    session.commit()  # the API key check read in a reader's transaction
    for_writing(session)
    try:
        yield session
        session.commit()
    except SalesConflict as exc:
        session.rollback()
        raise ApiError(exc.status, exc.code, exc.message, exc.field) from None
    except BaseException:
        session.rollback()
        raise


def _opportunity_of(session: Session, lead_id: int) -> int | None:
    return session.scalar(sa.select(Opportunity.id).where(Opportunity.lead_id == lead_id))


def opportunity_out(session: Session, opportunity) -> OpportunityOut:
    from clm.sales.models import PipelineStage

    stage = session.get(PipelineStage, opportunity.stage_id)
    return OpportunityOut.model_validate(opportunity).model_copy(update={"stage": stage.key if stage else None})


def pipeline_out(session: Session, pipeline) -> PipelineOut:
    stages = [StageOut.model_validate(s) for s in pipeline_service.stages_of(session, pipeline.id)]
    return PipelineOut(id=pipeline.id, name=pipeline.name, is_default=pipeline.is_default, stages=stages)


# --- leads -----------------------------------------------------------------------------------------


def _choice(values: tuple[str, ...], what: str):
    return Query(pattern="^(" + "|".join(values) + ")$", description=f"{what}: {', '.join(values)}")


@router.get("/leads", response_model=LeadPage, summary="Leads", dependencies=[read], responses=error_responses(422))
def leads_list(
    session: Session = Depends(get_session),
    status: Annotated[str | None, _choice(LEAD_STATUSES, "status")] = None,
    source: Annotated[str | None, _choice(SOURCES, "source")] = None,
    priority: Annotated[str | None, _choice(PRIORITIES, "priority")] = None,
    classification: Annotated[str | None, _choice(CLASSIFICATIONS, "classification")] = None,
    campaign: Annotated[str | None, text_param("Exactly this campaign.")] = None,
    owner_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    open_only: Annotated[bool, Query(alias="open", description="Only new, contacted and qualified leads.")] = False,
    order: Annotated[str, Query(pattern="^(newest|score)$", description="newest, or score (best first)")] = "newest",
    cursor: Cursor = None,
    limit: Limit = 50,
) -> LeadPage:
    rows, after = lead_service.list_leads(session, status=status, owner_id=owner_id, source=source, campaign=campaign,
                                          classification=classification, priority=priority, customer_id=customer_id,
                                          open_only=open_only, order=order, after=cursor, limit=limit)
    converted = dict(session.execute(sa.select(Opportunity.lead_id, Opportunity.id).where(
        Opportunity.lead_id.in_([r.id for r in rows]))).all()) if rows else {}
    return LeadPage(data=[LeadOut.of(r, converted.get(r.id)) for r in rows], next=after)


@router.post("/leads", response_model=CapturedOut, status_code=201, summary="Add a lead", dependencies=[write],
             responses=error_responses(422))
def leads_create(body: lead_service.LeadIn, request: Request, response: Response,
                 session: Session = Depends(get_session)) -> CapturedOut:
    """A phone or email that belongs to a known customer joins that profile. With `external_id`, sending
    the same lead again answers 200 with the first one; so does a customer's second lead while one is open."""
    with writing(session):
        captured = lead_service.capture_lead(session, body, region=request.app.state.settings.default_region)
    if not captured.created:
        response.status_code = 200
    return CapturedOut(created=captured.created, lead=LeadOut.of(captured.lead, _opportunity_of(session, captured.lead.id)))


@router.get("/leads/{lead_id}", response_model=LeadOut, summary="One lead", dependencies=[read],
            responses=error_responses(404, 422))
def leads_get(lead_id: Id, session: Session = Depends(get_session)) -> LeadOut:
    lead = lead_service.get_lead(session, lead_id)
    return LeadOut.of(lead, _opportunity_of(session, lead.id))


@router.patch("/leads/{lead_id}", response_model=LeadOut, summary="Change a lead", dependencies=[write],
              responses=error_responses(404, 409, 422))
def leads_update(lead_id: Id, body: lead_service.LeadUpdate, session: Session = Depends(get_session)) -> LeadOut:
    """Status new -> contacted -> qualified, or unqualified with `unqualified_reason`; converted only by
    converting. `classification: null` hands it back to the score."""
    with writing(session):
        lead = lead_service.update_lead(session, lead_id, body)
    return LeadOut.of(lead, _opportunity_of(session, lead.id))


@router.post("/leads/{lead_id}/convert", response_model=OpportunityOut, status_code=201,
             summary="Convert a lead to an opportunity", dependencies=[write], responses=error_responses(404, 409, 422))
def leads_convert(lead_id: Id, body: DealIn | None = None, session: Session = Depends(get_session)) -> OpportunityOut:
    """The opportunity is on the lead's customer: their history is the deal's. 409 when already converted."""
    with writing(session):
        opportunity = convert_lead(session, lead_id, body)
    return opportunity_out(session, opportunity)


# --- pipelines -------------------------------------------------------------------------------------


@router.get("/pipelines", response_model=PipelineList, summary="Pipelines and their stages", dependencies=[read],
            responses=error_responses(422))
def pipelines_list(session: Session = Depends(get_session)) -> PipelineList:
    with writing(session):  # the default pipeline is made on first use
        rows = pipeline_service.list_pipelines(session)
    return PipelineList(data=[pipeline_out(session, p) for p in rows])


@router.post("/pipelines", response_model=PipelineOut, status_code=201, summary="Add a pipeline",
             dependencies=[manage], responses=error_responses(422))
def pipelines_create(body: pipeline_service.PipelineIn, session: Session = Depends(get_session)) -> PipelineOut:
    with writing(session):
        pipeline = pipeline_service.save_pipeline(session, body)
    return pipeline_out(session, pipeline)


@router.put("/pipelines/{pipeline_id}", response_model=PipelineOut, summary="Change a pipeline's stages",
            dependencies=[manage], responses=error_responses(404, 409, 422))
def pipelines_put(pipeline_id: Id, body: pipeline_service.PipelineIn,
                  session: Session = Depends(get_session)) -> PipelineOut:
    """Stages are matched by key: a kept key keeps its deals. Removing a stage that holds deals is a 409."""
    with writing(session):
        pipeline = pipeline_service.save_pipeline(session, body, pipeline_id)
    return pipeline_out(session, pipeline)


@router.get("/pipelines/{pipeline_id}/board", response_model=BoardOut, summary="The pipeline as kanban columns",
            dependencies=[read], responses=error_responses(404, 422))
def pipelines_board(pipeline_id: Id, session: Session = Depends(get_session),
                    owner_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                    per_stage: Annotated[int, Query(ge=1, le=200)] = 50) -> BoardOut:
    pipeline = pipeline_service.get_pipeline(session, pipeline_id)
    columns = board(session, pipeline.id, owner_id=owner_id, per_stage=per_stage)
    keys = {c.stage.id: c.stage.key for c in columns}
    return BoardOut(pipeline=pipeline_out(session, pipeline), columns=[
        ColumnOut(stage=StageOut.model_validate(c.stage), count=c.count, value=c.value, weighted=c.weighted,
                  cards=[OpportunityOut.model_validate(o).model_copy(update={"stage": keys.get(o.stage_id)})
                         for o in c.cards]) for c in columns])


# --- forecast and scoring --------------------------------------------------------------------------


class ForecastOut(BaseModel):
    currency: str
    months: list[dict[str, Any]]
    unscheduled: dict[str, int]
    owners: list[dict[str, Any]]


@router.get("/sales/forecast", response_model=ForecastOut, summary="Weighted pipeline and won/lost by month",
            dependencies=[read], responses=error_responses(422))
def sales_forecast_get(request: Request, session: Session = Depends(get_session),
                       pipeline_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                       owner_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                       since: date | None = None, until: date | None = None,
                       currency: Annotated[str, Query(pattern="^[A-Z]{3}$")] = "VND") -> ForecastOut:
    """Open deals weighted by their stage's probability, by expected close month; won and lost by the
    month they closed (business time zone); per owner."""
    zone = request.app.state.settings.timezone
    return ForecastOut(**sales_forecast.forecast(session, pipeline_id=pipeline_id, owner_id=owner_id, since=since,
                                                 until=until, currency=currency, timezone=zone))


class ScoringOut(BaseModel):
    kind: str = "prior"
    trained_at: Any = None
    won: int = 0
    lost: int = 0
    auc: float | None = None
    evaluation: dict[str, Any] = {}
    weights: list[dict[str, Any]] = []


@router.get("/sales/scoring", response_model=ScoringOut, summary="The lead-scoring model and its evaluation",
            dependencies=[read], responses=error_responses(422))
def sales_scoring_get(session: Session = Depends(get_session)) -> ScoringOut:
    """The newest model: learned or prior, outcomes it learned from, holdout AUC and calibration, weights."""
    row = session.scalar(sa.select(LeadScoreModel).order_by(LeadScoreModel.trained_at.desc(),
                                                            LeadScoreModel.id.desc()).limit(1))
    if row is None:
        return ScoringOut()
    model = row.params.get("model", {})
    weights = sorted(({"feature": n, "weight": w} for n, w in zip(model.get("names", []), model.get("coef", []),
                                                                   strict=True) if w), key=lambda x: -abs(x["weight"]))
    return ScoringOut(kind=row.kind, trained_at=row.trained_at, won=row.won, lost=row.lost, auc=row.auc,
                      evaluation=row.params.get("evaluation", {}), weights=weights)


class ReportsOut(BaseModel):
    funnel_by_source: dict[str, Any]
    funnel_by_campaign: dict[str, Any]
    time_in_stage: list[dict[str, Any]]
    scores: dict[str, Any]


@router.get("/sales/reports", response_model=ReportsOut, summary="Funnel, time in stage and the two scores",
            dependencies=[read], responses=error_responses(404, 422))
def sales_reports_get(request: Request, session: Session = Depends(get_session),
                      pipeline_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                      owner_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                      since: datetime | None = None, until: datetime | None = None) -> ReportsOut:
    """Leads that came in from `since` to before `until` per source and per campaign (contacted, qualified,
    converted, won, lost; conversion and win rates); the median days in each open stage of the pipeline (the
    default one unless `pipeline_id`) over stays ending from `since`; the rule points against the learned score on
    the closed deals (AUC, win rate per fifth). Naive datetimes are read as UTC."""
    since, until = _aware(since), _aware(until)
    pipeline = (pipeline_service.get_pipeline(session, pipeline_id) if pipeline_id is not None
                else pipeline_service.default_pipeline(session))
    now = utcnow()
    return ReportsOut(
        funnel_by_source=sales_reports.funnel(session, "source", since=since, until=until, owner_id=owner_id),
        funnel_by_campaign=sales_reports.funnel(session, "campaign", since=since, until=until, owner_id=owner_id),
        time_in_stage=sales_reports.time_in_stage(session, pipeline.id, since=since, now=now),
        scores=sales_reports.scores_against_outcomes(session))


def _aware(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
