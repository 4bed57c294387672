"""The service desk's reports over a window of days: volume by channel and by hour of the day, first response
and resolution times (median and 90th percentile), SLA attainment per clock, CSAT, and each agent's load.

Counts are SQL aggregates. Volumes are grouped in SQL by channel and UTC hour, then each hour is moved into
the business's time zone here (exact across daylight saving, where a zone has it). Times are wall-clock
minutes from the ticket's opening; their percentiles are computed from the window's durations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.service.agents import list_agents
from clm.service.models import CHANNELS, METRICS, SlaTimer, Ticket


@dataclass(frozen=True)
class Times:
    count: int
    median: float | None  # minutes
    p90: float | None


@dataclass(frozen=True)
class Attainment:
    metric: str
    met: int
    breached: int

    @property
    def rate(self) -> float | None:
        total = self.met + self.breached
        return self.met / total if total else None


@dataclass(frozen=True)
class Csat:
    answered: int
    satisfied: int  # 4 or 5
    average: float | None
    per_agent: list[tuple[int | None, int, float]]  # (agent, answers, average)

    @property
    def rate(self) -> float | None:
        return self.satisfied / self.answered if self.answered else None


@dataclass(frozen=True)
class Report:
    since: datetime
    until: datetime
    opened: int
    by_channel: dict[str, int]
    by_hour: dict[str, list[int]]  # channel -> 24 counts by local hour
    first_response: Times
    resolution: Times
    first_response_by_channel: dict[str, Times]
    sla: list[Attainment]
    csat: Csat | None
    load: list[tuple[str, str, int, int]]  # (agent, availability, open tickets, capacity)


def _hour_key(session: Session) -> sa.ColumnElement:
    column = Ticket.__table__.c.created_at
    if session.get_bind().dialect.name == "sqlite":
        return sa.func.substr(column, 1, 13)  # "YYYY-MM-DD HH" of the stored UTC text
    return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD HH24")


def _times(values: list[float]) -> Times:
    if not values:
        return Times(0, None, None)
    array = np.asarray(values, dtype=float)
    return Times(len(values), float(np.percentile(array, 50)), float(np.percentile(array, 90)))


def _minutes(pairs) -> list[float]:
    return [max(0.0, (end - start).total_seconds() / 60) for start, end in pairs if start and end]


def report(session: Session, now: datetime, days: int = 30, timezone: str = "Asia/Ho_Chi_Minh") -> Report:
    since = now - timedelta(days=days)
    window = sa.and_(Ticket.created_at >= since, Ticket.created_at < now, Ticket.merged_into_id.is_(None))
    zone = ZoneInfo(timezone)
    by_channel: dict[str, int] = {}
    by_hour: dict[str, list[int]] = {}
    key = _hour_key(session).label("hour")
    for channel, hour, n in session.execute(sa.select(Ticket.channel, key, sa.func.count()).where(window)
                                            .group_by(Ticket.channel, key)):
        local = datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC).astimezone(zone).hour
        by_channel[channel] = by_channel.get(channel, 0) + n
        by_hour.setdefault(channel, [0] * 24)[local] += n
    order = {c: i for i, c in enumerate(CHANNELS)}
    by_channel = dict(sorted(by_channel.items(), key=lambda kv: (-kv[1], order.get(kv[0], 99))))
    first = list(session.execute(sa.select(Ticket.channel, Ticket.created_at, Ticket.first_response_at)
                                 .where(window, Ticket.first_response_at.is_not(None))))
    solved = session.execute(sa.select(Ticket.created_at, Ticket.solved_at).where(window, Ticket.solved_at.is_not(None)))
    per_channel: dict[str, list[float]] = {}
    for channel, start, end in first:
        per_channel.setdefault(channel, []).extend(_minutes([(start, end)]))
    return Report(
        since=since, until=now, opened=sum(by_channel.values()), by_channel=by_channel, by_hour=by_hour,
        first_response=_times(_minutes((s, e) for _, s, e in first)), resolution=_times(_minutes(solved)),
        first_response_by_channel={c: _times(v) for c, v in sorted(per_channel.items())},
        sla=attainment(session, since, now), csat=csat(session, since, now),
        load=[(a.name or a.email, a.availability, a.load, a.capacity) for a in list_agents(session)])


def attainment(session: Session, since: datetime, now: datetime) -> list[Attainment]:
    """Clocks started in the window: met in time against breached (a running clock past its deadline is
    breached already, whether or not the breach job has run)."""
    breached = sa.or_(SlaTimer.state == "breached",
                      sa.and_(SlaTimer.state == "running", SlaTimer.due_at.is_not(None), SlaTimer.due_at < now))
    rows = session.execute(
        sa.select(SlaTimer.metric, sa.func.sum(sa.case((SlaTimer.state == "met", 1), else_=0)),
                  sa.func.sum(sa.case((breached, 1), else_=0)))
        .where(SlaTimer.started_at >= since, SlaTimer.started_at < now).group_by(SlaTimer.metric))
    found = {metric: (int(met or 0), int(late or 0)) for metric, met, late in rows}
    return [Attainment(m, *found.get(m, (0, 0))) for m in METRICS]


def csat(session: Session, since: datetime, now: datetime) -> Csat | None:
    """CSAT answers in the window (None when the desk has no survey table)."""
    try:
        from clm.service.desk_models import Survey
    except ImportError:  # satisfaction surveys are another part of the desk
        return None
    answered = sa.and_(Survey.kind == "csat", Survey.score.is_not(None), Survey.answered_at >= since,
                       Survey.answered_at < now)
    n, happy, avg = session.execute(sa.select(sa.func.count(), sa.func.sum(sa.case((Survey.score >= 4, 1), else_=0)),
                                              sa.func.avg(Survey.score)).where(answered)).one()
    per_agent = [(agent, int(k), float(a)) for agent, k, a in session.execute(
        sa.select(Survey.agent_id, sa.func.count(), sa.func.avg(Survey.score)).where(answered)
        .group_by(Survey.agent_id).order_by(sa.func.count().desc()))]
    return Csat(int(n or 0), int(happy or 0), float(avg) if avg is not None else None, per_agent)
