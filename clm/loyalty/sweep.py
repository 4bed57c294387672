"""The time-driven part of the program, run by the worker (and `clm loyalty sweep`): points past their
return window become available, lots past their expiry lose what is left, tiers are reviewed on their
date, referrals whose first order passed the return window are rewarded.

Members are visited by their `next_due_at` (or review date), a chunk per transaction, each member locked
only for the chunk that settles it. Releases and expiries are set-based (`clm.loyalty.expiry`): a chunk of
members costs a handful of statements, not a dozen per member.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.loyalty import expiry
from clm.loyalty.models import Entry, Lot, Member
from clm.loyalty.program import get_program

CHUNK = 5000
CONNECTIONS = 2  # PostgreSQL: chunks settled on this many connections at once


def sweep(session: Session, now: datetime, on_chunk: Callable[[], None] | None = None, chunk: int = CHUNK,
          connections: int = CONNECTIONS, timed: Callable[[float], None] | None = None) -> int:
    """Bring every member with something due by `now` up to date; returns how many were visited.

    On PostgreSQL, when the caller lets the sweep commit (`on_chunk`), releases and expiries run on `connections` connections
    of their own at once (`settle_parallel`): while one connection's backend writes a chunk, this process
    builds the next chunk's rows for the other. `timed(seconds)` hears how long each chunk's transaction
    held its members locked."""
    program = get_program(session)
    if program is None or not program.active:
        return 0
    from clm.loyalty import referrals, tiers

    done = 0
    after = 0
    session.flush()  # the chunks write around the ORM: pending changes go first
    bind = session.get_bind()
    if on_chunk and connections > 1 and bind.dialect.name == "postgresql" and isinstance(bind, sa.Engine):
        on_chunk()  # what this session wrote so far is committed before other connections lock members
        done += settle_parallel(bind, now, connections, chunk, timed)
        _forget_ledger_objects(session)
    else:
        started = time.perf_counter()
        while members := expiry.lock_due(session, now, chunk, after):
            expiry.settle_chunk(session, members, now)
            _forget_ledger_objects(session)
            after = members[-1].customer_id
            done += len(members)
            if on_chunk:
                on_chunk()
                if timed:
                    timed(time.perf_counter() - started)
                started = time.perf_counter()
    done += tiers.review_due(session, program, now, on_chunk=on_chunk, chunk=chunk)
    done += referrals.reward_due(session, program, now)
    return done


def settle_parallel(engine: sa.Engine, now: datetime, connections: int = CONNECTIONS, chunk: int = CHUNK,
                    timed: Callable[[float], None] | None = None) -> int:
    """Release and expire what is due by `now` on `connections` connections at once, a chunk per transaction
    each (PostgreSQL). Each connection locks its next chunk of due members with FOR UPDATE SKIP LOCKED, so
    two never take the same member: a chunk another connection holds is skipped, and once committed its
    members are no longer due. Returns how many members were settled."""
    from sqlalchemy.orm import sessionmaker

    factory = sessionmaker(bind=engine, expire_on_commit=False)

    def run() -> int:
        done, after = 0, 0
        with factory() as session:
            while True:
                started = time.perf_counter()
                members = expiry.lock_due(session, now, chunk, after)
                if not members:
                    session.rollback()
                    return done
                expiry.settle_chunk(session, members, now)
                session.commit()
                if timed:
                    timed(time.perf_counter() - started)
                after = members[-1].customer_id
                done += len(members)

    with ThreadPoolExecutor(connections) as pool:
        return sum(pool.map(lambda _: run(), range(connections)))


def _forget_ledger_objects(session: Session) -> None:
    """Members, lots and entries the session holds are stale once a chunk has written around the ORM:
    expire them (they were flushed first), so the next read sees the database."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Member | Lot | Entry):
            session.expire(obj)
