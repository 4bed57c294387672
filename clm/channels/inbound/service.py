"""One entry point per provider: parse its payload, then record reports and replies in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from clm.channels.inbound.optouts import OptOut, record_optout
from clm.channels.inbound.replies import Reply
from clm.channels.inbound.reports import Read, Report, apply_read, apply_report


@dataclass
class Parsed:
    """What one webhook delivery carried."""

    reports: list[Report] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    optouts: list[OptOut] = field(default_factory=list)
    ignored: int = 0


@dataclass
class Outcome:
    """What was recorded: the webhook's answer body."""

    updated: int = 0  # messages whose status moved
    unmatched: int = 0  # reports about messages clm does not know
    replies: int = 0  # customers' messages accepted (new ones; the worker files them: clm.service.inbound)
    ignored: int = 0

    def as_dict(self) -> dict[str, int | bool]:
        return {"ok": True, "updated": self.updated, "unmatched": self.unmatched, "replies": self.replies,
                "ignored": self.ignored}


def record(session: Session, parsed: Parsed) -> Outcome:
    """Apply a parsed delivery in the caller's transaction (the caller commits). Reports, reads and opt-outs
    are applied at once; customers' messages are only stored as they arrived (one INSERT, a resend a no-op)
    and become `Message Received` events and desk messages in the worker (clm.service.inbound), so a burst
    of messages is acknowledged fast."""
    from clm.service.inbound import accept_replies  # the desk's inbound queue (service depends on channels)

    outcome = Outcome(ignored=parsed.ignored)
    for report in parsed.reports:
        moved = apply_report(session, report)
        if moved is None:
            outcome.unmatched += 1
        elif moved:
            outcome.updated += 1
    outcome.replies = accept_replies(session, parsed.replies)
    for read in parsed.reads:
        outcome.updated += apply_read(session, read)
    for optout in parsed.optouts:
        changed = record_optout(session, optout)
        if changed is None:
            outcome.unmatched += 1
        elif changed:
            outcome.updated += 1
    return outcome


def from_millis(value) -> datetime | None:
    """Epoch milliseconds (a number or a string, as Zalo and Meta send them) as an aware UTC time."""
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


class Recorder:
    """Records the deliveries that arrived together (the webhooks' group commit, clm.db.group_commit): one
    transaction and one COMMIT for the group, each delivery's outcome as `record` gives it. If the group's
    transaction fails (a deadlock with another server process's group, a row the database refuses), each
    delivery is recorded again alone, so only a delivery that fails alone answers an error."""

    def __init__(self, session_factory):
        self.session_factory = session_factory

    def __call__(self, group: list[Parsed]) -> list:
        try:
            return self._together(group)
        except Exception:
            if len(group) == 1:
                raise
        outcomes: list = []
        for parsed in group:
            try:
                outcomes += self._together([parsed])
            except Exception as exc:  # noqa: BLE001 - this delivery's own failure, answered to its request
                outcomes.append(exc)
        return outcomes

    def _together(self, group: list[Parsed]) -> list[Outcome]:
        with self.session_factory() as session:
            outcomes = [record(session, parsed) for parsed in group]
            session.commit()
            return outcomes

