"""Filing a batch of customers' messages with a few statements for the whole batch (the worker's inbound
step, clm.service.inbound).

For each message it does what `conversations.receive` does (the conversation found by inbox and thread, a
ticket opened when there is none, its SLA clocks started and the ticket routed, the message stored, the
timeline and the outbox told), but what it needs is read once for the batch before (inboxes, customers and
their owners, their open conversations with their tickets, locked, the tickets that count for follow-up
routing, running next-response clocks) and what it decides is kept in memory and written at the end: one
INSERT or UPDATE per table for the whole batch instead of ~18 statements per message.

It takes the common cases: a first message (a new ticket), and a message on a new or open ticket (routed
when it has no agent, a next-response clock started after an agent's reply). The rest goes through
`receive` one message at a time: a solved, pending, on-hold or merged ticket, an agent who is no longer
online, an unknown or switched-off inbox, an unknown or merged customer, a message id seen before, a
conversation without a last message time. `Filer.take` says no to those; the caller then calls `write`
(so that `receive` sees everything filed before it, in arrival order) and files the message one by one, and
that customer's later messages in the batch go the same way (`Filer.leave`).

Routing uses the batch's pool (loads exact in memory, the routing lock held by the caller) and
`routing.choose` with the facts read beforehand (`Known`). tests/service/test_filing.py checks that a batch
writes what receiving each message one by one writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.models import Customer
from clm.db.bulk import insert_rows, update_rows
from clm.jobs.queue import enqueue_each
from clm.lib.errors import FieldError
from clm.outbox.service import emit_many
from clm.service import sla, timeline
from clm.service.conversations import SUBJECT_FROM_BODY, InboundIn
from clm.service.models import PRIORITY_RANK, Change, Conversation, Inbox, Message, SlaTimer, Ticket
from clm.service.routing import REOFFER_KIND, Pool, choose
from clm.service.tickets import check_fields, is_vip, ticket_numbers

_NEW = float("inf")  # a ticket or conversation made in the batch sorts after every stored one (ids grow)


@dataclass(eq=False)
class _Ticket:
    """A ticket as the batch knows it: what routing and the SLA policies read, and what the batch changed."""

    id: int | None
    customer_id: int
    channel: str
    language: str | None
    priority: str
    team_id: int | None
    status: str
    assignee_id: int | None
    number: str | None
    created_at: datetime
    last_agent_reply_at: datetime | None = None
    last_customer_message_at: datetime | None = None
    merged_into_id: int | None = None
    tags: list[str] = field(default_factory=list)
    seq: int = 0  # order of making, for new tickets
    subject: str = ""  # a new ticket's
    inbox_id: int | None = None  # a new ticket's
    vip: bool = False  # a new ticket's
    assignment_reason: str | None = None
    assigned_at: datetime | None = None
    routed: bool = False  # assignee, team or reason changed
    touched: bool = False  # last customer message changed
    next_response: bool = False  # has a running or paused next-response clock

    def active(self) -> datetime:
        return self.last_agent_reply_at or self.last_customer_message_at or self.created_at

    def order(self) -> tuple:
        return (self.active(), _NEW if self.id is None else self.id, self.seq)


@dataclass(eq=False)
class _Conversation:
    id: int | None
    ticket: _Ticket
    inbox_id: int
    customer_id: int
    channel: str
    thread_key: str | None
    last_message_at: datetime | None
    created_at: datetime
    seq: int = 0
    new: bool = False  # made in this batch, not written yet


@dataclass(eq=False)
class _Message:
    conversation: _Conversation
    data: InboundIn
    at: datetime
    id: int | None = None


class Filer:
    """One batch: `take` each message in arrival order, `write` before any message it does not take and at
    the end. Not thread-safe; lives for one transaction."""

    def __init__(self, session: Session, now: datetime, pool: Pool, messages: list[InboundIn]):
        self.session, self.now, self.pool = session, now, pool
        self.left: set[int] = set()
        self.messages: list[_Message] = []
        self.tickets: dict[int, _Ticket] = {}  # stored tickets read for the batch, by id
        self.made: list[_Ticket] = []  # tickets opened since the last write
        self.by_customer: dict[int, list[_Ticket]] = {}
        self.conversations: dict[tuple[int, int], list[_Conversation]] = {}
        self.changes: list[tuple] = []  # (ticket, field, old, new, at, actor, reason)
        self.clocks: list[tuple[_Ticket, str, datetime]] = []
        self.jobs: list[tuple] = []  # ("clocks", ticket) or ("reoffer", ticket)
        self.events: list[tuple] = []  # ("opened", ticket, at) or ("received", message)
        self.outbox: list[tuple] = []  # (topic, ticket[, message])
        self.seq = 0
        self._read(messages)

    # --- reading -------------------------------------------------------------------------------------

    def _read(self, messages: list[InboundIn]) -> None:
        s = self.session
        self.inboxes = {i.id: i for i in s.scalars(sa.select(Inbox))}
        customer_ids = sorted({m.customer_id for m in messages})
        ids = sa.bindparam("ids", customer_ids, expanding=True)
        self.customers = {cid: (merged, owner) for cid, merged, owner in s.execute(
            sa.select(Customer.id, Customer.merged_into_id, Customer.owner_id).where(Customer.id.in_(ids)))}
        external = sorted({m.external_id for m in messages if m.external_id})
        self.known_ids = set(s.scalars(sa.select(Message.external_id).where(
            Message.external_id.in_(sa.bindparam("ext", external, expanding=True))))) if external else set()
        c, t = Conversation, Ticket
        query = (sa.select(c.id, c.ticket_id, c.inbox_id, c.customer_id, c.channel, c.thread_key, c.last_message_at,
                           c.created_at, *self._ticket_columns())
                 .join(t, t.id == c.ticket_id).where(c.customer_id.in_(ids), t.status != "closed")
                 .order_by(c.id))
        if s.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(of=t)  # as receive locks the ticket it writes on
        for row in s.execute(query):
            ticket = self._stored(row[8:])
            self.conversations.setdefault((row.inbox_id, row.customer_id), []).append(_Conversation(
                row.id, ticket, row.inbox_id, row.customer_id, row.channel, row.thread_key, row.last_message_at,
                row.created_at))
        with_replies = [tid for tid, tk in self.tickets.items() if tk.last_agent_reply_at is not None]
        if with_replies:
            for tid in s.scalars(sa.select(SlaTimer.ticket_id).where(
                    SlaTimer.ticket_id.in_(sa.bindparam("tids", with_replies, expanding=True)),
                    SlaTimer.metric == "next_response", SlaTimer.state.in_(sla.ACTIVE))):
                self.tickets[tid].next_response = True
        self.recent: dict[int, list[tuple]] = {}
        days = self.pool.settings.follow_up_days
        if days > 0 and customer_ids:
            active = sa.func.coalesce(t.last_agent_reply_at, t.last_customer_message_at, t.created_at)
            for row in s.execute(sa.select(t.customer_id, t.id, t.assignee_id, active).where(
                    t.customer_id.in_(ids), t.assignee_id.is_not(None),
                    active >= self.now - timedelta(days=days) - timedelta(days=1))):
                self.recent.setdefault(row[0], []).append((row[3], row[1], row[2]))
        try:
            self.fields: dict[str, Any] | None = check_fields(s, {}, creating=True)
        except FieldError:
            self.fields = None  # a required custom field: receive says so, message by message
        settings = self.pool.settings
        self.vip_rules = bool(settings.vip_tiers) or settings.vip_min_clv is not None

    @staticmethod
    def _ticket_columns() -> list:
        t = Ticket
        return [t.id, t.customer_id, t.channel, t.language, t.priority, t.team_id, t.status, t.assignee_id, t.number,
                t.created_at, t.last_agent_reply_at, t.last_customer_message_at, t.merged_into_id, t.tags,
                t.assignment_reason, t.assigned_at]

    def _stored(self, row) -> _Ticket:
        ticket = self.tickets.get(row[0])
        if ticket is None:
            (tid, cid, channel, language, priority, team_id, status, assignee_id, number, created_at, agent_at,
             customer_at, merged, tags, reason, assigned_at) = row
            ticket = _Ticket(tid, cid, channel, language, priority, team_id, status, assignee_id, number, created_at,
                             agent_at, customer_at, merged, list(tags or []), assignment_reason=reason,
                             assigned_at=assigned_at)
            self.tickets[tid] = ticket
            self.by_customer.setdefault(cid, []).append(ticket)
        return ticket

    # --- routing.Known ----------------------------------------------------------------------------------

    def owner(self, customer_id: int) -> int | None:
        return self.customers[customer_id][1]

    def follow_up(self, ticket: _Ticket, since: datetime) -> tuple[int, datetime] | None:
        best: tuple | None = None
        mine = {id(t): t for t in self.by_customer.get(ticket.customer_id, [])}
        candidates = [(t.order(), t.assignee_id, t.active()) for t in mine.values()
                      if t is not ticket and t.assignee_id is not None]
        known = {t.id for t in mine.values() if t.id is not None}
        candidates += [((at, tid, 0), assignee, at) for at, tid, assignee in self.recent.get(ticket.customer_id, [])
                       if tid not in known and tid != ticket.id]
        for order, assignee, at in candidates:
            if at >= since and (best is None or order > best[0]):
                best = (order, assignee, at)
        return None if best is None else (best[1], best[2])

    # --- taking messages ------------------------------------------------------------------------------

    def leave(self, customer_id: int) -> None:
        """This customer's messages go one by one for the rest of the batch (one just did)."""
        self.left.add(customer_id)

    def take(self, data: InboundIn) -> _Message | None:
        """File the message in the batch (written at the next `write`); None when it must go one by one."""
        inbox = self.inboxes.get(data.inbox_id)
        customer = self.customers.get(data.customer_id)
        if (data.customer_id in self.left or inbox is None or not inbox.active or customer is None
                or customer[0] is not None or (data.external_id and data.external_id in self.known_ids)):
            return None
        at = data.at or self.now
        conversation = self._conversation_for(inbox, data.customer_id, data.thread_key)
        if conversation is False:
            return None
        opened = conversation is None
        if opened:
            if self.fields is None:
                return None
            conversation = self._open(inbox, data, at)
        else:
            ticket = conversation.ticket
            if ticket.merged_into_id is not None or ticket.status not in ("new", "open"):
                return None
            agent = self.pool.agents.get(ticket.assignee_id) if ticket.assignee_id is not None else None
            if ticket.assignee_id is not None and (agent is None or agent.availability != "online"):
                return None
        if data.external_id:
            self.known_ids.add(data.external_id)  # the same id again in this batch: receive finds this one
        message = _Message(conversation, data, at)
        self.messages.append(message)
        ticket = conversation.ticket
        conversation.last_message_at = at
        ticket.last_customer_message_at, ticket.touched = at, True
        self.events.append(("received", message))
        if not opened:
            self._woken(ticket, at)
        self.outbox.append(("service.message_received", ticket, message))
        return message

    def _conversation_for(self, inbox: Inbox, customer_id: int, thread_key: str | None):
        """As conversations._conversation_for: the latest not closed (False: one without a time to order by)."""
        found = [c for c in self.conversations.get((inbox.id, customer_id), [])
                 if thread_key is None or c.thread_key == thread_key]
        if any(c.last_message_at is None for c in found):
            return False
        return max(found, key=lambda c: (c.last_message_at, _NEW if c.id is None else c.id, c.seq), default=None)

    def _open(self, inbox: Inbox, data: InboundIn, at: datetime) -> _Conversation:
        s = self.session
        subject = (data.subject or " ".join(data.body.split())[:SUBJECT_FROM_BODY] or inbox.name).strip()[:255]
        self.seq += 1
        ticket = _Ticket(None, data.customer_id, inbox.channel, inbox.language or None, "normal", None, "new", None,
                         None, at, seq=self.seq, subject=subject.strip(), inbox_id=inbox.id,
                         vip=is_vip(s, data.customer_id) if self.vip_rules else False)
        self.made.append(ticket)
        self.by_customer.setdefault(data.customer_id, []).append(ticket)
        self.changes.append((ticket, "created", None, {"status": "new", "priority": "normal",
                                                       "channel": inbox.channel}, at, "customer", None))
        self.changes.append((ticket, "status", None, "new", at, "customer", None))
        self.events.append(("opened", ticket, at))
        self.outbox.append(("service.ticket_opened", ticket, None))
        for metric in ("first_response", "resolution"):
            self.clocks.append((ticket, metric, at))
        self.jobs.append(("clocks", ticket))
        self._route(ticket)
        conversation = _Conversation(None, ticket, inbox.id, data.customer_id, inbox.channel, data.thread_key, at, at,
                                     seq=self.seq, new=True)
        self.conversations.setdefault((inbox.id, data.customer_id), []).append(conversation)
        return conversation

    def _woken(self, ticket: _Ticket, at: datetime) -> None:
        """conversations._woken for a new or open ticket whose agent (if any) is online."""
        if ticket.last_agent_reply_at is not None and not ticket.next_response:
            ticket.next_response = True
            self.clocks.append((ticket, "next_response", at))
            self.jobs.append(("clocks", ticket))
        if ticket.assignee_id is None:
            self._route(ticket)

    def _route(self, ticket: _Ticket) -> None:
        """routing.route and _apply with the batch's pool."""
        pool, now = self.pool, self.now
        choice = choose(self.session, ticket, pool, now, known=self)
        if choice.team_id != ticket.team_id:
            self.changes.append((ticket, "team_id", ticket.team_id, choice.team_id, now, "routing", choice.reason))
            ticket.team_id, ticket.routed = choice.team_id, True
        if choice.user_id is not None:
            ticket.assignee_id, ticket.assignment_reason = choice.user_id, choice.reason[:500]
            ticket.assigned_at, ticket.routed = now, True
            self.changes.append((ticket, "assignee_id", None, choice.user_id, now, "routing", choice.reason))
            pool.load[choice.user_id] = pool.load.get(choice.user_id, 0) + 1
            pool.agents[choice.user_id].last_assigned_at = now  # the ORM writes it at the flush
            if pool.settings.reoffer_minutes:
                self.jobs.append(("reoffer", ticket))
            self.outbox.append(("service.ticket_assigned", ticket, None))
        else:
            ticket.assignment_reason, ticket.routed = choice.reason[:500], True

    # --- writing -------------------------------------------------------------------------------------

    def write(self) -> None:
        """Write what was taken since the last write; every taken message then has its id and ticket id."""
        if not self.messages and not self.made:
            return
        s, now = self.session, self.now
        self._insert_tickets()
        new_conversations = list(dict.fromkeys(m.conversation for m in self.messages if m.conversation.new))
        _returning(s, Conversation, new_conversations, lambda c: {
            "ticket_id": c.ticket.id, "inbox_id": c.inbox_id, "customer_id": c.customer_id, "channel": c.channel,
            "thread_key": c.thread_key, "last_message_at": c.last_message_at, "created_at": c.created_at})
        _returning(s, Message, self.messages, lambda m: {
            "conversation_id": m.conversation.id, "ticket_id": m.conversation.ticket.id,
            "customer_id": m.conversation.customer_id, "direction": "in", "body": m.data.body,
            "external_id": m.data.external_id, "attachments": m.data.attachments, "created_at": m.at})
        stored = [m.conversation for m in self.messages if not m.conversation.new]
        update_rows(s, Conversation.__table__, ["last_message_at"],
                    [(c.last_message_at, c.id) for c in dict.fromkeys(stored)])
        touched = [t for t in self.tickets.values() if t.touched]
        update_rows(s, Ticket.__table__, ["last_customer_message_at", "updated_at"],
                    [(t.last_customer_message_at, now, t.id) for t in touched])
        update_rows(s, Ticket.__table__, ["assignee_id", "assignment_reason", "assigned_at", "team_id"],
                    [(t.assignee_id, t.assignment_reason, t.assigned_at, t.team_id, t.id) for t in touched if t.routed])
        insert_rows(s, Change.__table__, ("ticket_id", "customer_id", "user_id", "actor", "field", "values", "reason",
                                          "at"),
                    [(t.id, t.customer_id, None, actor, name, {"old": old, "new": new}, reason[:500] if reason else None,
                      at) for t, name, old, new, at, actor, reason in self.changes])
        self._clocks_and_jobs()
        for kind, *what in self.events:
            if kind == "opened":
                ticket, at = what
                timeline.record(s, ticket.customer_id, timeline.OPENED, f"service:ticket:{ticket.id}:opened", at,
                                {"ticket": ticket.number, "subject": ticket.subject, "channel": ticket.channel,
                                 "priority": ticket.priority})
            else:
                m = what[0]
                timeline.record(s, m.conversation.customer_id, timeline.RECEIVED, f"service:message:{m.id}", m.at,
                                {"ticket": m.conversation.ticket.number, "channel": m.conversation.channel,
                                 "text": timeline.excerpt(m.data.body)})
        emit_many(s, [(topic, t.customer_id, _payload(topic, t, m)) for topic, t, m in self.outbox])
        for ticket in (*touched, *self.made):
            ticket.touched = ticket.routed = False
            self.tickets[ticket.id] = ticket
        for conversation in new_conversations:
            conversation.new = False
        self.messages, self.made = [], []
        self.changes, self.clocks, self.jobs, self.events, self.outbox = [], [], [], [], []

    def _insert_tickets(self) -> None:
        s = self.session
        if not self.made:
            return
        numbers = ticket_numbers(s, len(self.made))
        for ticket, number in zip(self.made, numbers, strict=True):
            ticket.number = f"TK-{number:06d}"
        _returning(s, Ticket, self.made, lambda t: {
            "number": t.number, "customer_id": t.customer_id, "subject": t.subject, "status": "new",
            "priority": t.priority, "priority_rank": PRIORITY_RANK[t.priority], "vip": t.vip, "type": None,
            "tags": [], "fields": self.fields, "channel": t.channel, "inbox_id": t.inbox_id,
            "language": t.language, "assignee_id": t.assignee_id, "team_id": t.team_id,
            "assignment_reason": t.assignment_reason, "assigned_at": t.assigned_at, "created_by_id": None,
            "status_changed_at": t.created_at, "last_customer_message_at": t.last_customer_message_at,
            "created_at": t.created_at, "updated_at": self.now})

    def _clocks_and_jobs(self) -> None:
        s, now = self.session, self.now
        started: list[tuple[_Ticket, Any, dict]] = []
        for ticket, metric, at in self.clocks:
            clock = sla.clock(s, ticket, metric, at)
            if clock is not None:
                started.append((ticket, *clock))
        _returning(s, SlaTimer, started, lambda row: row[2])
        by_ticket: dict[int, list] = {}
        for ticket, policy, values in started:
            by_ticket.setdefault(id(ticket), []).append((policy, values))
        specs = []
        for kind, ticket in dict.fromkeys(self.jobs):  # a ticket's clocks once, in the order first asked
            if kind == "clocks":
                for policy, values in by_ticket.pop(id(ticket), []):
                    specs += sla.jobs_for(values["id"], values["due_at"], policy, now)
            else:
                at = ticket.assigned_at.isoformat()
                specs.append({"kind": REOFFER_KIND, "args": {"ticket_id": ticket.id, "assigned_at": at},
                              "run_at": now + timedelta(minutes=self.pool.settings.reoffer_minutes),
                              "unique_key": f"{REOFFER_KIND}:{ticket.id}:{at}", "max_attempts": 5})
        enqueue_each(s, specs, now)


def _payload(topic: str, ticket: _Ticket, message: _Message | None) -> dict[str, Any]:
    if topic == "service.ticket_opened":
        return {"ticket_id": ticket.id, "number": ticket.number, "channel": ticket.channel, "priority": ticket.priority}
    if topic == "service.ticket_assigned":
        return {"ticket_id": ticket.id, "number": ticket.number, "assignee_id": ticket.assignee_id,
                "reason": ticket.assignment_reason}
    return {"ticket_id": ticket.id, "message_id": message.id, "channel": message.conversation.channel}


def _returning(session: Session, model, items: list, values) -> None:
    """INSERT one row per item (values(item) -> the row) and give each item its new id, in order.

    PostgreSQL: the ids are drawn from the table's sequence first (one statement) and the rows sent with one
    prepared executemany; a multi-row INSERT ... RETURNING of a few hundred rows costs more to build and parse
    than to run. SQLite: INSERT ... RETURNING, sorted by parameter order."""
    if not items:
        return
    table = model.__table__
    rows = [values(item) for item in items]
    if session.get_bind().dialect.name == "postgresql":
        ids = sorted(session.scalars(sa.select(sa.func.nextval(sa.func.pg_get_serial_sequence(table.name, "id")))
                                     .select_from(sa.func.generate_series(1, len(rows)))))
        for row, new_id in zip(rows, ids, strict=True):
            row["id"] = new_id
        columns = list(rows[0])
        insert_rows(session, table, columns, [tuple(row[c] for c in columns) for row in rows])
    else:
        ids = session.execute(sa.insert(table).returning(table.c.id, sort_by_parameter_order=True),
                              rows).scalars().all()
        for row, new_id in zip(rows, ids, strict=True):
            row["id"] = new_id
    for item, row in zip(items, rows, strict=True):
        if not isinstance(item, tuple):
            item.id = row["id"]
