"""Invariants over random purchase histories: the stage reached fact by fact is the stage the rules
give from scratch, and re-evaluating changes nothing."""

from __future__ import annotations

import itertools

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clm.customers.models import Customer
from clm.lifecycle.evaluate import evaluate
from tests.lifecycle.life import Life, day

_users = itertools.count(1)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(gaps=st.lists(st.integers(0, 120), min_size=1, max_size=7), review=st.booleans(),
       wait=st.integers(0, 400))
def test_the_stage_reached_fact_by_fact_is_the_stage_from_scratch(db, gaps, review, wait):
    life = Life(db)
    user = f"h-{next(_users)}"
    life.identify(user, 0)
    at = 0
    for gap in gaps:
        at += gap
        life.order(user, at)
        life.react(at)
        life.sweep(at + gap / 2)
    if review:
        life.track(user, "Review Submitted", at)
        life.react(at)
    life.sweep(at + wait)
    reached = life.stage(user)
    assert life.sweep(at + wait) == 0  # nothing new, nothing moves
    cid = life.id(user)
    db.execute(sa.update(Customer).where(Customer.id == cid).values(lifecycle_stage=None))
    evaluate(db, life.rules, day(at + wait), [cid])
    assert life.stage(user) == reached
    changes = life.history(user)
    assert all(a.changed_at <= b.changed_at for a, b in itertools.pairwise(changes))
