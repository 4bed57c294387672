"""Sales reports: the lead funnel by source or campaign (with conversion and win rates), the time deals spend
in each stage, and the rule points against the learned score on the deals that closed.

Each report is read in bulk (SQL aggregates, then the few columns it needs), for the dashboard's report
page and `GET /api/v1/sales/reports`. The weighted forecast per month and per owner is clm.sales.forecast.
"""

from __future__ import annotations

from datetime import datetime
from statistics import median
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.sales.models import Lead, Opportunity, OpportunityStageChange, PipelineStage
from clm.sales.scoring.model import auc

FUNNEL_STEPS = ("leads", "contacted", "qualified", "converted", "won", "lost")
NO_CAMPAIGN = ""  # leads without a campaign are grouped under this key
TOP_CAMPAIGNS = 15  # the rest are summed into one "other" row


def _rates(row: dict[str, Any]) -> dict[str, Any]:
    closed = row["won"] + row["lost"]
    row["conversion_rate"] = row["converted"] / row["leads"] if row["leads"] else None
    row["win_rate"] = row["won"] / closed if closed else None
    return row


def funnel(session: Session, by: str = "source", *, since: datetime | None = None,
           until: datetime | None = None, owner_id: int | None = None) -> dict[str, Any]:
    """Leads that came in between `since` (inclusive) and `until` (exclusive), per source or campaign: how many
    were contacted, qualified, converted to a deal, and how many of those deals were won or lost.

    A lead counts as contacted once it has `contacted_at` or a status past `new` other than unqualified
    (qualified leads were talked to); `conversion_rate` = converted / leads, `win_rate` = won / closed deals.
    """
    if by not in ("source", "campaign"):
        raise ValueError("by is source or campaign")
    group = Lead.source if by == "source" else sa.func.coalesce(Lead.campaign, NO_CAMPAIGN)
    converted = Lead.status == "converted"

    def count_if(condition) -> Any:
        return sa.func.sum(sa.case((condition, 1), else_=0))

    query = (sa.select(group.label("key"), sa.func.count(Lead.id),
                       count_if(sa.or_(Lead.contacted_at.is_not(None),
                                       Lead.status.in_(("contacted", "qualified", "converted")))),
                       count_if(Lead.status.in_(("qualified", "converted"))), count_if(converted),
                       count_if(Opportunity.status == "won"), count_if(Opportunity.status == "lost"))
             .select_from(Lead).outerjoin(Opportunity, Opportunity.lead_id == Lead.id).group_by(group))
    if since is not None:
        query = query.where(Lead.created_at >= since)
    if until is not None:
        query = query.where(Lead.created_at < until)
    if owner_id is not None:
        query = query.where(Lead.owner_id == owner_id)
    rows = [dict(zip(("key",) + FUNNEL_STEPS, (key, *(int(n or 0) for n in counts)), strict=True))
            for key, *counts in session.execute(query)]
    rows.sort(key=lambda r: (-r["leads"], r["key"]))
    if by == "campaign" and len(rows) > TOP_CAMPAIGNS:
        rest = rows[TOP_CAMPAIGNS:]
        rows = rows[:TOP_CAMPAIGNS] + [{"key": None, **{s: sum(r[s] for r in rest) for s in FUNNEL_STEPS},
                                        "groups": len(rest)}]
    total = {"key": "total", **{s: sum(r[s] for r in rows) for s in FUNNEL_STEPS}}
    return {"by": by, "rows": [_rates(r) for r in rows], "total": _rates(total)}


def time_in_stage(session: Session, pipeline_id: int, *, since: datetime | None = None,
                  now: datetime | None = None) -> list[dict[str, Any]]:
    """For each open stage of the pipeline, the median days a deal stayed in it before moving on (from the
    stage changes), over stays that ended on or after `since`; with how many stays that is, and how many
    deals are in it now and the median age of their stay so far (as of `now`)."""
    stages = session.scalars(sa.select(PipelineStage).where(PipelineStage.pipeline_id == pipeline_id)
                             .order_by(PipelineStage.position, PipelineStage.id)).all()
    changes = session.execute(
        sa.select(OpportunityStageChange.opportunity_id, OpportunityStageChange.to_stage_id,
                  OpportunityStageChange.changed_at, Opportunity.status)
        .join(Opportunity, Opportunity.id == OpportunityStageChange.opportunity_id)
        .where(Opportunity.pipeline_id == pipeline_id)
        .order_by(OpportunityStageChange.opportunity_id, OpportunityStageChange.changed_at,
                  OpportunityStageChange.id))
    done: dict[int, list[float]] = {s.id: [] for s in stages}
    ongoing: dict[int, list[float]] = {s.id: [] for s in stages}
    previous = None

    def still_in(last) -> None:  # the deal's last stage: an ongoing stay if the deal is open
        if last is not None and last[3] == "open" and last[1] in ongoing and now is not None:
            ongoing[last[1]].append((now - last[2]).total_seconds() / 86400)

    for row in changes:
        opportunity_id, _, at, _ = row
        if previous is not None and previous[0] == opportunity_id:
            if previous[1] in done and (since is None or at >= since):
                done[previous[1]].append((at - previous[2]).total_seconds() / 86400)
        else:
            still_in(previous)
        previous = tuple(row)
    still_in(previous)
    return [{"stage_id": s.id, "key": s.key, "name": s.name, "stays": len(done[s.id]),
             "median_days": median(done[s.id]) if done[s.id] else None, "open_now": len(ongoing[s.id]),
             "median_open_days": median(ongoing[s.id]) if ongoing[s.id] else None}
            for s in stages if s.kind == "open"]


def _buckets(y: np.ndarray, score: np.ndarray, bins: int) -> list[dict[str, Any]]:
    """Equal-count bins from the lowest score to the highest: each bin's score range and its win rate."""
    order = np.argsort(score, kind="stable")
    out = []
    for chunk in np.array_split(order, min(bins, len(order))):
        if len(chunk):
            out.append({"low": float(score[chunk].min()), "high": float(score[chunk].max()),
                        "won_rate": float(y[chunk].mean()), "count": int(len(chunk))})
    return out


def scores_against_outcomes(session: Session, bins: int = 5) -> dict[str, Any]:
    """On the closed deals whose lead has both scores (each as it stood while the lead was open): how well
    each told won from lost (AUC), and the win rate in each fifth of the deals ranked by each score (a
    useful score climbs from the lowest fifth to the highest)."""
    rows = session.execute(sa.select(Opportunity.status, Lead.score, Lead.rule_points)
                           .join(Lead, Lead.id == Opportunity.lead_id)
                           .where(Opportunity.status.in_(("won", "lost")), Lead.score.is_not(None),
                                  Lead.rule_points.is_not(None))).all()
    y = np.array([status == "won" for status, _, _ in rows], dtype=bool)
    learned = np.array([s for _, s, _ in rows], dtype=float)
    points = np.array([p for _, _, p in rows], dtype=float)
    both = bool(y.any() and (~y).any())
    return {"deals": len(rows), "won": int(y.sum()),
            "auc_learned": auc(y, learned) if both else None, "auc_rules": auc(y, points) if both else None,
            "learned": _buckets(y.astype(float), learned, bins) if rows else [],
            "rules": _buckets(y.astype(float), points, bins) if rows else []}
