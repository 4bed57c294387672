"""Routing: who gets a ticket, and why.

Rules in order, the first that finds someone wins:

1. follow-up: the agent of the customer's latest other ticket active within `follow_up_days`;
2. owner: the customer's owner (a staff user who is an agent);
3. team: the first routing rule matching channel, language, tag, tier or segment sets the ticket's team
   (a ticket's team limits step 4 to its members);
4. least load: the available agent with the fewest open tickets; ties go in turn (least recently assigned).

"Available" always means online and under capacity (and not excluded, e.g. the agent a re-offer moves
away from). Every assignment writes its reason on the ticket and in the audit ("follow-up: Lan handled
this customer 2 days ago, online, 3 of 8").

Concurrency: every routing decision holds the routing lock (the `service_settings` row "routing",
locked FOR UPDATE; SQLite's writers take turns anyway) from reading loads until commit. Decisions
therefore see each other's assignments: no agent is given more than their capacity and no ticket is
assigned twice. Paths that lock a ticket and may route take the routing lock first, so locks are always
taken in the same order. The queue is drained with SKIP LOCKED, so a ticket someone is editing is left
for the next drain instead of waited for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.customers.models import Customer
from clm.db.upsert import insert_for
from clm.jobs.queue import enqueue
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound
from clm.outbox.service import emit
from clm.service import audit
from clm.service.agents import loads as load_counts
from clm.service.models import (
    CHANNELS,
    MAX_ID,
    OPEN_STATUSES,
    Agent,
    RoutingRule,
    Setting,
    Team,
    TeamMember,
    Ticket,
)

REOFFER_KIND = "service.reoffer"
DRAIN_SCAN = 500  # queued tickets looked at per drain; the periodic drain picks up the rest


class RoutingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    follow_up_days: int = Field(7, ge=0, le=365, description="0 turns follow-up routing off.")
    owner_first: bool = Field(True, description="Route to the customer's owner when available.")
    vip_first: bool = Field(False, description="Queued VIP tickets are assigned before others.")
    vip_tiers: list[str] = Field(default_factory=list, max_length=20, description="Loyalty tiers that are VIPs.")
    vip_min_clv: int | None = Field(None, ge=0, description="Predicted 12-month CLV from which a customer is a VIP.")
    reoffer_minutes: int = Field(0, ge=0, le=7 * 24 * 60,
                                 description="Offer a ticket to another agent after this long without a reply "
                                             "from its agent (0: never).")


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    team_id: int = Field(ge=1, le=MAX_ID)
    position: int = Field(0, ge=0, le=10_000)
    channel: str | None = Field(None, pattern="^(" + "|".join(CHANNELS) + ")$")
    language: str | None = Field(None, min_length=2, max_length=8)
    tag: str | None = Field(None, min_length=1, max_length=64)
    tier: str | None = Field(None, min_length=1, max_length=32)
    segment_id: int | None = Field(None, ge=1, le=MAX_ID)
    active: bool = True


def lock_routing(session: Session) -> Setting:
    """Take the routing lock (held until the transaction ends); returns the settings row."""
    table = Setting.__table__
    session.execute(insert_for(session, table).values(name="routing", value={}, updated_at=utcnow())
                    .on_conflict_do_nothing(index_elements=["name"]))
    return session.scalars(sa.select(Setting).where(Setting.name == "routing").with_for_update()
                           .execution_options(populate_existing=True)).one()


def routing_settings(session: Session) -> RoutingSettings:
    from clm.service.snapshot import cached

    def load() -> RoutingSettings:
        row = session.get(Setting, "routing")
        return RoutingSettings.model_validate(row.value if row and row.value else {})

    return cached(session, "routing_settings", load)


def save_routing_settings(session: Session, data: RoutingSettings) -> RoutingSettings:
    row = lock_routing(session)
    row.value, row.updated_at = data.model_dump(), utcnow()
    session.flush()
    return data


def save_rule(session: Session, data: RuleIn, rule_id: int | None = None) -> RoutingRule:
    if session.get(Team, data.team_id) is None:
        raise FieldError("team_id", f"there is no team {data.team_id}", "not_found")
    if not any((data.channel, data.language, data.tag, data.tier, data.segment_id)):
        raise FieldError(None, "a rule needs at least one condition: channel, language, tag, tier or segment_id")
    if data.segment_id is not None:
        from clm.segments.models import Segment

        if session.get(Segment, data.segment_id) is None:
            raise FieldError("segment_id", f"there is no segment {data.segment_id}", "not_found")
    if rule_id is None:
        rule = RoutingRule(created_at=utcnow())
        session.add(rule)
    else:
        rule = session.get(RoutingRule, rule_id)
        if rule is None:
            raise NotFound("routing rule", rule_id)
    for key, value in data.model_dump().items():
        setattr(rule, key, value.lower() if key == "language" and value else value)
    session.flush()
    return rule


def list_rules(session: Session) -> list[RoutingRule]:
    return list(session.scalars(sa.select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id)))


def delete_rule(session: Session, rule_id: int) -> None:
    rule = session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound("routing rule", rule_id)
    session.delete(rule)
    session.flush()


# --- the decision --------------------------------------------------------------------------------------


@dataclass
class Pool:
    """What one routing transaction knows about agents: loads are updated as it assigns."""

    agents: dict[int, Agent]
    names: dict[int, str]
    load: dict[int, int]
    teams: dict[int, set[int]]
    settings: RoutingSettings
    exclude: set[int] = field(default_factory=set)

    @classmethod
    def load_all(cls, session: Session) -> Pool:
        rows = session.execute(sa.select(Agent, User.name, User.email).join(User, User.id == Agent.user_id)
                               .where(User.active.is_(True)))
        agents, names = {}, {}
        for agent, name, email in rows:
            agents[agent.user_id], names[agent.user_id] = agent, name or email
        teams: dict[int, set[int]] = {}
        for team_id, user_id in session.execute(sa.select(TeamMember.team_id, TeamMember.user_id)):
            teams.setdefault(team_id, set()).add(user_id)
        return cls(agents, names, load_counts(session, list(agents)) if agents else {}, teams, routing_settings(session))

    def available(self, user_id: int | None) -> bool:
        agent = self.agents.get(user_id) if user_id is not None else None
        return (agent is not None and agent.availability == "online" and user_id not in self.exclude
                and self.load.get(user_id, 0) < agent.capacity)

    def state(self, user_id: int) -> str:
        agent = self.agents[user_id]
        return f"{agent.availability}, {self.load.get(user_id, 0)} of {agent.capacity}"

    def has_room(self) -> bool:
        return any(self.available(uid) for uid in self.agents)


@dataclass(frozen=True)
class Choice:
    user_id: int | None
    reason: str
    team_id: int | None


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} days"


class Known(Protocol):
    """What a batch read beforehand for many tickets at once (clm.service.filing), so that `choose` asks the
    database nothing per ticket for the follow-up and owner rules."""

    def follow_up(self, ticket, since: datetime) -> tuple[int, datetime] | None:
        """The assignee and activity time of the customer's latest other ticket active since `since`."""

    def owner(self, customer_id: int) -> int | None:
        """The customer's owner."""


def _follow_up(session: Session, ticket: Ticket, pool: Pool, now: datetime, known: Known | None = None
               ) -> Choice | None:
    days = pool.settings.follow_up_days
    if days <= 0:
        return None
    if known is not None:
        row = known.follow_up(ticket, now - timedelta(days=days))
    else:
        active = sa.func.coalesce(Ticket.last_agent_reply_at, Ticket.last_customer_message_at, Ticket.created_at)
        row = session.execute(
            sa.select(Ticket.assignee_id, active).where(
                Ticket.customer_id == ticket.customer_id, Ticket.id != ticket.id, Ticket.assignee_id.is_not(None),
                active >= now - timedelta(days=days))
            .order_by(active.desc(), Ticket.id.desc()).limit(1)).first()
    if row is None or not pool.available(row[0]):
        return None
    user_id, at = row
    return Choice(user_id, f"follow-up: {pool.names[user_id]} handled this customer {_ago(now - at)} ago, "
                           f"{pool.state(user_id)}", ticket.team_id)


def _owner(session: Session, ticket: Ticket, pool: Pool, known: Known | None = None) -> Choice | None:
    if not pool.settings.owner_first:
        return None
    owner = (known.owner(ticket.customer_id) if known is not None
             else session.scalar(sa.select(Customer.owner_id).where(Customer.id == ticket.customer_id)))
    if owner is None or not pool.available(owner):
        return None
    return Choice(owner, f"owner: {pool.names[owner]} owns this customer, {pool.state(owner)}", ticket.team_id)


def customer_tier(session: Session, customer_id: int) -> str | None:
    from clm.loyalty.models import Member

    return session.scalar(sa.select(Member.tier).where(Member.customer_id == customer_id))


def _in_segment(session: Session, customer_id: int, segment_id: int) -> bool:
    from clm.segments.models import SegmentMember

    return session.scalar(sa.select(SegmentMember.id).where(
        SegmentMember.segment_id == segment_id, SegmentMember.customer_id == customer_id,
        SegmentMember.exited_at.is_(None)).limit(1)) is not None


def matching_rule(session: Session, ticket: Ticket) -> RoutingRule | None:
    """The first active rule (by position) whose every condition the ticket meets."""
    from clm.service.snapshot import cached

    tier: list[str | None] = []
    rules = cached(session, "routing_rules", lambda: list(session.scalars(
        sa.select(RoutingRule).where(RoutingRule.active.is_(True)).order_by(RoutingRule.position, RoutingRule.id))))
    for rule in rules:
        if rule.channel and rule.channel != ticket.channel:
            continue
        if rule.language and rule.language != (ticket.language or "").lower():
            continue
        if rule.tag and rule.tag not in (ticket.tags or []):
            continue
        if rule.tier:
            if not tier:
                tier.append(customer_tier(session, ticket.customer_id))
            if tier[0] != rule.tier:
                continue
        if rule.segment_id and not _in_segment(session, ticket.customer_id, rule.segment_id):
            continue
        return rule
    return None


def _least_load(ticket: Ticket, team_id: int | None, team_name: str | None, pool: Pool) -> Choice | None:
    candidates = pool.teams.get(team_id, set()) if team_id is not None else set(pool.agents)
    ready = [uid for uid in candidates if pool.available(uid)]
    if not ready:
        return None
    epoch = datetime.min.replace(tzinfo=UTC)

    def key(uid: int):
        return (pool.load.get(uid, 0), pool.agents[uid].last_assigned_at or epoch, uid)

    best = min(ready, key=key)
    tied = sum(1 for uid in ready if pool.load.get(uid, 0) == pool.load.get(best, 0))
    where = f" of team {team_name}" if team_name else ""
    turn = f", in turn among {tied} tied" if tied > 1 else ""
    return Choice(best, f"least load: {pool.names[best]} had the fewest open tickets among {len(ready)} available"
                        f"{where} ({pool.state(best)}{turn})", team_id)


def choose(session: Session, ticket: Ticket, pool: Pool, now: datetime, known: Known | None = None) -> Choice:
    """The agent the rules give the ticket (user_id None: nobody available, it waits in the queue).
    `known`: the follow-up and owner facts a batch read beforehand."""
    for rule_choice in (_follow_up(session, ticket, pool, now, known), _owner(session, ticket, pool, known)):
        if rule_choice is not None:
            return rule_choice
    team_id, team_name = ticket.team_id, None
    rule = matching_rule(session, ticket)
    if rule is not None:
        team_id = rule.team_id
    if team_id is not None:
        from clm.service.snapshot import cached

        team_name = cached(session, f"team_name:{team_id}",
                           lambda: session.scalar(sa.select(Team.name).where(Team.id == team_id)))
    picked = _least_load(ticket, team_id, team_name, pool)
    if picked is not None:
        if rule is not None:
            picked = Choice(picked.user_id, f"team rule {rule.id} ({_conditions(rule)}) -> {picked.reason}", team_id)
        return picked
    where = f" in team {team_name}" if team_name else ""
    return Choice(None, f"queued: no agent{where} is online with room", team_id)


def _conditions(rule: RoutingRule) -> str:
    parts = [f"{k} {v}" for k, v in (("channel", rule.channel), ("language", rule.language), ("tag", rule.tag),
                                     ("tier", rule.tier), ("segment", rule.segment_id)) if v]
    return ", ".join(parts)


def assign(session: Session, ticket: Ticket, user_id: int | None, reason: str, now: datetime, *,
           actor: str = "routing", by: int | None = None, pool: Pool | None = None) -> None:
    """Give the ticket to `user_id` (None: back to the queue), with the reason in the audit."""
    old = ticket.assignee_id
    if old == user_id:
        return
    ticket.assignee_id, ticket.assignment_reason = user_id, reason[:500]
    ticket.assigned_at = now if user_id is not None else None
    ticket.updated_at = now
    audit.record(session, ticket, "assignee_id", old, user_id, at=now, user_id=by, actor=actor, reason=reason)
    if pool is not None:
        if old is not None and ticket.status in OPEN_STATUSES:
            pool.load[old] = max(pool.load.get(old, 0) - 1, 0)
        if user_id is not None:
            pool.load[user_id] = pool.load.get(user_id, 0) + 1
    if user_id is not None:
        agent = session.get(Agent, user_id)
        if agent is not None:
            agent.last_assigned_at = now
        settings = pool.settings if pool is not None else routing_settings(session)
        if settings.reoffer_minutes:
            at = now.isoformat()
            enqueue(session, REOFFER_KIND, {"ticket_id": ticket.id, "assigned_at": at},
                    run_at=now + timedelta(minutes=settings.reoffer_minutes),
                    unique_key=f"{REOFFER_KIND}:{ticket.id}:{at}", max_attempts=5)
        emit(session, "service.ticket_assigned", ticket.customer_id,
             {"ticket_id": ticket.id, "number": ticket.number, "assignee_id": user_id, "reason": reason[:500]})
    session.flush()


def route(session: Session, ticket_id: int, now: datetime | None = None, *, exclude: set[int] | None = None,
          reassign: bool = False, prefix: str = "", pool: Pool | None = None) -> Choice | None:
    """Route one ticket under the routing lock. An assigned ticket is left alone unless `reassign`;
    a closed, solved or merged one always is. Returns the choice made (None when nothing was decided).

    `pool`: a batch's pool (clm.service.inbound), whose caller holds the routing lock and whose loads are
    kept exact as it assigns; without one, the lock is taken and the loads are read now."""
    now = now or utcnow()
    if pool is None:
        lock_routing(session)
        ticket = session.get(Ticket, ticket_id, with_for_update=True, populate_existing=True)
    else:  # a batch routes tickets it opened or has locked already
        ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("ticket", ticket_id)
    if ticket.status not in OPEN_STATUSES or ticket.merged_into_id is not None:
        return None
    if ticket.assignee_id is not None and not reassign:
        return None
    pool = pool or Pool.load_all(session)
    pool.exclude = set(exclude or ())
    try:
        choice = choose(session, ticket, pool, now)
    finally:
        pool.exclude = set()
    _apply(session, ticket, choice, pool, now, prefix)
    return choice


def _apply(session: Session, ticket: Ticket, choice: Choice, pool: Pool, now: datetime, prefix: str = "") -> None:
    if choice.team_id != ticket.team_id:
        audit.record(session, ticket, "team_id", ticket.team_id, choice.team_id, at=now, actor="routing",
                     reason=choice.reason)
        ticket.team_id = choice.team_id
    if choice.user_id is not None:
        assign(session, ticket, choice.user_id, prefix + choice.reason, now, pool=pool)
    elif ticket.assignee_id is None:
        ticket.assignment_reason = (prefix + choice.reason)[:500]
        session.flush()


def queue_order(vip_first: bool):
    order = [Ticket.priority_rank.desc(), Ticket.created_at, Ticket.id]
    return [Ticket.vip.desc(), *order] if vip_first else order


def drain(session: Session, now: datetime | None = None, limit: int = DRAIN_SCAN) -> int:
    """Assign queued tickets while agents have room: VIPs first when set, then by priority, oldest first.
    Returns how many were assigned."""
    now = now or utcnow()
    lock_routing(session)
    pool = Pool.load_all(session)
    if not pool.has_room():
        return 0
    query = (sa.select(Ticket).where(Ticket.assignee_id.is_(None), Ticket.status.in_(OPEN_STATUSES),
                                     Ticket.merged_into_id.is_(None))
             .order_by(*queue_order(pool.settings.vip_first)).limit(limit)
             .with_for_update(skip_locked=True).execution_options(populate_existing=True))
    assigned = 0
    for ticket in session.scalars(query).all():
        choice = choose(session, ticket, pool, now)
        if choice.user_id is None:
            continue
        _apply(session, ticket, choice, pool, now, "from the queue: ")
        assigned += 1
        if not pool.has_room():
            break
    return assigned


def reoffer(session: Session, ticket_id: int, assigned_at: str, now: datetime) -> bool:
    """The re-offer job: a ticket whose agent has not replied since it was assigned goes to another agent.
    Nothing happens when it was answered, reassigned, solved, or when no one else is available."""
    lock_routing(session)
    ticket = session.get(Ticket, ticket_id, with_for_update=True, populate_existing=True)
    if (ticket is None or ticket.assignee_id is None or ticket.status not in OPEN_STATUSES
            or ticket.assigned_at is None or ticket.assigned_at.isoformat() != assigned_at):
        return False
    if ticket.last_agent_reply_at is not None and ticket.last_agent_reply_at >= ticket.assigned_at:
        return False
    minutes = int((now - ticket.assigned_at).total_seconds() // 60)
    previous = ticket.assignee_id
    pool = Pool.load_all(session)
    name = pool.names.get(previous, str(previous))
    pool.exclude = {previous}
    choice = choose(session, ticket, pool, now)
    if choice.user_id is None:
        audit.record(session, ticket, "reoffer", previous, previous, at=now, actor="routing",
                     reason=f"re-offer: {name} has not replied in {minutes} min, but no other agent is available")
        session.flush()
        return False
    _apply(session, ticket, choice, pool, now, f"re-offered after {minutes} min without a reply from {name}; ")
    return True
