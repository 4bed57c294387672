"""Lifecycle operations: a customer's stage history, the sweep, and recomputing everything."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.models import Customer
from clm.lib.errors import NotFound
from clm.lifecycle import stats
from clm.lifecycle.evaluate import evaluate_all
from clm.lifecycle.models import StageHistory
from clm.lifecycle.rules import RuleSet, current_rules


@dataclass(frozen=True)
class StageChange:
    from_stage: str | None
    to_stage: str
    rule: str
    changed_at: datetime


def stage_history(session: Session, customer_id: int) -> list[StageChange]:
    """The customer's stage moves, oldest first (a merged customer's own moves stay on its tombstone)."""
    if session.get(Customer, customer_id) is None:
        raise NotFound("customer", customer_id)
    rows = session.execute(
        sa.select(StageHistory.from_stage, StageHistory.to_stage, StageHistory.rule, StageHistory.changed_at)
        .where(StageHistory.customer_id == customer_id).order_by(StageHistory.changed_at, StageHistory.id)
    )
    return [StageChange(*row) for row in rows]


def sweep(session: Session, now: datetime, rules: RuleSet | None = None,
          on_chunk: Callable[[int, int], None] | None = None) -> int:
    """Move everyone whom time alone moves (retention -> at risk -> churned) as of `now`; returns moves.

    The same rules as for arriving facts, evaluated for every live customer in bulk SQL by id range.
    """
    return evaluate_all(session, rules or current_rules(), now, on_chunk=on_chunk)


def recompute(session: Session, now: datetime, rules: RuleSet | None = None, chunk: int = 20_000,
              on_chunk: Callable[[str, int, int], None] | None = None) -> tuple[int, int]:
    """Rebuild every customer's stats from the facts, then their stage (after a rule file change).

    Returns (stats rows, stage moves). `on_chunk(phase, done, total)` runs after each id range.
    """
    table = Customer.__table__
    low, high = session.execute(sa.select(sa.func.min(table.c.id), sa.func.max(table.c.id))).one()
    rows = 0
    if low is not None:
        for start in range(low, high + 1, chunk):
            end = min(start + chunk - 1, high)
            rows += stats.rebuild_range(session, start, end)
            if on_chunk:
                on_chunk("stats", end - low + 1, high - low + 1)
        merged = sa.select(table.c.id).where(table.c.merged_into_id.is_not(None))
        stats.forget(session, list(session.scalars(merged)))
    moves = evaluate_all(session, rules or current_rules(), now,
                         on_chunk=(lambda done, total: on_chunk("stages", done, total)) if on_chunk else None)
    return rows, moves
