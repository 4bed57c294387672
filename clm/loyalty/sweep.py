"""The time-driven part of the program, run by the worker (and `clm loyalty sweep`): points past their
return window become available, lots past their expiry lose what is left, tiers are reviewed on their
date, referrals whose first order passed the return window are rewarded.

Members are visited by their `next_due_at` (or review date), a chunk per transaction, each member locked
only for the chunk that settles it. Releases and expiries are set-based (`clm.loyalty.expiry`): a chunk of
members costs a handful of statements, not a dozen per member.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from clm.loyalty import expiry
from clm.loyalty.models import Entry, Lot, Member
from clm.loyalty.program import get_program

CHUNK = 5000


def sweep(session: Session, now: datetime, on_chunk: Callable[[], None] | None = None, chunk: int = CHUNK) -> int:
    """Bring every member with something due by `now` up to date; returns how many were visited."""
    program = get_program(session)
    if program is None or not program.active:
        return 0
    from clm.loyalty import referrals, tiers

    done = 0
    after = 0
    session.flush()  # the chunks write around the ORM: pending changes go first
    while members := expiry.lock_due(session, now, chunk, after):
        expiry.settle_chunk(session, members, now)
        _forget_ledger_objects(session)
        after = members[-1].customer_id
        done += len(members)
        if on_chunk:
            on_chunk()
    done += tiers.review_due(session, program, now, on_chunk=on_chunk, chunk=chunk)
    done += referrals.reward_due(session, program, now)
    return done


def _forget_ledger_objects(session: Session) -> None:
    """Members, lots and entries the session holds are stale once a chunk has written around the ORM:
    expire them (they were flushed first), so the next read sees the database."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Member | Lot | Entry):
            session.expire(obj)
