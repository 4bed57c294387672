"""/api/v1/sales/point-rules: the business's rule points (clm.sales.points), and how they compare with the
learned score on the closed deals. Reading needs `sales:read`, changing `sales:manage`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from clm.sales import points
from clm.sales.api import manage, read, writing
from clm.web.api_docs import Id, error_responses
from clm.web.deps import get_session

router = APIRouter(tags=["sales"])


class PointRuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    rule: dict[str, Any]
    points: int
    half_life_days: int | None
    active: bool
    created_at: datetime
    updated_at: datetime


class PointRuleList(BaseModel):
    data: list[PointRuleOut]
    comparison: dict[str, Any]


@router.get("/sales/point-rules", response_model=PointRuleList, summary="Rule points, and how they compare",
            dependencies=[read], responses=error_responses(422))
def point_rules_list(session: Session = Depends(get_session)) -> PointRuleList:
    """The rules; `comparison`: on the closed deals' leads, the AUC of the rule points and of the learned
    score as they stood while each lead was open."""
    return PointRuleList(data=[PointRuleOut.model_validate(r) for r in points.list_point_rules(session)],
                         comparison=points.compare(session))


@router.post("/sales/point-rules", response_model=PointRuleOut, status_code=201, summary="Add a points rule",
             dependencies=[manage], responses=error_responses(422))
def point_rules_create(body: points.PointRuleIn, session: Session = Depends(get_session)) -> PointRuleOut:
    """`rule` is a segment rule tree (docs/segments.md); leads get the points when they are next scored."""
    with writing(session):
        rule = points.save_point_rule(session, body)
    return PointRuleOut.model_validate(rule)


@router.put("/sales/point-rules/{rule_id}", response_model=PointRuleOut, summary="Change a points rule",
            dependencies=[manage], responses=error_responses(404, 422))
def point_rules_put(rule_id: Id, body: points.PointRuleIn, session: Session = Depends(get_session)) -> PointRuleOut:
    with writing(session):
        rule = points.save_point_rule(session, body, rule_id)
    return PointRuleOut.model_validate(rule)


@router.delete("/sales/point-rules/{rule_id}", status_code=204, summary="Remove a points rule",
               dependencies=[manage], responses=error_responses(404, 422))
def point_rules_delete(rule_id: Id, session: Session = Depends(get_session)) -> Response:
    with writing(session):
        points.delete_point_rule(session, rule_id)
    return Response(status_code=204)
