"""Agents and teams: which staff users answer customers, how many open tickets each may hold at once,
and whether they are online, busy or offline. An agent's load is their open (unsolved) tickets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound
from clm.service.models import AVAILABILITY, MAX_ID, OPEN_STATUSES, Agent, Team, TeamMember, Ticket

Availability = Literal[AVAILABILITY]  # type: ignore[valid-type]
MAX_CAPACITY = 1000


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    availability: Availability | None = None
    capacity: int | None = Field(None, ge=0, le=MAX_CAPACITY)
    languages: list[str] | None = Field(None, max_length=10)


class TeamIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    members: list[int] = Field(default_factory=list, max_length=500)


@dataclass(frozen=True)
class AgentView:
    user_id: int
    name: str
    email: str
    availability: str
    capacity: int
    load: int
    languages: list[str]
    teams: list[int]
    last_assigned_at: datetime | None


def loads(session: Session, user_ids: list[int] | None = None) -> dict[int, int]:
    """Open tickets per assignee."""
    query = (sa.select(Ticket.assignee_id, sa.func.count()).where(Ticket.assignee_id.is_not(None),
                                                                  Ticket.status.in_(OPEN_STATUSES))
             .group_by(Ticket.assignee_id))
    if user_ids is not None:
        query = query.where(Ticket.assignee_id.in_(user_ids))
    return {uid: n for uid, n in session.execute(query)}


def _user(session: Session, user_id: int, field: str = "user_id") -> User:
    user = session.get(User, user_id)
    if user is None:
        raise FieldError(field, f"no staff user has id {user_id}", "not_found")
    if not user.active:
        raise FieldError(field, f"staff user {user_id} is deactivated")
    return user


def save_agent(session: Session, user_id: int, data: AgentIn, now: datetime | None = None) -> Agent:
    """Make the staff user an agent (offline, capacity 8 unless given) or change their settings.

    Becoming available or gaining capacity drains the unassigned queue (clm.service.routing)."""
    from clm.service.routing import drain, lock_routing

    now = now or utcnow()
    _user(session, user_id)
    lock_routing(session)  # capacity and availability are what routing decisions read
    agent = session.get(Agent, user_id, with_for_update=True, populate_existing=True)
    if agent is None:
        agent = Agent(user_id=user_id, availability="offline", capacity=8, languages=[], created_at=now,
                      availability_changed_at=now)
        session.add(agent)
    before = (agent.availability, agent.capacity)
    if data.availability is not None and data.availability != agent.availability:
        agent.availability, agent.availability_changed_at = data.availability, now
    if data.capacity is not None:
        agent.capacity = data.capacity
    if data.languages is not None:
        agent.languages = sorted({x.strip().lower()[:8] for x in data.languages if x.strip()})
    session.flush()
    freed = agent.availability == "online" and (before[0] != "online" or agent.capacity > before[1])
    if freed:
        drain(session, now)
    return agent


def get_agent(session: Session, user_id: int) -> Agent:
    agent = session.get(Agent, user_id)
    if agent is None:
        raise NotFound("agent", user_id)
    return agent


def list_agents(session: Session) -> list[AgentView]:
    rows = session.execute(sa.select(Agent, User).join(User, User.id == Agent.user_id).order_by(User.name, User.id))
    rows = list(rows)
    load = loads(session)
    teams: dict[int, list[int]] = {}
    for team_id, user_id in session.execute(sa.select(TeamMember.team_id, TeamMember.user_id)):
        teams.setdefault(user_id, []).append(team_id)
    return [AgentView(a.user_id, u.name, u.email, a.availability if u.active else "offline", a.capacity,
                      load.get(a.user_id, 0), a.languages or [], sorted(teams.get(a.user_id, [])), a.last_assigned_at)
            for a, u in rows]


def save_team(session: Session, data: TeamIn, team_id: int | None = None) -> Team:
    """Create a team or rename it and set its members (agents; a staff user named becomes one)."""
    name = data.name.strip()
    if not name:
        raise FieldError("name", "must not be empty")
    clash = session.scalar(sa.select(Team.id).where(Team.name == name))
    if clash is not None and clash != team_id:
        raise FieldError("name", f"a team named {name!r} already exists", "duplicate")
    if team_id is None:
        team = Team(name=name, created_at=utcnow())
        session.add(team)
        session.flush()
    else:
        team = get_team(session, team_id)
        team.name = name
    members = sorted(set(data.members))
    for i, uid in enumerate(members):
        if uid < 1 or uid > MAX_ID:
            raise FieldError(f"members[{i}]", "is not a user id")
        _user(session, uid, f"members[{i}]")
        if session.get(Agent, uid) is None:
            session.add(Agent(user_id=uid, availability="offline", capacity=8, languages=[]))
    session.execute(sa.delete(TeamMember).where(TeamMember.team_id == team.id))
    session.add_all(TeamMember(team_id=team.id, user_id=uid) for uid in members)
    session.flush()
    return team


def get_team(session: Session, team_id: int) -> Team:
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound("team", team_id)
    return team


def team_members(session: Session, team_id: int) -> list[int]:
    return list(session.scalars(sa.select(TeamMember.user_id).where(TeamMember.team_id == team_id)
                                .order_by(TeamMember.user_id)))


def list_teams(session: Session) -> list[tuple[Team, list[int]]]:
    teams = list(session.scalars(sa.select(Team).order_by(Team.name)))
    members: dict[int, list[int]] = {}
    for team_id, user_id in session.execute(sa.select(TeamMember.team_id, TeamMember.user_id)
                                            .order_by(TeamMember.user_id)):
        members.setdefault(team_id, []).append(user_id)
    return [(t, members.get(t.id, [])) for t in teams]
