"""Who gets a new lead: assignment rules, tried in order; each assignment records why.

A rule matches a lead by source, province (the customer's city, compared without diacritics) and product
line (`details.product_line`); empty conditions match everything. It hands the lead to its users in turn
(round robin: a counter on the rule, bumped under the rule's row lock so two leads at once get two people)
or to the one with the fewest open leads (least load; the same lock makes concurrent leads take turns).
Deactivated users are skipped. A lead given with an owner keeps it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound
from clm.lib.text import fold
from clm.sales.models import ASSIGNMENT_METHODS, MAX_ID, OPEN_LEAD_STATUSES, SOURCES, AssignmentRule, Lead

Method = Literal[ASSIGNMENT_METHODS]  # type: ignore[valid-type]
Source = Literal[SOURCES]  # type: ignore[valid-type]


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    method: Method = "round_robin"
    sources: list[Source] = Field(default_factory=list)
    provinces: list[str] = Field(default_factory=list, max_length=100)
    product_lines: list[str] = Field(default_factory=list, max_length=100)
    user_ids: list[int] = Field(min_length=1, max_length=200)
    position: int = Field(0, ge=0, le=10_000)
    active: bool = True


def _check_users(session: Session, user_ids: list[int]) -> list[int]:
    ids = list(dict.fromkeys(user_ids))
    if any(not 1 <= i <= MAX_ID for i in ids):
        raise FieldError("user_ids", "are staff user ids")
    known = set(session.scalars(sa.select(User.id).where(User.id.in_(ids))))
    missing = [i for i in ids if i not in known]
    if missing:
        raise FieldError("user_ids", f"no staff user with id {missing[0]}")
    return ids


def save_rule(session: Session, data: RuleIn, rule_id: int | None = None, now: datetime | None = None) -> AssignmentRule:
    now = now or utcnow()
    rule = AssignmentRule(created_at=now, next_index=0) if rule_id is None else get_rule(session, rule_id)
    rule.name, rule.method, rule.position, rule.active = data.name.strip(), data.method, data.position, data.active
    rule.sources = list(dict.fromkeys(data.sources))
    rule.provinces = [p.strip() for p in dict.fromkeys(data.provinces) if p.strip()]
    rule.product_lines = [p.strip() for p in dict.fromkeys(data.product_lines) if p.strip()]
    rule.user_ids = _check_users(session, data.user_ids)
    rule.updated_at = now
    session.add(rule)
    session.flush()
    return rule


def get_rule(session: Session, rule_id: int, *, for_update: bool = False) -> AssignmentRule:
    rule = session.get(AssignmentRule, rule_id, with_for_update=for_update)
    if rule is None:
        raise NotFound("assignment rule", rule_id)
    return rule


def delete_rule(session: Session, rule_id: int) -> None:
    session.delete(get_rule(session, rule_id))
    session.flush()


def list_rules(session: Session) -> list[AssignmentRule]:
    return list(session.scalars(sa.select(AssignmentRule).order_by(AssignmentRule.position, AssignmentRule.id)))


def matches(rule: AssignmentRule, source: str, city: str | None, product_line: str | None) -> bool:
    if rule.sources and source not in rule.sources:
        return False
    if rule.provinces and fold(city) not in {fold(p) for p in rule.provinces}:
        return False
    if rule.product_lines and fold(product_line) not in {fold(p) for p in rule.product_lines}:
        return False
    return True


def _open_leads(session: Session, user_ids: list[int]) -> dict[int, int]:
    return dict(session.execute(sa.select(Lead.owner_id, sa.func.count()).where(
        Lead.owner_id.in_(user_ids), Lead.status.in_(OPEN_LEAD_STATUSES)).group_by(Lead.owner_id)).all())


def _why(rule: AssignmentRule, source: str, city: str | None, product_line: str | None) -> tuple[str, str]:
    vi, en = [], []
    if rule.sources:
        vi.append(f"nguồn {source}")
        en.append(f"source {source}")
    if rule.provinces:
        vi.append(f"tỉnh/thành {city}")
        en.append(f"province {city}")
    if rule.product_lines:
        vi.append(f"dòng sản phẩm {product_line}")
        en.append(f"product line {product_line}")
    return ", ".join(vi) or "mọi khách tiềm năng", ", ".join(en) or "every lead"


def assign(session: Session, lead: Lead, *, city: str | None, now: datetime | None = None) -> dict[str, Any] | None:
    """Give `lead` (without an owner) to the first matching rule's next person; the assignment's record, or
    None when no rule matches or a matching rule has no active user."""
    now = now or utcnow()
    product_line = (lead.details or {}).get("product_line")
    product_line = str(product_line) if product_line else None
    for candidate in list_rules(session):
        if not candidate.active or not matches(candidate, lead.source, city, product_line):
            continue
        rule = get_rule(session, candidate.id, for_update=True)  # concurrent leads take turns here
        active = set(session.scalars(sa.select(User.id).where(User.id.in_(rule.user_ids), User.active.is_(True))))
        people = [u for u in rule.user_ids if u in active]
        if not people:
            continue
        matched_vi, matched_en = _why(rule, lead.source, city, product_line)
        if rule.method == "least_load":
            load = _open_leads(session, people)
            user_id = min(people, key=lambda u: (load.get(u, 0), people.index(u)))
            vi = f"Quy tắc “{rule.name}” ({matched_vi}): người ít khách tiềm năng đang mở nhất ({load.get(user_id, 0)})"
            en = f"Rule “{rule.name}” ({matched_en}): fewest open leads ({load.get(user_id, 0)})"
        else:
            turn = rule.next_index % len(people)
            user_id = people[turn]
            rule.next_index = turn + 1
            vi = f"Quy tắc “{rule.name}” ({matched_vi}): lần lượt, người {turn + 1}/{len(people)}"
            en = f"Rule “{rule.name}” ({matched_en}): in turn, person {turn + 1} of {len(people)}"
        lead.owner_id = user_id
        lead.assignment = {"rule_id": rule.id, "rule": rule.name, "method": rule.method, "user_id": user_id,
                           "at": now.isoformat(), "vi": vi, "en": en}
        session.flush()
        return lead.assignment
    return None
