"""The worker's side of automation and satisfaction: the `service.automation` step and the elapsed-trigger job.

The step tails the tickets' audit (`service_ticket_changes`, an append-only log read by id like the
outbox) and the `service.message_received` outbox events. Per ticket and batch:

- a `created` row fires the `created` triggers (occasion "created");
- other changes, and a customer's message, fire the `updated` triggers (occasion: the newest change or
  message read), unless every change came from automation itself (triggers never set each other off);
- a change of status to `solved` asks the customer for a CSAT rating (clm.service.satisfaction);
- the elapsed triggers' jobs are queued for the ticket's current moments (`service.trigger_elapsed`,
  one per trigger and moment, on the durable job queue: they survive restarts).

Everything a row causes is keyed (trigger runs, surveys, jobs), so a row read twice changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.jobs.queue import Claimed
from clm.jobs.runner import Registry
from clm.lib.clock import utcnow
from clm.outbox.models import OutboxEvent
from clm.service import automation, satisfaction
from clm.service.models import Change, Ticket
from clm.worker.tail import Tail

CHANGES, MESSAGES = "service.automation", "service.automation.messages"


class AutomationConsumer:
    name = CHANGES

    def __init__(self, settings, batch: int = 500):
        self.settings = settings
        self.batch = batch
        changes = Change.__table__
        outbox = OutboxEvent.__table__
        self.changes = Tail(CHANGES, changes, "at", ["ticket_id", "actor", "field", "values"])
        self.messages = Tail(MESSAGES, outbox, "created_at", ["payload"],
                             where=outbox.c.topic == "service.message_received")

    def __call__(self, session: Session, now: datetime) -> int:
        changes = self.changes.read(session, self.batch, clock=now)
        messages = self.messages.read(session, self.batch, clock=now)
        if changes or messages:
            react(session, changes, messages, self.settings, now)
        self.changes.advance(session, changes)
        self.messages.advance(session, messages)
        return len(changes) + len(messages)


def react(session: Session, changes: list[Any], messages: list[Any], settings, now: datetime) -> None:
    """Fire triggers, ask for ratings and queue elapsed jobs for the tickets these rows touched."""
    per_ticket: dict[int, list[Any]] = defaultdict(list)
    for row in changes:
        per_ticket[row.ticket_id].append(row)
    wrote: dict[int, int] = {}
    for row in messages:
        ticket_id = (row.payload or {}).get("ticket_id")
        if isinstance(ticket_id, int):
            wrote[ticket_id] = max(wrote.get(ticket_id, 0), row.id)
    if not per_ticket and not wrote:
        return
    created = automation.list_triggers(session, "created", active_only=True)
    updated = automation.list_triggers(session, "updated", active_only=True)
    elapsed = automation.list_triggers(session, "elapsed", active_only=True)
    solved = {tid for tid, rows in per_ticket.items()
              if any(r.field == "status" and (r.values or {}).get("new") == "solved" for r in rows)}
    if not (created or updated or elapsed or solved):
        return  # nothing to fire, ask or schedule: the tickets need not be read
    timezone = getattr(settings, "timezone", "Asia/Ho_Chi_Minh")
    ids = sorted(set(per_ticket) | set(wrote))
    for start in range(0, len(ids), 1000):  # the batch's tickets in a few SELECTs, not one each
        list(session.scalars(sa.select(Ticket).where(Ticket.id.in_(ids[start:start + 1000]))))
    for ticket_id in ids:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            continue
        rows = per_ticket.get(ticket_id, [])
        fields = {r.field for r in rows}
        if "created" in fields:
            for trigger in created:
                automation.fire(session, trigger, ticket, "created", {}, now, timezone)
        else:
            by_others = [r for r in rows if r.actor != automation.AUTOMATION]
            changed = {r.field: ((r.values or {}).get("old"), (r.values or {}).get("new")) for r in by_others}
            if ticket_id in wrote:
                changed["message"] = (None, "in")
            if changed:
                occasion = f"u{max([r.id for r in by_others] + [0])}m{wrote.get(ticket_id, 0)}"
                for trigger in updated:
                    automation.fire(session, trigger, ticket, occasion, changed, now, timezone)
        if ticket_id in solved:
            session.refresh(ticket)
            if ticket.status == "solved":
                satisfaction.request_csat(session, ticket, settings, now)
        if elapsed:
            session.refresh(ticket)
            automation.schedule_elapsed(session, ticket, elapsed, now)
    session.flush()


def elapsed_handler(settings):
    def handle(session: Session, job: Claimed) -> None:
        args = job.args
        automation.fire_elapsed(session, int(args["trigger_id"]), int(args["ticket_id"]), str(args["anchor"]),
                                utcnow(), getattr(settings, "timezone", "Asia/Ho_Chi_Minh"))

    return handle


def register(registry: Registry, settings) -> None:
    registry.register(automation.ELAPSED_KIND, elapsed_handler(settings))


def changed_since(session: Session, after_id: int) -> list[Any]:
    """Audit rows after `after_id` as the consumer reads them (tests and the benchmark drive `react` with these)."""
    table = Change.__table__
    return list(session.execute(sa.select(table.c.id, table.c.ticket_id, table.c.actor, table.c.field,
                                          table.c["values"]).where(table.c.id > after_id).order_by(table.c.id)))
