"""Activities: calls, meetings and notes with a customer, about a lead or an opportunity.

Logging a call or meeting on a new lead is its first contact: the lead becomes `contacted`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from clm.customers.models import Customer
from clm.lib.clock import as_utc, utcnow
from clm.lib.errors import FieldError
from clm.sales.leads import set_status
from clm.sales.models import ACTIVITY_KINDS, MAX_ID, Activity, Lead, Opportunity


class ActivityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal[ACTIVITY_KINDS]  # type: ignore[valid-type]
    subject: str = Field(min_length=1, max_length=255)
    body: str | None = Field(None, max_length=20_000)
    occurred_at: datetime | None = None
    customer_id: int | None = Field(None, ge=1, le=MAX_ID)
    lead_id: int | None = Field(None, ge=1, le=MAX_ID)
    opportunity_id: int | None = Field(None, ge=1, le=MAX_ID)


def log_activity(session: Session, data: ActivityIn, *, user_id: int | None = None,
                 now: datetime | None = None) -> Activity:
    now = now or utcnow()
    customer_id = data.customer_id
    lead = None
    for field, model, value in (("lead_id", Lead, data.lead_id), ("opportunity_id", Opportunity, data.opportunity_id)):
        if value is None:
            continue
        row = session.get(model, value)
        if row is None:
            raise FieldError(field, f"there is no {field[:-3]} {value}", "not_found")
        if customer_id is not None and row.customer_id != customer_id:
            raise FieldError(field, f"belongs to customer {row.customer_id}, not {customer_id}")
        customer_id = row.customer_id
        lead = row if model is Lead else lead
    if customer_id is None:
        raise FieldError("customer_id", "say who the activity was with: customer_id, lead_id or opportunity_id")
    if session.get(Customer, customer_id) is None:
        raise FieldError("customer_id", f"there is no customer {customer_id}", "not_found")
    occurred = as_utc(data.occurred_at) if data.occurred_at else now
    activity = Activity(customer_id=customer_id, lead_id=data.lead_id, opportunity_id=data.opportunity_id,
                        kind=data.kind, subject=data.subject.strip(), body=data.body, user_id=user_id,
                        occurred_at=occurred, created_at=now)
    session.add(activity)
    if lead is not None and lead.status == "new" and data.kind in ("call", "meeting"):
        set_status(session, lead, "contacted", now=occurred)
    session.flush()
    return activity


def list_activities(session: Session, *, customer_id: int | None = None, lead_id: int | None = None,
                    opportunity_id: int | None = None, limit: int = 100) -> list[Activity]:
    """Newest first."""
    query = sa.select(Activity)
    for column, value in ((Activity.customer_id, customer_id), (Activity.lead_id, lead_id),
                          (Activity.opportunity_id, opportunity_id)):
        if value is not None:
            query = query.where(column == value)
    return list(session.scalars(query.order_by(Activity.occurred_at.desc(), Activity.id.desc()).limit(limit)))
