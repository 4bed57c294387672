"""Lifecycle reports for the dashboard and the API, computed from current stages and stage history.

Only live customers count (merged-away tombstones keep their own history but are the same person as
their winner). Stages come from the rules in force unless a RuleSet is passed.
"""

from __future__ import annotations

from datetime import datetime
from statistics import median

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.models import Customer
from clm.lifecycle.models import StageHistory
from clm.lifecycle.rules import RuleSet, current_rules

_c = Customer.__table__
_h = StageHistory.__table__
_live = sa.and_(_h.c.customer_id == _c.c.id, _c.c.merged_into_id.is_(None))


def stage_names(locale: str = "vi", rules: RuleSet | None = None) -> dict[str, str]:
    """Each configured stage's display name in `locale` (falling back to English, then the key)."""
    return {s.key: s.label(locale) for s in (rules or current_rules()).stages}


def stage_counts(session: Session, rules: RuleSet | None = None) -> dict[str, int]:
    """Live customers by current stage, in stage order; every configured stage is present (zero allowed).

    Customers in a stage the rules no longer name (after a rule file change, before a recompute) and
    customers not yet evaluated are not counted.
    """
    counts = dict.fromkeys((rules or current_rules()).keys, 0)
    for stage, count in session.execute(
        sa.select(_c.c.lifecycle_stage, sa.func.count()).where(_c.c.merged_into_id.is_(None),
                                                                _c.c.lifecycle_stage.in_(list(counts)))
        .group_by(_c.c.lifecycle_stage)
    ):
        counts[stage] = count
    return counts


def funnel(session: Session, since: datetime | None = None, rules: RuleSet | None = None) -> list[dict]:
    """Per consecutive main (funnel) stage: how many customers entered it and how many reached the next.

    A customer who skipped a stage (an imported customer with five orders goes straight to loyalty)
    counts as having passed through it: reaching a later main stage implies the earlier ones. With
    `since`, only customers who entered the stage at or after `since` count. The last stage has no next.

    One pass over the history: per customer, the first time they reached stage i *or any later one*
    (a MIN over a CASE per stage), then one count per stage over those rows.
    """
    main = (rules or current_rules()).funnel_stages
    index = sa.case({stage: i for i, stage in enumerate(main)}, value=_h.c.to_stage)
    tombstones = sa.select(_c.c.id).where(_c.c.merged_into_id.is_not(None))
    per_customer = (
        sa.select(*[sa.func.min(sa.case((index >= i, _h.c.changed_at))).label(f"at{i}") for i in range(len(main))])
        .where(_h.c.to_stage.in_(main), _h.c.customer_id.not_in(tombstones))
        .group_by(_h.c.customer_id)
        .subquery()
    )
    at = [per_customer.c[f"at{i}"] for i in range(len(main))]
    columns = []
    for i in range(len(main)):
        entered = at[i].is_not(None) if since is None else at[i] >= since
        columns.append(sa.func.count(sa.case((entered, 1))))
        if i + 1 < len(main):
            columns.append(sa.func.count(sa.case((sa.and_(entered, at[i + 1].is_not(None)), 1))))
    row = list(session.execute(sa.select(*columns).select_from(per_customer)).one())
    out = []
    for i, stage in enumerate(main):
        entered = row.pop(0) or 0
        nxt = main[i + 1] if i + 1 < len(main) else None
        reached_next = (row.pop(0) or 0) if nxt else None
        out.append({"stage": stage, "next": nxt, "entered": entered, "reached_next": reached_next,
                    "conversion": (reached_next / entered if entered else None) if nxt else None})
    return out


def median_time_in_stage(session: Session, rules: RuleSet | None = None) -> dict[str, float | None]:
    """Median days customers stayed in each stage before moving on (completed stays only), or None."""
    follow = sa.func.lead(_h.c.changed_at).over(partition_by=_h.c.customer_id, order_by=(_h.c.changed_at, _h.c.id))
    stays = (sa.select(_h.c.to_stage, _h.c.changed_at, sa.type_coerce(follow, _h.c.changed_at.type).label("left_at"))
             .select_from(_h.join(_c, _live)).subquery())
    durations: dict[str, list[float]] = {key: [] for key in (rules or current_rules()).keys}
    for stage, entered, left in session.execute(
        sa.select(stays.c.to_stage, stays.c.changed_at, stays.c.left_at).where(stays.c.left_at.is_not(None))
    ):
        if stage in durations:
            durations[stage].append((left - entered).total_seconds() / 86400)
    return {stage: (median(values) if values else None) for stage, values in durations.items()}


def stage_flows(session: Session, since: datetime | None = None) -> list[dict]:
    """Moves between stages (for a flow chart): {"from", "to", "count"}, most frequent first.
    `from` is None for a customer's first stage."""
    query = (sa.select(_h.c.from_stage, _h.c.to_stage, sa.func.count().label("n"))
             .select_from(_h.join(_c, _live)).group_by(_h.c.from_stage, _h.c.to_stage))
    if since is not None:
        query = query.where(_h.c.changed_at >= since)
    rows = session.execute(query).all()
    return [{"from": f, "to": t, "count": n}
            for f, t, n in sorted(rows, key=lambda r: (-r.n, r.from_stage or "", r.to_stage))]
