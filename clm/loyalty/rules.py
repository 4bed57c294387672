"""Earning rules as data. Three kinds, each a typed config:

- spend: `points` per `per_amount` of money spent on an order, with a rounding rule;
- multiplier: extra points on orders, as a percentage of the spend points (200 = double), on the items of
  some categories, for some tiers, within the rule's dates (a campaign); multipliers add up
  (double points + a 125% tier = 225%);
- event: fixed points for sign-up, the birthday month, or any tracked event whose properties match.

Every rule may cap the points it gives a customer per day, per rolling period and in total.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.orm import Session

from clm.lib.errors import FieldError, NotFound, dotted
from clm.loyalty.models import Rule, RuleAward


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PeriodCap(_Strict):
    days: int = Field(ge=1, le=3660)
    points: int = Field(ge=0)


class Caps(_Strict):
    per_day: int | None = Field(None, ge=0, description="Most points this rule gives one customer in a day.")
    per_period: PeriodCap | None = Field(None, description="Most points in any `days` days.")
    per_customer: int | None = Field(None, ge=0, description="Most points ever, per customer.")


class SpendConfig(_Strict):
    points: int = Field(1, ge=1, description="Points given for every `per_amount` spent.")
    per_amount: int = Field(10_000, ge=1, description="Money (minor units) that earns `points`.")
    rounding: Literal["down", "nearest", "up"] = "down"
    qualifying: bool = Field(True, description="The points (with multipliers) count towards tiers.")
    caps: Caps = Field(default_factory=Caps)


class MultiplierConfig(_Strict):
    percent: int = Field(ge=0, le=10_000, description="200 gives double points: 100% more on top of the base.")
    categories: list[str] = Field(default_factory=list, description="Only items of these product categories; "
                                  "empty: the whole order.")
    tiers: list[str] = Field(default_factory=list, description="Only members of these tiers; empty: everyone.")
    caps: Caps = Field(default_factory=Caps)


PropertyValue = str | int | float | bool


class EventConfig(_Strict):
    trigger: Literal["signup", "birthday", "track"]
    event: str | None = Field(None, max_length=255, description="The tracked event's name (trigger track).")
    properties: dict[str, PropertyValue] = Field(default_factory=dict,
                                                 description="Properties the event must have, with these values.")
    points: int = Field(ge=1)
    qualifying: bool = False
    caps: Caps = Field(default_factory=Caps)

    @model_validator(mode="after")
    def _event_named(self) -> EventConfig:
        if self.trigger == "track" and not self.event:
            raise ValueError("a track rule names its event (e.g. 'Review Written')")
        if self.trigger != "track" and (self.event or self.properties):
            raise ValueError("only track rules name an event and its properties")
        return self


CONFIGS: dict[str, type[_Strict]] = {"spend": SpendConfig, "multiplier": MultiplierConfig, "event": EventConfig}


class RuleIn(_Strict):
    name: str = Field(min_length=1, max_length=120)
    kind: Literal["spend", "multiplier", "event"]
    active: bool = True
    starts_at: datetime | None = Field(None, description="The campaign's start (UTC); null: always.")
    ends_at: datetime | None = Field(None, description="The campaign's end (UTC, exclusive); null: open.")
    config: dict[str, Any]


def parse_config(kind: str, config: dict[str, Any]) -> _Strict:
    """The typed config of a rule of `kind`, or a FieldError naming the offending path under `config`."""
    try:
        return CONFIGS[kind].model_validate(config)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = dotted(["config", *err.get("loc", ())])
        message = err.get("msg", "is invalid").removeprefix("Value error, ")
        raise FieldError(path, "is required" if err.get("type") == "missing" else message) from None


def _check(rule: RuleIn) -> dict[str, Any]:
    config = parse_config(rule.kind, rule.config)
    if rule.starts_at and rule.ends_at and rule.ends_at <= rule.starts_at:
        raise FieldError("ends_at", "must be after starts_at")
    return config.model_dump(exclude_none=False)


def _aware(value: datetime | None) -> datetime | None:
    from clm.lib.clock import as_utc

    return as_utc(value) if value is not None else None


def create_rule(session: Session, rule: RuleIn) -> Rule:
    config = _check(rule)
    if session.scalar(sa.select(Rule.id).where(Rule.name == rule.name)) is not None:
        raise FieldError("name", f"a rule named {rule.name!r} exists already", "duplicate")
    row = Rule(name=rule.name, kind=rule.kind, active=rule.active, starts_at=_aware(rule.starts_at),
               ends_at=_aware(rule.ends_at), config=config)
    session.add(row)
    session.flush()
    return row


def update_rule(session: Session, rule_id: int, rule: RuleIn) -> Rule:
    row = get_rule(session, rule_id)
    config = _check(rule)
    if session.scalar(sa.select(Rule.id).where(Rule.name == rule.name, Rule.id != rule_id)) is not None:
        raise FieldError("name", f"a rule named {rule.name!r} exists already", "duplicate")
    row.name, row.kind, row.active, row.config = rule.name, rule.kind, rule.active, config
    row.starts_at, row.ends_at = _aware(rule.starts_at), _aware(rule.ends_at)
    session.flush()
    return row


def get_rule(session: Session, rule_id: int) -> Rule:
    row = session.get(Rule, rule_id)
    if row is None:
        raise NotFound("rule", rule_id)
    return row


def list_rules(session: Session) -> list[Rule]:
    return list(session.scalars(sa.select(Rule).order_by(Rule.id)))


def active_rules(session: Session, at: datetime, kind: str | None = None) -> list[Rule]:
    """Rules switched on whose dates include `at`."""
    query = sa.select(Rule).where(Rule.active.is_(True),
                                  sa.or_(Rule.starts_at.is_(None), Rule.starts_at <= at),
                                  sa.or_(Rule.ends_at.is_(None), Rule.ends_at > at))
    if kind:
        query = query.where(Rule.kind == kind)
    return list(session.scalars(query.order_by(Rule.id)))


def round_points(value: Fraction, rounding: str) -> int:
    if rounding == "up":
        return -((-value.numerator) // value.denominator)
    if rounding == "nearest":
        return int((value + Fraction(1, 2)) // 1)  # halves up
    return value.numerator // value.denominator


def cap_left(session: Session, rule: Rule, customer_id: int, at: datetime, timezone: str) -> int | None:
    """Points `rule` may still give `customer_id` at `at` under its caps (None: no cap)."""

    def given(since: datetime | None) -> int:
        query = sa.select(sa.func.coalesce(sa.func.sum(RuleAward.points), 0)).where(
            RuleAward.rule_id == rule.id, RuleAward.customer_id == customer_id)
        if since is not None:
            query = query.where(RuleAward.created_at > since, RuleAward.created_at <= at)
        return int(session.scalar(query))

    return cap_left_by(Caps.model_validate(rule.config.get("caps") or {}), at, timezone, given)


def cap_left_by(caps: Caps, at: datetime, timezone: str, given) -> int | None:
    """What `caps` leave at `at`, given `given(since)`: the points the rule gave the customer in
    (since, at], or ever when since is None. (The batch earner counts from awards it holds in memory.)"""
    limits: list[int] = []
    if caps.per_day is not None:
        zone = ZoneInfo(timezone)
        local = at.astimezone(zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(at.tzinfo)
        limits.append(caps.per_day - given(midnight - timedelta(microseconds=1)))
    if caps.per_period is not None:
        limits.append(caps.per_period.points - given(at - timedelta(days=caps.per_period.days)))
    if caps.per_customer is not None:
        limits.append(caps.per_customer - given(None))
    return max(min(limits), 0) if limits else None


def has_caps(rule: Rule) -> bool:
    caps = (rule.config or {}).get("caps") or {}
    return any(caps.get(name) is not None for name in ("per_day", "per_period", "per_customer"))


def matches(config: EventConfig, properties: dict[str, Any]) -> bool:
    """A tracked event's properties satisfy the rule's filters (equal values; numbers compare as numbers)."""
    for name, want in config.properties.items():
        have = properties.get(name)
        if isinstance(want, bool) or isinstance(have, bool):
            if have is not want:
                return False
        elif isinstance(want, int | float) and isinstance(have, int | float):
            if have != want:
                return False
        elif str(have) != str(want) if have is not None else True:
            return False
    return True
