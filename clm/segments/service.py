"""Segment operations: save (checked, with references and cycles), delete, count an unsaved tree, list
members, export them. Membership itself is kept by membership.py and the consumers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.models import Customer
from clm.db.names import unique_name
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound
from clm.lifecycle.models import CustomerStats
from clm.segments import membership
from clm.segments import rules as r
from clm.segments.compile import members_query
from clm.segments.lookup import make_context, segment_lookup
from clm.segments.models import Segment, SegmentMember
from clm.segments.sizes import record_sizes

KINDS = ("dynamic", "static")
_c = Customer.__table__
_s = CustomerStats.__table__
_m = SegmentMember.__table__
EXPORT_FIELDS = {
    "id": _c.c.id, "external_id": _c.c.external_id, "email": _c.c.email, "phone": _c.c.phone,
    "full_name": _c.c.full_name, "city": _c.c.city, "gender": _c.c.gender, "birthday": _c.c.birthday,
    "lifecycle_stage": _c.c.lifecycle_stage, "created_at": _c.c.created_at, "last_seen_at": _c.c.last_seen_at,
    "orders_count": _s.c.orders_count, "revenue": _s.c.revenue, "last_order_at": _s.c.last_order_at,
    "entered_at": _m.c.entered_at,
}


class SegmentInUse(FieldError):
    def __init__(self, names: list[str]):
        super().__init__("segment_id", f"segment {', '.join(names)} refers to this segment; change it first", "in_use")


def with_paths(node: Any, path: str = "rules") -> Iterator[tuple[str, Any]]:
    """(path, condition) for every condition, paths as parse_rules names them."""
    if isinstance(node, r.All | r.AnyOf):
        key = "all" if isinstance(node, r.All) else "any"
        for i, child in enumerate(getattr(node, key)):
            yield from with_paths(child, f"{path}.{key}[{i}]")
    elif isinstance(node, r.Not):
        yield from with_paths(node.not_, f"{path}.not")
    else:
        yield path, node


def dependencies(node: Any, lookup, seen: frozenset[int] = frozenset()) -> list[str]:
    """The kinds of fact the tree reads, so that an arriving fact re-checks only the segments it can change:
    profile, seen (first/last seen), stage, orders, consent, scores, loyalty, event:<name>, list:<id>, and time
    (the answer changes with the clock alone: relative dates, sliding windows)."""
    out: set[str] = set()
    for c in r.conditions(node):
        if isinstance(c, r.ProfileCondition):
            out.add("seen" if c.field in ("first_seen_at", "last_seen_at") else "profile")
        elif isinstance(c, r.StageCondition | r.StageEnteredCondition):
            out.add("stage")
        elif isinstance(c, r.EventCondition):
            out.add(f"event:{c.name}")
        elif isinstance(c, r.OrdersCondition | r.BoughtCondition):
            out.add("orders")
        elif isinstance(c, r.ScoreCondition):
            out |= {"scores", "time"}  # scores change in bulk runs, which the sweep picks up
        elif isinstance(c, r.LoyaltyCondition):
            out.add("loyalty")
            if c.field == "expiring":
                out.add("time")  # lots come within the window as days pass
        elif isinstance(c, r.ConsentCondition):
            out.add("consent")
        elif isinstance(c, r.SegmentCondition):
            found = lookup(c.segment_id)
            if found and found[0] == "dynamic" and c.segment_id not in seen:
                out |= set(dependencies(found[1], lookup, seen | {c.segment_id}))
            else:
                out.add(f"list:{c.segment_id}")
        if getattr(c, "op", None) in r.RELATIVE_OPS or isinstance(c, r.StageEnteredCondition) or (
                getattr(c, "window", None) is not None and c.window.last_days):
            out.add("time")
    return sorted(out)


def check_tree(session: Session, data: Any, segment_id: int | None = None) -> Any:
    """A parsed tree whose referenced segments exist and do not lead back to `segment_id` (a cycle)."""
    node = r.parse_rules(data)
    lookup = segment_lookup(session)
    for path, c in with_paths(node):
        if not isinstance(c, r.SegmentCondition):
            continue
        if c.segment_id == segment_id:
            raise FieldError(f"{path}.segment_id", "a segment cannot contain itself (a cycle)", "cycle")
        if lookup(c.segment_id) is None:
            raise FieldError(f"{path}.segment_id", f"segment {c.segment_id} does not exist")
        if segment_id is not None and _reaches(c.segment_id, segment_id, lookup, set()):
            raise FieldError(f"{path}.segment_id", f"segment {c.segment_id} refers back to this segment (a cycle)",
                             "cycle")
    return node


def _reaches(start: int, target: int, lookup, seen: set[int]) -> bool:
    found = lookup(start)
    if start in seen or found is None or found[0] != "dynamic":
        return False
    seen.add(start)
    for c in r.conditions(found[1]):
        if isinstance(c, r.SegmentCondition) and (c.segment_id == target or _reaches(c.segment_id, target, lookup, seen)):
            return True
    return False


def get_segment(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise NotFound("segment", segment_id)
    return segment


def list_segments(session: Session) -> list[Segment]:
    return list(session.scalars(sa.select(Segment).order_by(Segment.name)))


def save_segment(session: Session, *, name: str, kind: str = "dynamic", rules: Any = None, description: str = "",
                 segment_id: int | None = None, now: datetime | None = None,
                 timezone: str = "Asia/Ho_Chi_Minh") -> Segment:
    """Create (segment_id None) or change a segment; a dynamic one is evaluated for everyone at once."""
    now = now or utcnow()
    if kind not in KINDS:
        raise FieldError("kind", f"{kind!r} is not a kind; choose from {', '.join(KINDS)}")
    segment = get_segment(session, segment_id) if segment_id is not None else None
    if segment is not None and segment.kind != kind:
        raise FieldError("kind", "a segment's kind cannot change; snapshot it into a new segment instead")
    name = unique_name(session, Segment, name, segment_id, "segment")
    if kind == "dynamic":
        if rules is None:
            raise FieldError("rules", "is required for a dynamic segment")
        node = check_tree(session, rules, segment_id)
        rules, deps = r.dump_rules(node), dependencies(node, segment_lookup(session))
    else:
        if rules is not None:
            raise FieldError("rules", "a static segment is a list: add members instead of rules")
        deps = []
    if segment is None:
        segment = Segment(name=name, kind=kind, rules=rules, depends_on=deps, description=description or "",
                          size=0, created_at=now, updated_at=now)
        session.add(segment)
    else:
        changed = segment.rules != rules
        segment.name, segment.rules, segment.depends_on = name, rules, deps
        segment.description, segment.updated_at = description or "", now
        if not changed:
            session.flush()
            return segment
    session.flush()
    if kind == "dynamic":
        membership.refresh(session, segment, now, timezone)
        session.refresh(segment)
    record_sizes(session, now, timezone, [segment.id])
    return segment


def delete_segment(session: Session, segment_id: int) -> None:
    segment = get_segment(session, segment_id)
    users = [s.name for s in list_segments(session) if s.rules and s.id != segment_id
             and any(isinstance(c, r.SegmentCondition) and c.segment_id == segment_id
                     for c in r.conditions(r.parse_rules(s.rules)))]
    if users:
        raise SegmentInUse(users)
    session.delete(segment)
    session.flush()


def snapshot(session: Session, segment_id: int, name: str, now: datetime | None = None) -> Segment:
    """A static segment holding the current members of another segment."""
    source = get_segment(session, segment_id)
    target = save_segment(session, name=name, kind="static", description=f"snapshot of {source.name}", now=now)
    change_list(session, target.id, add=sorted(membership.current_members(session, source.id)), now=now)
    return target


def change_list(session: Session, segment_id: int, add: list[int] = (), remove: list[int] = (),
                now: datetime | None = None, timezone: str = "Asia/Ho_Chi_Minh") -> membership.Change:
    """Add customers to / remove them from a static segment; segments built on the list follow at once."""
    from clm.segments.consumers import recheck_by_kind

    now = now or utcnow()
    segment = get_segment(session, segment_id)
    if segment.kind != "static":
        raise FieldError("segment_id", "only a static segment takes members by hand; a dynamic one follows its rules")
    change = membership.set_list(session, segment, add=add, remove=remove, now=now)
    recheck_by_kind(session, {f"list:{segment_id}": set(add) | set(remove)}, now, timezone)
    session.refresh(segment)
    return change


def count_preview(session: Session, rules: Any, now: datetime | None = None,
                  timezone: str = "Asia/Ho_Chi_Minh") -> int:
    """How many customers an unsaved tree matches now."""
    node = check_tree(session, rules)
    query = members_query(node, make_context(session, now or utcnow(), timezone))
    return session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0


def members_page(session: Session, segment_id: int, after: int | None = None, limit: int = 50) -> list[sa.Row]:
    """Current members by customer id (keyset paging): id, names, email, phone, city, stage, entered_at.
    Ask for one more than a page to know whether another page follows (see `next_after`)."""
    get_segment(session, segment_id)
    query = (sa.select(_c.c.id, _c.c.full_name, _c.c.email, _c.c.phone, _c.c.city, _c.c.lifecycle_stage,
                       _m.c.entered_at)
             .select_from(_m.join(_c, _c.c.id == _m.c.customer_id))
             .where(_m.c.segment_id == segment_id, _m.c.exited_at.is_(None)).order_by(_m.c.customer_id).limit(limit))
    if after is not None:
        query = query.where(_m.c.customer_id > after)
    return list(session.execute(query))


def next_after(rows: list[sa.Row], limit: int) -> tuple[list[sa.Row], int | None]:
    """A page of `limit` rows out of `limit + 1` read, and the cursor of the next page (None: the last)."""
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


def export_csv(session: Session, segment_id: int, fields: list[str]) -> Iterator[str]:
    """The members as CSV text (a header, then one line per member), streamed in pages."""
    unknown = [f for f in fields if f not in EXPORT_FIELDS]
    if unknown or not fields:
        raise FieldError("fields", f"choose from {', '.join(EXPORT_FIELDS)}"
                         + (f" ({unknown[0]!r} is not one)" if unknown else ""))
    get_segment(session, segment_id)
    columns = [EXPORT_FIELDS[f] for f in fields]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(fields)
    after = 0
    while True:
        rows = session.execute(
            sa.select(_m.c.customer_id, *columns)
            .select_from(_m.join(_c, _c.c.id == _m.c.customer_id).outerjoin(_s, _s.c.customer_id == _c.c.id))
            .where(_m.c.segment_id == segment_id, _m.c.exited_at.is_(None), _m.c.customer_id > after)
            .order_by(_m.c.customer_id).limit(5000)).all()
        for row in rows:
            writer.writerow([_cell(v) for v in row[1:]])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < 5000:
            return
        after = rows[-1][0]


def _cell(value: Any) -> Any:
    if isinstance(value, str) and (value[:1] in ("=", "@", "\t", "\r") or (
            value[:1] in ("+", "-") and not value[1:].replace(" ", "").isdigit())):
        return "'" + value  # a spreadsheet would run it as a formula (a phone number stays as it is)
    return "" if value is None else value
