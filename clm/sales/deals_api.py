"""The sales API, second half: /api/v1/opportunities, /api/v1/activities and /api/v1/tasks (scopes as in
clm.sales.api)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from clm.sales import activities, tasks
from clm.sales import opportunities as deals
from clm.sales.api import opportunity_out, read, write, writing
from clm.sales.models import OPPORTUNITY_STATUSES, Task
from clm.sales.schemas import ActivityList, ActivityOut, OpportunityOut, OpportunityPage, TaskList, TaskOut
from clm.web.api_docs import MAX_ID, Cursor, Id, Instant, Limit, error_responses, text_param
from clm.web.deps import get_session

router = APIRouter(tags=["sales"])


@router.get("/opportunities", response_model=OpportunityPage, summary="Opportunities", dependencies=[read],
            responses=error_responses(422))
def opportunities_list(
    session: Session = Depends(get_session),
    pipeline_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    stage: Annotated[str | None, text_param("A stage key or id (with pipeline_id).", 64)] = None,
    status: Annotated[str | None, Query(pattern="^(" + "|".join(OPPORTUNITY_STATUSES) + ")$")] = None,
    owner_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> OpportunityPage:
    rows, after = deals.list_opportunities(session, pipeline_id=pipeline_id, stage=stage, status=status,
                                           owner_id=owner_id, customer_id=customer_id, after=cursor, limit=limit)
    return OpportunityPage(data=[opportunity_out(session, o) for o in rows], next=after)


@router.post("/opportunities", response_model=OpportunityOut, status_code=201, summary="Add an opportunity",
             dependencies=[write], responses=error_responses(422))
def opportunities_create(body: deals.OpportunityIn, session: Session = Depends(get_session)) -> OpportunityOut:
    """For a known customer without a lead (a repeat buyer's new deal); leads are converted instead."""
    with writing(session):
        opportunity = deals.create_opportunity(session, body)
    return opportunity_out(session, opportunity)


@router.get("/opportunities/{opportunity_id}", response_model=OpportunityOut, summary="One opportunity",
            dependencies=[read], responses=error_responses(404, 422))
def opportunities_get(opportunity_id: Id, session: Session = Depends(get_session)) -> OpportunityOut:
    return opportunity_out(session, deals.get_opportunity(session, opportunity_id))


@router.patch("/opportunities/{opportunity_id}", response_model=OpportunityOut, summary="Change an opportunity",
              dependencies=[write], responses=error_responses(404, 409, 422))
def opportunities_update(opportunity_id: Id, body: deals.OpportunityUpdate,
                         session: Session = Depends(get_session)) -> OpportunityOut:
    with writing(session):
        opportunity = deals.update_opportunity(session, opportunity_id, body)
    return opportunity_out(session, opportunity)


class StageMove(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: str | int = Field(description="The stage's key or id, in the opportunity's pipeline.")
    reason: str | None = Field(None, max_length=255, description="Needed when moving to the lost stage.")


class Close(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=255)


@router.post("/opportunities/{opportunity_id}/stage", response_model=OpportunityOut, summary="Move to a stage",
             dependencies=[write], responses=error_responses(404, 409, 422))
def opportunities_move(opportunity_id: Id, body: StageMove, session: Session = Depends(get_session)) -> OpportunityOut:
    """An unknown stage is a 422 naming `stage`; a closed deal does not move (409). The won stage wins
    the deal (its order is recorded), the lost stage loses it (with `reason`)."""
    with writing(session):
        opportunity = deals.move_stage(session, opportunity_id, body.stage, reason=body.reason)
    return opportunity_out(session, opportunity)


@router.post("/opportunities/{opportunity_id}/win", response_model=OpportunityOut, summary="Win: record its order",
             dependencies=[write], responses=error_responses(404, 409, 422))
def opportunities_win(opportunity_id: Id, body: Close | None = None,
                      session: Session = Depends(get_session)) -> OpportunityOut:
    """The order (total = value, the products as items) counts for CLV, stages and loyalty. Winning again
    changes nothing."""
    with writing(session):
        opportunity = deals.win(session, opportunity_id, reason=body.reason if body else None)
    return opportunity_out(session, opportunity)


@router.post("/opportunities/{opportunity_id}/lose", response_model=OpportunityOut, summary="Lose, saying why",
             dependencies=[write], responses=error_responses(404, 409, 422))
def opportunities_lose(opportunity_id: Id, body: Close, session: Session = Depends(get_session)) -> OpportunityOut:
    with writing(session):
        opportunity = deals.lose(session, opportunity_id, reason=body.reason)
    return opportunity_out(session, opportunity)


# --- activities and tasks --------------------------------------------------------------------------


@router.get("/activities", response_model=ActivityList, summary="Calls, meetings and notes", dependencies=[read],
            responses=error_responses(422))
def activities_list(session: Session = Depends(get_session),
                    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                    lead_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                    opportunity_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                    limit: Limit = 100) -> ActivityList:
    rows = activities.list_activities(session, customer_id=customer_id, lead_id=lead_id,
                                      opportunity_id=opportunity_id, limit=limit)
    return ActivityList(data=[ActivityOut.model_validate(a) for a in rows])


@router.post("/activities", response_model=ActivityOut, status_code=201, summary="Log a call, meeting or note",
             dependencies=[write], responses=error_responses(422))
def activities_create(body: activities.ActivityIn, session: Session = Depends(get_session)) -> ActivityOut:
    """A call or meeting on a new lead makes it `contacted`."""
    with writing(session):
        activity = activities.log_activity(session, body)
    return ActivityOut.model_validate(activity)


@router.get("/tasks", response_model=TaskList, summary="Tasks, soonest due first", dependencies=[read],
            responses=error_responses(422))
def tasks_list(session: Session = Depends(get_session),
               assignee_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
               customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
               lead_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
               opportunity_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
               done: Annotated[bool, Query(description="Include done tasks.")] = False,
               due_before: Instant | None = None, limit: Limit = 100) -> TaskList:
    rows = tasks.list_tasks(session, assignee_id=assignee_id, customer_id=customer_id, lead_id=lead_id,
                            opportunity_id=opportunity_id, open_only=not done, due_before=due_before, limit=limit)
    return TaskList(data=[TaskOut.model_validate(t) for t in rows])


@router.post("/tasks", response_model=TaskOut, status_code=201, summary="Add a task", dependencies=[write],
             responses=error_responses(422))
def tasks_create(body: tasks.TaskIn, session: Session = Depends(get_session)) -> TaskOut:
    """With `remind_at`, the worker announces `task.reminder` at that time (unless the task is done)."""
    with writing(session):
        task: Task = tasks.create_task(session, body)
    return TaskOut.model_validate(task)


@router.patch("/tasks/{task_id}", response_model=TaskOut, summary="Change or complete a task", dependencies=[write],
              responses=error_responses(404, 422))
def tasks_update(task_id: Id, body: tasks.TaskUpdate, session: Session = Depends(get_session)) -> TaskOut:
    with writing(session):
        task = tasks.update_task(session, task_id, body)
    return TaskOut.model_validate(task)

