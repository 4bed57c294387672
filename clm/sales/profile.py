"""A customer's sales record for the customer 360: their leads and their deals, newest first, with the stage,
value and owner of each (read-only; the sales pages change them)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.sales.models import Lead, Opportunity, PipelineStage

LIMIT = 20  # a customer with more is a reseller; the lead list filters by customer for the rest


def sales_of(session: Session, customer_id: int, limit: int = LIMIT) -> dict[str, list[dict[str, Any]]]:
    """{"leads": [...], "opportunities": [...]} of one customer, each row a plain dict for the template."""
    owner = sa.func.coalesce(User.name, User.email)
    leads = session.execute(
        sa.select(Lead.id, Lead.code, Lead.status, Lead.source, Lead.campaign, Lead.score, Lead.classification,
                  Lead.created_at, owner.label("owner"))
        .outerjoin(User, User.id == Lead.owner_id).where(Lead.customer_id == customer_id)
        .order_by(Lead.created_at.desc(), Lead.id.desc()).limit(limit)).mappings().all()
    deals = session.execute(
        sa.select(Opportunity.id, Opportunity.code, Opportunity.title, Opportunity.status, Opportunity.value,
                  Opportunity.currency, Opportunity.pipeline_id, Opportunity.lead_id, Opportunity.expected_close_date,
                  Opportunity.closed_at, Opportunity.close_reason, Opportunity.created_at,
                  PipelineStage.key.label("stage_key"), PipelineStage.name.label("stage_name"),
                  PipelineStage.probability, owner.label("owner"))
        .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
        .outerjoin(User, User.id == Opportunity.owner_id).where(Opportunity.customer_id == customer_id)
        .order_by(Opportunity.created_at.desc(), Opportunity.id.desc()).limit(limit)).mappings().all()
    return {"leads": [dict(r) for r in leads], "opportunities": [dict(r) for r in deals]}
