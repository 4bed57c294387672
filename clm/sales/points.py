"""Rule points: the business's own lead scoring, kept beside the learned score so the two can be compared
on what actually converted.

A rule is a segment rule tree (clm.segments.rules: event, profile, order... conditions) worth `points`.
With `half_life_days`, the points halve every that many days since the customer last did any of the
events the tree names (a cart added yesterday counts nearly in full, one three months ago barely); a
tree naming no event does not decay. A lead's rule points are the sum over the active rules its customer
matches now; they are recomputed with the learned score (on capture, by the worker's `sales.scores`
step, by `clm sales score`), each with its detail (rule, points after decay).

`compare` ranks the closed deals' leads by each score as it stood while the lead was open and reports
both areas under the ROC curve: whether the hand-set points or the learned model tell won from lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound
from clm.sales.models import Lead, Opportunity, PointRule


class PointRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    rule: dict[str, Any]
    points: int = Field(ge=-1000, le=1000)
    half_life_days: int | None = Field(None, ge=1, le=3650)
    active: bool = True

    @field_validator("points")
    @classmethod
    def _nonzero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("a rule worth 0 points changes nothing; give it points (negative to lower a lead)")
        return value


def _tree(data: dict[str, Any]):
    from clm.segments.rules import parse_rules

    try:
        return parse_rules(data, "rule")
    except FieldError:
        raise
    except ValueError as exc:
        raise FieldError("rule", str(exc).splitlines()[0]) from None


def save_point_rule(session: Session, data: PointRuleIn, rule_id: int | None = None,
                    now: datetime | None = None) -> PointRule:
    now = now or utcnow()
    _tree(data.rule)
    rule = PointRule(created_at=now) if rule_id is None else get_point_rule(session, rule_id)
    rule.name, rule.rule, rule.points = data.name.strip(), data.rule, data.points
    rule.half_life_days, rule.active, rule.updated_at = data.half_life_days, data.active, now
    session.add(rule)
    session.flush()
    return rule


def get_point_rule(session: Session, rule_id: int) -> PointRule:
    rule = session.get(PointRule, rule_id)
    if rule is None:
        raise NotFound("point rule", rule_id)
    return rule


def delete_point_rule(session: Session, rule_id: int) -> None:
    session.delete(get_point_rule(session, rule_id))
    session.flush()


def list_point_rules(session: Session) -> list[PointRule]:
    return list(session.scalars(sa.select(PointRule).order_by(PointRule.id)))


def _event_names(tree) -> set[str]:
    from clm.segments import rules as r

    return {c.name for c in r.conditions(tree) if isinstance(c, r.EventCondition)}


def _last_event_days(session: Session, customer_ids: Sequence[int], names: set[str]) -> dict[int, Any]:
    from clm.tracking.models import EventDaily

    return dict(session.execute(sa.select(EventDaily.customer_id, sa.func.max(EventDaily.day)).where(
        EventDaily.customer_id.in_(list(customer_ids)), EventDaily.name.in_(sorted(names)))
        .group_by(EventDaily.customer_id)).all())


def points_of(session: Session, customer_ids: Sequence[int], now: datetime, timezone: str = "Asia/Ho_Chi_Minh",
              rules: Sequence[PointRule] | None = None) -> dict[int, tuple[float, list[dict[str, Any]]]]:
    """customer id -> (rule points, detail) for these customers as of `now`."""
    from clm.segments.compile import members_query
    from clm.segments.lookup import make_context

    ids = list(dict.fromkeys(customer_ids))
    out: dict[int, tuple[float, list[dict[str, Any]]]] = {i: (0.0, []) for i in ids}
    rules = [r for r in (rules if rules is not None else list_point_rules(session)) if r.active]
    if not ids or not rules:
        return out
    for rule in rules:
        tree = _tree(rule.rule)
        matched = set(session.scalars(members_query(tree, make_context(session, now, timezone, scope_ids=ids))))
        if not matched:
            continue
        names = _event_names(tree) if rule.half_life_days else set()
        last = _last_event_days(session, list(matched), names) if names else {}
        for customer_id in matched:
            weight = 1.0
            if names and customer_id in last and last[customer_id] is not None:
                age = max(0, (now.date() - last[customer_id]).days)
                weight = 0.5 ** (age / rule.half_life_days)
            total, detail = out[customer_id]
            value = rule.points * weight
            out[customer_id] = (total + value, [*detail, {"rule_id": rule.id, "name": rule.name,
                                                          "points": round(value, 1)}])
    return out


def apply_points(session: Session, leads: Sequence[Lead], now: datetime | None = None,
                 timezone: str = "Asia/Ho_Chi_Minh") -> None:
    """Set the leads' rule points (nothing when the business has no rules)."""
    if not leads:
        return
    rules = list_point_rules(session)
    if not any(r.active for r in rules):
        return
    found = points_of(session, [lead.customer_id for lead in leads], now or utcnow(), timezone, rules)
    for lead in leads:
        lead.rule_points, lead.rule_points_detail = round(found[lead.customer_id][0], 2), found[lead.customer_id][1]
    session.flush()


def points_rows(session: Session, rows: Sequence[tuple[int, int]], now: datetime,
                timezone: str = "Asia/Ho_Chi_Minh") -> list[tuple[float, list, int]]:
    """For bulk updates: (lead id, customer id) -> (rule points, detail, lead id); empty without rules."""
    rules = list_point_rules(session)
    if not rows or not any(r.active for r in rules):
        return []
    found = points_of(session, [customer_id for _, customer_id in rows], now, timezone, rules)
    return [(round(found[c][0], 2), found[c][1], lead_id) for lead_id, c in rows]


def points_at(session: Session, customer_ids: Sequence[int], cutoffs: Sequence[datetime],
              timezone: str = "Asia/Ho_Chi_Minh") -> np.ndarray | None:
    """Each customer's rule points as of its cut-off (the start of that day, so nothing later counts);
    None when the business has no active rules. For the training holdout: the rules judged on the same
    deals as the learned model, at the same moments."""
    rules = [r for r in list_point_rules(session) if r.active]
    if not rules:
        return None
    out = np.zeros(len(customer_ids))
    by_day: dict[datetime, list[int]] = {}
    for i, at in enumerate(cutoffs):
        by_day.setdefault(at.replace(hour=0, minute=0, second=0, microsecond=0), []).append(i)
    for day, rows in by_day.items():
        found = points_of(session, [customer_ids[i] for i in rows], day, timezone, rules)
        for i in rows:
            out[i] = found[customer_ids[i]][0]
    return out


def compare(session: Session) -> dict[str, Any]:
    """On the closed deals' leads with both scores: each score's AUC at telling won from lost."""
    from clm.sales.scoring.model import auc

    rows = session.execute(sa.select(Opportunity.status, Lead.score, Lead.rule_points)
                           .join(Lead, Lead.id == Opportunity.lead_id)
                           .where(Opportunity.status.in_(("won", "lost")), Lead.score.is_not(None),
                                  Lead.rule_points.is_not(None))).all()
    y = np.array([status == "won" for status, _, _ in rows])
    result: dict[str, Any] = {"deals": len(rows), "won": int(y.sum()), "auc_learned": None, "auc_rules": None}
    if y.any() and (~y).any():
        result["auc_learned"] = auc(y, np.array([s for _, s, _ in rows], dtype=float))
        result["auc_rules"] = auc(y, np.array([p for _, _, p in rows], dtype=float))
    return result
