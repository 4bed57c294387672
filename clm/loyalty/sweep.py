"""The time-driven part of the program, run by the worker (and `clm loyalty sweep`): points past their
return window become available, lots past their expiry lose what is left, tiers are reviewed on their
date, referrals whose first order passed the return window are rewarded.

Members are visited by their `next_due_at` (or review date), a chunk per transaction, each member locked
only for the chunk that settles it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from clm.loyalty import ledger
from clm.loyalty.program import get_program

CHUNK = 500


def sweep(session: Session, now: datetime, on_chunk: Callable[[], None] | None = None, chunk: int = CHUNK) -> int:
    """Bring every member with something due by `now` up to date; returns how many were visited."""
    program = get_program(session)
    if program is None or not program.active:
        return 0
    from clm.loyalty import referrals, tiers

    done = 0
    after = 0
    while ids := ledger.due_members(session, now, chunk, after):
        for customer_id in ids:
            member = ledger.lock_member(session, customer_id, now)
            ledger.settle(session, member, program, now)
        after = ids[-1]
        done += len(ids)
        if on_chunk:
            on_chunk()
    done += tiers.review_due(session, program, now, on_chunk=on_chunk, chunk=chunk)
    done += referrals.reward_due(session, program, now)
    return done
