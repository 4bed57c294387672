"""Journey operations: save (checked; a new version once published), activate, pause, resume, archive,
export and import, and the counts reports read (runs by node and status, steps by node).

States: draft -> active <-> paused; any -> archived. Activating publishes the current version (it never
changes again: the next edit makes version N+1, and customers already inside finish on theirs).
Pausing holds every run whose step comes due (see engine.run_step); resuming queues those steps again.
Archiving ends every open run (exit reason "archived").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.db.names import unique_name
from clm.journeys import definition as d
from clm.journeys import engine, entry
from clm.journeys import models as m
from clm.journeys.models import Journey, JourneyRun, JourneyStep, JourneyVersion
from clm.journeys.validate import checked
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound

EXPORT_FORMAT = "clm.journey/1"


def get_journey(session: Session, journey_id: int) -> Journey:
    journey = session.get(Journey, journey_id)
    if journey is None:
        raise NotFound("journey", journey_id)
    return journey


def find_journey(session: Session, ref: str) -> Journey:
    """A journey by id or by name (the CLI)."""
    journey = session.get(Journey, int(ref)) if ref.isdigit() else None
    journey = journey or session.scalar(sa.select(Journey).where(Journey.name == ref))
    if journey is None:
        raise NotFound("journey", ref)
    return journey


def list_journeys(session: Session) -> list[Journey]:
    return list(session.scalars(sa.select(Journey).order_by(Journey.name)))


def current_version(session: Session, journey: Journey) -> JourneyVersion:
    return session.scalar(sa.select(JourneyVersion).where(JourneyVersion.journey_id == journey.id,
                                                          JourneyVersion.number == journey.version))


def versions(session: Session, journey_id: int) -> list[JourneyVersion]:
    return list(session.scalars(sa.select(JourneyVersion).where(JourneyVersion.journey_id == journey_id)
                                .order_by(JourneyVersion.number)))


def save_journey(session: Session, *, name: str, definition: Any, description: str = "",
                 journey_id: int | None = None, now: datetime | None = None) -> Journey:
    """Create a journey (a draft) or change one. A definition that does not hold raises FieldError with
    the path and node of its first problem. Changing a published version makes a new version."""
    now = now or utcnow()
    journey = get_journey(session, journey_id) if journey_id is not None else None
    if journey is not None and journey.state == m.ARCHIVED:
        raise FieldError("state", "an archived journey cannot change; import its export as a new journey")
    name = unique_name(session, Journey, name, journey_id, "journey")
    graph = checked(session, definition)
    data = d.dump_definition(graph)
    if journey is None:
        journey = Journey(name=name, description=description or "", state=m.DRAFT, version=1,
                          trigger_type=graph.trigger.type, created_at=now, updated_at=now)
        session.add(journey)
        session.flush()
        session.add(JourneyVersion(journey_id=journey.id, number=1, definition=data, created_at=now))
    else:
        version = current_version(session, journey)
        if version.definition != data:
            if version.published_at is None:
                version.definition = data
            else:
                journey.version += 1
                session.add(JourneyVersion(journey_id=journey.id, number=journey.version, definition=data,
                                           created_at=now, published_at=now if journey.state != m.DRAFT else None))
        journey.name, journey.description, journey.trigger_type = name, description or "", graph.trigger.type
        journey.updated_at = now
    session.flush()
    return journey


def activate(session: Session, journey_id: int, now: datetime | None = None, timezone: str = "Asia/Ho_Chi_Minh") -> Journey:
    """Start letting customers in (re-checked first: a segment it names may have gone). A one-off
    segment journey enters every current member of the segment now."""
    now = now or utcnow()
    journey = get_journey(session, journey_id)
    if journey.state == m.ARCHIVED:
        raise FieldError("state", "an archived journey cannot be activated")
    if journey.state == m.PAUSED:
        return resume(session, journey_id, now)
    version = current_version(session, journey)
    graph = checked(session, version.definition)
    if version.published_at is None:
        version.published_at = now
    journey.state, journey.activated_at, journey.updated_at = m.ACTIVE, journey.activated_at or now, now
    session.flush()
    if isinstance(graph.trigger, d.SegmentOnceTrigger):
        start_segment(session, journey, graph.trigger.segment_id, now, timezone)
    return journey


def start_segment(session: Session, journey: Journey, segment_id: int, now: datetime, timezone: str) -> int:
    """Enter every current member of a segment (entry key "once": a second start enters nobody again)."""
    from clm.segments.models import SegmentMember

    live = [lv for lv in entry.live_journeys(session) if lv.journey.id == journey.id][0]
    members = SegmentMember.__table__
    after, entered = 0, 0
    while True:
        ids = list(session.scalars(sa.select(members.c.customer_id).where(
            members.c.segment_id == segment_id, members.c.exited_at.is_(None), members.c.customer_id > after)
            .order_by(members.c.customer_id).limit(entry.CHUNK * 10)))
        if not ids:
            return entered
        entered += len(entry.enter(session, live, [(cid, "once", {"segment_id": segment_id}) for cid in ids],
                                   now, timezone))
        after = ids[-1]


def pause(session: Session, journey_id: int, now: datetime | None = None) -> Journey:
    journey = get_journey(session, journey_id)
    if journey.state == m.PAUSED:
        return journey
    if journey.state != m.ACTIVE:
        raise FieldError("state", f"only an active journey can be paused; this one is {journey.state}")
    journey.state, journey.updated_at = m.PAUSED, now or utcnow()
    session.flush()
    return journey


def resume(session: Session, journey_id: int, now: datetime | None = None) -> Journey:
    now = now or utcnow()
    journey = get_journey(session, journey_id)
    if journey.state == m.ACTIVE:
        return journey  # resuming a running journey changes nothing
    if journey.state != m.PAUSED:
        raise FieldError("state", f"only a paused journey can be resumed; this one is {journey.state}")
    journey.state, journey.updated_at = m.ACTIVE, now
    session.flush()
    engine.resume_held(session, journey.id, now)
    return journey


def archive(session: Session, journey_id: int, now: datetime | None = None) -> Journey:
    now = now or utcnow()
    journey = get_journey(session, journey_id)
    journey.state, journey.updated_at = m.ARCHIVED, now
    entry.end_runs(session, journey.id, None, m.EXITED, "archived", now)
    session.flush()
    return journey


def delete_journey(session: Session, journey_id: int) -> None:
    """Only a journey nobody entered can be deleted; archive the others (their history stays)."""
    journey = get_journey(session, journey_id)
    if session.scalar(sa.select(sa.func.count()).select_from(JourneyRun).where(JourneyRun.journey_id == journey_id)):
        raise FieldError("state", "customers have entered this journey: archive it instead (its history stays)")
    session.delete(journey)
    session.flush()


def export(session: Session, journey_id: int) -> dict[str, Any]:
    """The journey as a document `import_journey` takes back (name, description, current definition)."""
    journey = get_journey(session, journey_id)
    return {"format": EXPORT_FORMAT, "name": journey.name, "description": journey.description,
            "definition": current_version(session, journey).definition}


def import_journey(session: Session, document: Any, now: datetime | None = None) -> Journey:
    """Create a draft from an exported document, or a new version of the journey with the same name."""
    if not isinstance(document, dict):
        raise FieldError(None, "a journey document is a JSON object with name and definition")
    if document.get("format", EXPORT_FORMAT) != EXPORT_FORMAT:
        raise FieldError("format", f"expected {EXPORT_FORMAT!r}")
    name = document.get("name")
    if not isinstance(name, str):
        raise FieldError("name", "is required")
    existing = session.scalar(sa.select(Journey).where(Journey.name == name.strip()))
    return save_journey(session, name=name, definition=document.get("definition"),
                        description=str(document.get("description") or ""),
                        journey_id=existing.id if existing is not None else None, now=now)


def trigger(session: Session, journey_id: int, customer_id: int, key: str | None, context: dict[str, Any],
            now: datetime | None = None, timezone: str = "Asia/Ho_Chi_Minh") -> int | None:
    """Enter one customer through the API trigger; the run id, or None when the entry settings refuse."""
    from clm.customers.models import Customer

    journey = get_journey(session, journey_id)
    graph = engine.graph_of(session, current_version(session, journey).id)
    if graph.trigger.type != "api":
        raise FieldError("journey_id", f"this journey starts on {graph.trigger.type}, not by an API call")
    if journey.state != m.ACTIVE:
        raise FieldError("state", f"the journey is {journey.state}; activate it first")
    if session.get(Customer, customer_id) is None:
        raise FieldError("customer_id", f"no customer has id {customer_id}")
    import uuid

    return entry.enter_one(session, journey_id, customer_id, f"api:{key or uuid.uuid4().hex}", context,
                           now or utcnow(), timezone)


def positions(session: Session, journey_id: int) -> list[tuple[int, str, str, int]]:
    """Runs by (version number, node, status): where customers are now, and how runs ended."""
    r, v = JourneyRun.__table__, JourneyVersion.__table__
    rows = session.execute(sa.select(v.c.number, r.c.node_id, r.c.status, sa.func.count())
                           .select_from(r.join(v, v.c.id == r.c.version_id)).where(r.c.journey_id == journey_id)
                           .group_by(v.c.number, r.c.node_id, r.c.status).order_by(v.c.number, r.c.node_id, r.c.status))
    return [tuple(row) for row in rows]


def passed(session: Session, journey_id: int) -> list[tuple[str, str, int]]:
    """Steps by (node, outcome): how many passed each node and which way they went."""
    s = JourneyStep.__table__
    rows = session.execute(sa.select(s.c.node_id, s.c.outcome, sa.func.count()).where(s.c.journey_id == journey_id)
                           .group_by(s.c.node_id, s.c.outcome).order_by(s.c.node_id, s.c.outcome))
    return [tuple(row) for row in rows]


def summary(session: Session, journey_id: int) -> dict[str, int]:
    """Runs entered, open, completed, exited, converted (converted_at set), parked."""
    r = JourneyRun.__table__
    counts = dict(session.execute(sa.select(r.c.status, sa.func.count()).where(r.c.journey_id == journey_id)
                                  .group_by(r.c.status)).all())
    converted = session.scalar(sa.select(sa.func.count()).select_from(r).where(
        r.c.journey_id == journey_id, r.c.converted_at.is_not(None))) or 0
    return {"entered": sum(counts.values()), "open": sum(counts.get(s, 0) for s in m.OPEN),
            "waiting": counts.get(m.WAITING, 0), "held": counts.get(m.HELD, 0), "parked": counts.get(m.PARKED, 0),
            "completed": counts.get(m.COMPLETED, 0), "exited": counts.get(m.EXITED, 0), "converted": converted}
