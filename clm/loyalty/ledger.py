"""The points ledger: credits as lots, debits that take lots earliest-expiring first, and the time-driven
moves (pending lots becoming available, lots expiring), all under the member's row lock.

Every public function takes a member locked by `lock_member` (PostgreSQL: SELECT ... FOR UPDATE;
SQLite: the caller's transaction began with BEGIN IMMEDIATE through `clm.db.engine.for_writing`), so
two requests against one balance run one after the other and the second sees the first's result.
Every change is an `Entry` whose key is unique: a key already present makes the call a no-op that
returns the first entry. Balances on the member row move in the same transaction as the entries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.db.upsert import insert_for
from clm.loyalty.models import Entry, Lot, LotUse, Member, Program
from clm.loyalty.program import expires_at as expiry_for
from clm.outbox.service import emit

_members = Member.__table__
_lots = Lot.__table__
_uses = LotUse.__table__


class LedgerError(Exception):
    """A request the ledger refuses; `code` is stable, `status` the HTTP answer (409: the state of the
    balance, voucher or reward does not allow it; 422: the input itself is wrong), `field` the input."""

    def __init__(self, message: str, code: str = "invalid", field: str | None = None, status: int = 409,
                 **extra: Any):
        super().__init__(message)
        self.message, self.code, self.field, self.status, self.extra = message, code, field, status, extra


class InsufficientPoints(LedgerError):
    def __init__(self, wanted: int, available: int, field: str | None = "points"):
        super().__init__(f"the member has {available} points available, fewer than the {wanted} asked for",
                         "insufficient_points", field, available=available, wanted=wanted)


def lock_member(session: Session, customer_id: int, now: datetime) -> Member:
    """The member row of `customer_id`, created when missing, locked until the transaction ends."""
    session.execute(insert_for(session, _members).values(
        customer_id=customer_id, available=0, pending=0, debt=0, qualifying=0, earned=0, redeemed=0, expired=0,
        lost=0, created_at=now, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["customer_id"]))
    query = sa.select(Member).where(Member.customer_id == customer_id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalars(query).one()


def find_entry(session: Session, key: str) -> Entry | None:
    return session.scalar(sa.select(Entry).where(Entry.key == key))


@dataclass
class Change:
    """Signed changes to a member's balances made by one entry."""

    available: int = 0
    pending: int = 0
    debt: int = 0
    qualifying: int = 0
    lost: int = 0
    spend: int = 0


def _write(session: Session, member: Member, *, key: str, kind: str, reason: str, source: str,
           source_id: str | None, at: datetime, change: Change, details: dict | None = None,
           announce: bool = True) -> Entry:
    entry = Entry(customer_id=member.customer_id, key=key, kind=kind, reason=reason[:255], source=source,
                  source_id=source_id, available=change.available, pending=change.pending, debt=change.debt,
                  qualifying=change.qualifying, lost=change.lost, spend=change.spend, details=details or {},
                  created_at=at)
    session.add(entry)
    session.flush()
    member.available += change.available
    member.pending += change.pending
    member.debt += change.debt
    member.qualifying += change.qualifying
    member.lost += change.lost
    member.updated_at = at
    if announce and (change.available or change.pending or change.debt):
        emit(session, "loyalty.points_changed", member.customer_id, {
            "entry_id": entry.id, "kind": kind, "change": change.available + change.pending,
            "available": member.available, "pending": member.pending, "debt": member.debt})
    return entry


def _amend(entry: Entry, member: Member, change: Change) -> None:
    """Add to an entry written in this transaction (a debit learns what it took as it takes it)."""
    for name in ("available", "pending", "debt", "lost"):
        delta = getattr(change, name)
        setattr(entry, name, getattr(entry, name) + delta)
        setattr(member, name, getattr(member, name) + delta)


def _use(session: Session, member: Member, entry: Entry, lot: Lot, points: int, of_use: int | None = None) -> None:
    session.add(LotUse(customer_id=member.customer_id, entry_id=entry.id, lot_id=lot.id, points=points,
                       of_use_id=of_use))
    lot.remaining -= points


def _open_lots(session: Session, customer_id: int, *, released: bool | None, now: datetime,
               exclude: int | None = None) -> list[Lot]:
    """Lots with points left, earliest-expiring first (never-expiring last), then oldest."""
    query = sa.select(Lot).where(Lot.customer_id == customer_id, Lot.remaining > 0,
                                 sa.or_(Lot.expires_at.is_(None), Lot.expires_at > now))
    if released is not None:
        query = query.where(Lot.released.is_(released))
    if exclude is not None:
        query = query.where(Lot.id != exclude)
    return list(session.scalars(query.order_by(Lot.expires_at.is_(None), Lot.expires_at, Lot.available_at, Lot.id)))


def _take(session: Session, member: Member, entry: Entry, lots: Iterable[Lot], points: int) -> int:
    """Take up to `points` from `lots` in order; returns what was taken. Amends the entry's changes."""
    left = points
    for lot in lots:
        if left <= 0:
            break
        n = min(lot.remaining, left)
        if n <= 0:
            continue
        _use(session, member, entry, lot, n)
        _amend(entry, member, Change(available=-n) if lot.released else Change(pending=-n))
        left -= n
    return points - left


def credit(session: Session, member: Member, program: Program, *, key: str, points: int, reason: str,
           source: str, source_id: str | None, at: datetime, now: datetime, kind: str = "earn",
           pending: bool = False, qualifying: int = 0, spend: int = 0, details: dict | None = None,
           expires_at: datetime | None = None) -> tuple[Entry, Lot | None, bool]:
    """Add `points` as a new lot earned at `at` (pending through the return window when `pending`).

    Outstanding debt is paid off first from the new lot. Returns (entry, lot, applied); applied is
    False when `key` was seen before (nothing changes and the first entry is returned).
    """
    if points < 0:
        raise LedgerError("a credit cannot be negative", "invalid", "points", 422)
    first = find_entry(session, key)
    if first is not None:
        return first, session.scalar(sa.select(Lot).where(Lot.entry_id == first.id)), False
    settle(session, member, program, now)
    from clm.loyalty.program import available_at

    when = available_at(program, at) if pending else at
    released = when <= now
    entry = _write(session, member, key=key, kind=kind, reason=reason, source=source, source_id=source_id, at=at,
                   change=Change(available=points if released else 0, pending=0 if released else points,
                                 qualifying=qualifying, spend=spend), details=details)
    lot = None
    if points:
        lot = Lot(customer_id=member.customer_id, entry_id=entry.id, points=points, remaining=points,
                  released=released, available_at=when,
                  expires_at=expires_at if expires_at is not None else expiry_for(program, at), created_at=at)
        session.add(lot)
        session.flush()
        member.earned += points
        if member.debt > 0:
            repay = _write(session, member, key=f"{key}:repay", kind="repay", reason="Debt paid off from new points",
                           source="system", source_id=str(entry.id), at=at, change=Change(), announce=False)
            paid = _take(session, member, repay, [lot], member.debt)
            _amend(repay, member, Change(debt=-paid))
    _schedule(session, member)
    settle(session, member, program, now)  # earned long ago: it may be due already
    return entry, lot, True


def debit(session: Session, member: Member, program: Program, *, key: str, points: int, reason: str,
          source: str, source_id: str | None, now: datetime, kind: str = "redeem",
          details: dict | None = None) -> tuple[Entry, bool]:
    """Take `points` from the available lots, earliest-expiring first, recording which lots.

    Raises InsufficientPoints (nothing written) when fewer are available. (entry, applied) as `credit`.
    """
    if points <= 0:
        raise LedgerError("points to take must be a positive whole number", "invalid", "points", 422)
    first = find_entry(session, key)
    if first is not None:
        return first, False
    settle(session, member, program, now)
    if member.available < points:
        raise InsufficientPoints(points, member.available)
    entry = _write(session, member, key=key, kind=kind, reason=reason, source=source, source_id=source_id, at=now,
                   change=Change(), details=details, announce=False)
    taken = _take(session, member, entry, _open_lots(session, member.customer_id, released=True, now=now), points)
    assert taken == points, "the member row and the lots disagree; run `clm loyalty verify`"
    if kind == "redeem":
        member.redeemed += points
    _announce(session, member, entry)
    _schedule(session, member)
    return entry, True


def reverse(session: Session, member: Member, program: Program, *, key: str, points: int, qualifying: int,
            spend: int, lot_id: int | None, reason: str, source: str, source_id: str | None,
            now: datetime, details: dict | None = None) -> tuple[Entry, bool]:
    """Take back `points` credited earlier (a refund): from their own lot first, then from the member's
    other lots (available first); what was already spent becomes debt or a loss, by the program's policy."""
    first = find_entry(session, key)
    if first is not None:
        return first, False
    settle(session, member, program, now)
    entry = _write(session, member, key=key, kind="reverse", reason=reason, source=source, source_id=source_id,
                   at=now, change=Change(qualifying=-qualifying, spend=-spend), details=details, announce=False)
    taken = 0
    if lot_id is not None:
        own = session.get(Lot, lot_id)
        if own is not None and own.customer_id == member.customer_id and (
                own.expires_at is None or own.expires_at > now):
            taken += _take(session, member, entry, [own], points)
    for released in (True, False):
        if taken < points:
            taken += _take(session, member, entry,
                           _open_lots(session, member.customer_id, released=released, now=now, exclude=lot_id),
                           points - taken)
    short = points - taken
    if short:
        _amend(entry, member, Change(debt=short) if program.debt_policy == "debt" else Change(lost=short))
    _announce(session, member, entry)
    _schedule(session, member)
    return entry, True


def restore(session: Session, member: Member, program: Program, *, key: str, of_entry: Entry, points: int | None,
            kind: str, reason: str, source: str, source_id: str | None, now: datetime,
            details: dict | None = None) -> tuple[Entry, int, bool]:
    """Put back onto the very lots they came from (with their original expiry) `points` that `of_entry`
    took (all that is left when None), latest-expiring lots first. Returns (entry, restored, applied)."""
    first = find_entry(session, key)
    if first is not None:
        return first, first.available + first.pending, False
    settle(session, member, program, now)
    uses = session.execute(
        sa.select(LotUse, Lot).join(Lot, Lot.id == LotUse.lot_id)
        .where(LotUse.entry_id == of_entry.id, LotUse.points > 0)
        .order_by(Lot.expires_at.is_(None).desc(), Lot.expires_at.desc(), Lot.id.desc())
    ).all()
    entry = _write(session, member, key=key, kind=kind, reason=reason, source=source, source_id=source_id,
                   at=now, change=Change(), details=details, announce=False)
    left = sum(u.points for u, _ in uses) if points is None else points
    restored = 0
    for use, lot in uses:
        given = int(session.scalar(sa.select(sa.func.coalesce(sa.func.sum(_uses.c.points), 0))
                                   .where(_uses.c.of_use_id == use.id)))
        n = min(use.points + given, left)  # `given` is negative: what earlier restores put back
        if n <= 0:
            continue
        _use(session, member, entry, lot, -n, of_use=use.id)
        _amend(entry, member, Change(available=n) if lot.released else Change(pending=n))
        left -= n
        restored += n
    if of_entry.kind == "redeem":
        member.redeemed -= restored
    _announce(session, member, entry)
    _schedule(session, member)
    settle(session, member, program, now)  # a lot whose expiry passed meanwhile expires again at once
    return entry, restored, True


def adjust(session: Session, member: Member, program: Program, *, key: str, points: int, reason: str,
           staff: str, now: datetime, qualifying: bool = False) -> tuple[Entry, bool]:
    """A staff correction: positive points are a new lot available now; negative ones are taken from the
    available lots (never into debt). `reason` is required."""
    if not reason or not reason.strip():
        raise LedgerError("an adjustment needs a reason", "invalid", "reason", 422)
    if points == 0:
        raise LedgerError("an adjustment must change the balance", "invalid", "points", 422)
    if points > 0:
        entry, _lot, applied = credit(session, member, program, key=key, points=points, reason=reason,
                                      source="staff", source_id=staff, at=now, now=now, kind="adjust",
                                      qualifying=points if qualifying else 0)
        return entry, applied
    return debit(session, member, program, key=key, points=-points, reason=reason, source="staff",
                 source_id=staff, now=now, kind="adjust")


def settle(session: Session, member: Member, program: Program, now: datetime) -> bool:
    """Apply what time has done by `now`: release lots past their return window, expire lots past their
    expiry (only what is left of them). Returns True when anything changed."""
    if member.next_due_at is not None and member.next_due_at > now:
        return False
    changed = False
    due = list(session.scalars(sa.select(Lot).where(
        Lot.customer_id == member.customer_id, Lot.remaining > 0, Lot.released.is_(False), Lot.available_at <= now)
        .order_by(Lot.id)))
    if due:
        moved = sum(lot.remaining for lot in due)
        for lot in due:
            lot.released = True
        _write(session, member, key=f"release:{member.customer_id}:{max(lot.id for lot in due)}", kind="release",
               reason="Points became available", source="system", source_id=None, at=now,
               change=Change(available=moved, pending=-moved), details={"lots": [lot.id for lot in due]},
               announce=False)
        changed = True
    expiring = list(session.scalars(sa.select(Lot).where(
        Lot.customer_id == member.customer_id, Lot.remaining > 0, Lot.expires_at <= now).order_by(Lot.id)))
    if expiring:
        # member.expired only grows, so it makes each expiry run's key distinct
        entry = _write(session, member, key=f"expire:{member.customer_id}:{member.expired}", kind="expire",
                       reason="Points expired", source="system", source_id=None, at=now, change=Change(),
                       announce=False)
        gone = 0
        for lot in expiring:
            n = lot.remaining
            _use(session, member, entry, lot, n)
            _amend(entry, member, Change(available=-n) if lot.released else Change(pending=-n))
            gone += n
        member.expired += gone
        _announce(session, member, entry)
        changed = True
    _schedule(session, member)
    return changed


def _announce(session: Session, member: Member, entry: Entry) -> None:
    session.flush()
    if entry.available or entry.pending or entry.debt:
        emit(session, "loyalty.points_changed", member.customer_id, {
            "entry_id": entry.id, "kind": entry.kind, "change": entry.available + entry.pending,
            "available": member.available, "pending": member.pending, "debt": member.debt})


def _schedule(session: Session, member: Member) -> None:
    """Remember the member's next time-driven change, so sweeps visit only members who have one due."""
    session.flush()
    release = sa.select(sa.func.min(_lots.c.available_at)).where(
        _lots.c.customer_id == member.customer_id, _lots.c.remaining > 0, _lots.c.released.is_(False))
    expiry = sa.select(sa.func.min(_lots.c.expires_at)).where(
        _lots.c.customer_id == member.customer_id, _lots.c.remaining > 0)
    times = [t for t in (session.scalar(release), session.scalar(expiry)) if t is not None]
    member.next_due_at = min(times) if times else None


def due_members(session: Session, now: datetime, limit: int = 1000, after: int = 0) -> list[int]:
    """Members with a lot to release or expire by `now` (what the sweep visits), in id order."""
    return list(session.scalars(sa.select(Member.customer_id).where(
        Member.next_due_at <= now, Member.customer_id > after).order_by(Member.customer_id).limit(limit)))


def history(session: Session, customer_id: int, limit: int = 50, before: int | None = None) -> list[Entry]:
    """The member's entries, newest first (time-driven releases included)."""
    query = sa.select(Entry).where(Entry.customer_id == customer_id)
    if before is not None:
        query = query.where(Entry.id < before)
    return list(session.scalars(query.order_by(Entry.id.desc()).limit(limit)))


def expiring(session: Session, customer_id: int, now: datetime, within_days: int | None = None) -> list[tuple[datetime, int]]:
    """(expiry time, points) of the member's lots with points left that expire (within `within_days`)."""
    from datetime import timedelta

    query = sa.select(Lot.expires_at, sa.func.sum(Lot.remaining)).where(
        Lot.customer_id == customer_id, Lot.remaining > 0, Lot.expires_at.is_not(None), Lot.expires_at > now)
    if within_days is not None:
        query = query.where(Lot.expires_at <= now + timedelta(days=within_days))
    return [(t, int(n)) for t, n in session.execute(query.group_by(Lot.expires_at).order_by(Lot.expires_at))]


def open_lots(session: Session, customer_id: int) -> list[Lot]:
    return list(session.scalars(sa.select(Lot).where(Lot.customer_id == customer_id, Lot.remaining > 0)
                                .order_by(Lot.id)))


def entry_details(entry: Entry) -> dict[str, Any]:
    return {"id": entry.id, "key": entry.key, "kind": entry.kind, "reason": entry.reason, "source": entry.source,
            "source_id": entry.source_id, "change": entry.available + entry.pending, "available": entry.available,
            "pending": entry.pending, "debt": entry.debt, "qualifying": entry.qualifying, "lost": entry.lost,
            "created_at": entry.created_at}
