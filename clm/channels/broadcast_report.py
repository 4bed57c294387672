"""A broadcast's report: what happened to its messages (from each message's history) and the orders its
recipients placed within the attribution window after their message went out."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.channels.models import ACCEPTED, SENDING, WAITING, Broadcast, Message, MessageEvent
from clm.lib.clock import as_utc

# What a message went through, from its history: a status counts every message that reached it or a
# status only reachable after it (an email has no delivery report, but an opened email was delivered).
FUNNEL = {
    "sent": ACCEPTED,
    "delivered": ("delivered", "opened", "clicked", "replied"),
    "opened": ("opened", "clicked"),
    "clicked": ("clicked",),
    "replied": ("replied",),
    "unsubscribed": ("unsubscribed",),
}


@dataclass
class Report:
    recipients: int
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    replied: int = 0
    unsubscribed: int = 0
    failed: int = 0
    suppressed: int = 0
    waiting: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    orders: int = 0
    buyers: int = 0
    revenue: dict[str, int] = field(default_factory=dict)  # currency -> minor units, net of refunds
    attribution_days: int = 7
    window_ends: datetime | None = None  # when the last recipient's window closes
    daily: list[tuple[str, int, int, int]] = field(default_factory=list)  # (day, sent, opened, clicked)

    def rate(self, part: int, whole: int | None = None) -> float | None:
        whole = self.sent if whole is None else whole
        return part / whole if whole else None


def report(session: Session, broadcast: Broadcast, *, timezone: str = "Asia/Ho_Chi_Minh") -> Report:
    """The broadcast's figures (see the module docstring)."""
    broadcast_id = broadcast.id
    by_status = {s: n for s, n in session.execute(
        sa.select(Message.status, sa.func.count()).where(Message.broadcast_id == broadcast_id)
        .group_by(Message.status))}
    result = Report(recipients=sum(by_status.values()), by_status=by_status,
                    attribution_days=broadcast.attribution_days)
    reached = {s: n for s, n in session.execute(
        sa.select(MessageEvent.status, sa.func.count(sa.distinct(MessageEvent.message_id)))
        .join(Message, Message.id == MessageEvent.message_id)
        .where(Message.broadcast_id == broadcast_id, MessageEvent.status.in_(ACCEPTED))
        .group_by(MessageEvent.status))}
    for name, statuses in FUNNEL.items():
        setattr(result, name, _distinct_reaching(session, broadcast_id, statuses) if len(statuses) > 1
                else reached.get(statuses[0], 0))
    result.failed = by_status.get("failed", 0) + by_status.get("bounced", 0)
    result.suppressed = by_status.get("suppressed", 0)
    result.waiting = sum(by_status.get(s, 0) for s in (*WAITING, SENDING))
    _attribution(session, broadcast, result)
    result.daily = _daily(session, broadcast_id, timezone)
    return result


def _distinct_reaching(session: Session, broadcast_id: int, statuses: tuple[str, ...]) -> int:
    return session.scalar(
        sa.select(sa.func.count(sa.distinct(MessageEvent.message_id)))
        .join(Message, Message.id == MessageEvent.message_id)
        .where(Message.broadcast_id == broadcast_id, MessageEvent.status.in_(statuses))) or 0


def _attribution(session: Session, broadcast: Broadcast, result: Report) -> None:
    """Orders placed by a recipient after their message was handed to the provider and within the
    window. Each order counts once; revenue is net of refunds, per currency."""
    from clm.commerce.models import Order

    window = timedelta(days=broadcast.attribution_days)
    bounds = session.execute(sa.select(sa.func.min(Message.sent_at), sa.func.max(Message.sent_at)).where(
        Message.broadcast_id == broadcast.id, Message.sent_at.is_not(None), Message.status.in_(ACCEPTED))).one()
    if bounds[0] is None:
        return
    result.window_ends = as_utc(bounds[1]) + window
    rows = session.execute(
        sa.select(Order.id, Order.customer_id, Order.currency, Order.total, Order.refunded, Order.placed_at,
                  Message.sent_at)
        .join(Message, Message.customer_id == Order.customer_id)
        .where(Message.broadcast_id == broadcast.id, Message.sent_at.is_not(None), Message.status.in_(ACCEPTED),
               Order.placed_at >= Message.sent_at, Order.placed_at < result.window_ends))
    seen: set[int] = set()
    buyers: set[int] = set()
    revenue: dict[str, int] = defaultdict(int)
    for order_id, customer_id, currency, total, refunded, placed_at, sent_at in rows:
        if order_id in seen or as_utc(placed_at) >= as_utc(sent_at) + window:
            continue
        seen.add(order_id)
        buyers.add(customer_id)
        revenue[currency] += int(total or 0) - int(refunded or 0)
    result.orders, result.buyers, result.revenue = len(seen), len(buyers), dict(revenue)


def _daily(session: Session, broadcast_id: int, timezone: str) -> list[tuple[str, int, int, int]]:
    """Per day (business time zone) in the broadcast's history: messages sent, first opens, first clicks."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(timezone)
    firsts = session.execute(
        sa.select(MessageEvent.message_id, MessageEvent.status, sa.func.min(MessageEvent.at))
        .join(Message, Message.id == MessageEvent.message_id)
        .where(Message.broadcast_id == broadcast_id, MessageEvent.status.in_(("sent", "delivered", "opened",
                                                                              "clicked")))
        .group_by(MessageEvent.message_id, MessageEvent.status))
    per_message: dict[int, dict[str, datetime]] = defaultdict(dict)
    for message_id, status, at in firsts:
        per_message[message_id][status] = as_utc(at)
    days: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for statuses in per_message.values():
        sent = statuses.get("sent") or statuses.get("delivered")
        opened = statuses.get("opened") or statuses.get("clicked")
        for i, at in enumerate((sent, opened, statuses.get("clicked"))):
            if at is not None:
                days[at.astimezone(tz).date().isoformat()][i] += 1
    return [(day, *counts) for day, counts in sorted(days.items())]


def reasons(session: Session, broadcast_id: int, limit: int = 8) -> list[tuple[str, str, int]]:
    """Why messages of the broadcast were not sent (or not yet): (status, reason, messages), commonest first."""
    rows = session.execute(
        sa.select(Message.status, Message.status_reason, sa.func.count())
        .where(Message.broadcast_id == broadcast_id, Message.status.in_(("failed", "bounced", "suppressed", "deferred")))
        .group_by(Message.status, Message.status_reason).order_by(sa.func.count().desc()).limit(limit))
    return [(status, reason or "", n) for status, reason, n in rows]
