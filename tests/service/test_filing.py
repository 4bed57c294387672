"""Filing a batch of inbound messages (clm.service.filing, through the worker's step clm.service.inbound.process)
writes what receiving each message one by one (conversations.receive) writes: the same tickets (numbers,
subjects, assignees and reasons, teams, times), conversations, messages, audit rows, SLA clocks and their
jobs, re-offer jobs, timeline events, outbox events and agents' last assignment; on random messages over
new and stored conversations, threads, open, assigned, queued, solved and answered tickets, follow-up and
owner routing, a team rule, agents at capacity, busy or offline, an SLA policy, a switched-off inbox and
message ids sent twice."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clm.customers.models import Customer
from clm.jobs.models import Job
from clm.lib.errors import FieldError, NotFound
from clm.outbox.models import OutboxEvent
from clm.service import inbound, snapshot, timeline
from clm.service.agents import AgentIn, TeamIn, save_agent, save_team
from clm.service.conversations import InboundIn, InboxIn, receive, save_inbox
from clm.service.errors import ServiceConflict
from clm.service.models import Agent, Change, Conversation, Message, SlaTimer, Ticket
from clm.service.routing import Pool, RoutingSettings, RuleIn, lock_routing, save_routing_settings, save_rule
from clm.service.sla import PolicyIn, save_policy
from clm.tracking.models import Event
from tests.service.conftest import T0

NOW = T0 + timedelta(days=3, hours=2)
INBOXES = ("zalo", "messenger", "off")

a_message = st.tuples(st.integers(0, 4), st.sampled_from(INBOXES), st.sampled_from([None, "a", "b"]),
                      st.integers(-120, 0), st.booleans())
a_shape = st.fixed_dictionaries({
    "follow_up_days": st.sampled_from([0, 7]),
    "reoffer_minutes": st.sampled_from([0, 30]),
    "sla": st.sampled_from([True, True, False]),
    "capacity": st.integers(1, 3),
})


def _setup(db, make_agent, shape):
    lan = make_agent("Lan", capacity=shape["capacity"])
    minh = make_agent("Minh", capacity=shape["capacity"])
    hoa = make_agent("Hoa", availability="busy")
    make_agent("An", availability="offline")
    team = save_team(db, TeamIn(name="Messenger", members=[minh.id, hoa.id]))
    save_rule(db, RuleIn(team_id=team.id, channel="messenger"))
    save_routing_settings(db, RoutingSettings(follow_up_days=shape["follow_up_days"],
                                              reoffer_minutes=shape["reoffer_minutes"]))
    if shape["sla"]:
        save_policy(db, PolicyIn(name="Chuẩn", first_response_minutes=60, next_response_minutes=30,
                                 resolution_minutes=480, warn_before_minutes=10))
    inboxes = {"zalo": save_inbox(db, InboxIn(name="Zalo OA", channel="zalo", language="vi")),
               "messenger": save_inbox(db, InboxIn(name="Fanpage", channel="messenger")),
               "off": save_inbox(db, InboxIn(name="Old OA", channel="zalo", active=False))}
    customers = [Customer(traits={"name": f"Khách {i}"}, search_text="", created_at=T0, updated_at=T0)
                 for i in range(6)]  # not through the shop: its ingestion commits, the example must roll back
    db.add_all(customers)
    db.flush()
    customers[1].owner_id, customers[4].owner_id = lan.id, minh.id
    pool = Pool.load_all(db)
    stored = []
    for i, (who, box, thread, minutes) in enumerate([(0, "zalo", "a", -3000), (0, "messenger", "b", -1000),
                                                     (1, "zalo", None, -2000), (2, "messenger", "a", -1500),
                                                     (3, "zalo", "b", -500)]):
        stored.append(receive(db, InboundIn(inbox_id=inboxes[box].id, customer_id=customers[who].id,
                                            body=f"Cũ {i}", thread_key=thread, external_id=f"old-{i}",
                                            at=NOW + timedelta(minutes=minutes)), NOW + timedelta(minutes=minutes),
                              pool=pool).ticket)
    stored[0].assignee_id = lan.id  # follow-up: the latest of two agents
    stored[1].assignee_id = minh.id
    stored[2].status = "solved"  # the customer writes again: reopened, one by one
    stored[3].last_agent_reply_at, stored[3].status = NOW - timedelta(minutes=900), "open"  # a next-response clock
    stored[4].assignee_id = None  # a queued ticket: routed when the customer writes
    save_agent(db, hoa.id, AgentIn(availability="busy", capacity=8))
    db.flush()
    return inboxes, customers, lan


def _messages(inboxes, customers, plan):
    out = []
    for n, (who, box, thread, minutes, repeat) in enumerate(plan):
        external = f"old-{who}" if repeat and n % 3 == 0 else f"m-{n}"
        out.append(InboundIn(inbox_id=inboxes[box].id, customer_id=customers[who].id, body=f"Tin nhắn {n} <b>x</b>",
                             thread_key=thread, external_id=external, at=NOW + timedelta(minutes=minutes)))
    return out


def _one_by_one(db, messages):
    """What the worker step did before batches were filed together: receive each message in a savepoint."""
    lock_routing(db)
    pool = Pool.load_all(db)
    with timeline.batched(db), snapshot.held(db):
        for data in messages:
            mark = timeline.batch_mark(db)
            try:
                with db.begin_nested():
                    receive(db, data, NOW, pool=pool)
            except (FieldError, NotFound, ServiceConflict):  # recorded on the row by process(), which goes on
                timeline.batch_undo(db, mark)
                pool = Pool.load_all(db)
    db.flush()


def _batch(db, messages):
    for data in messages:
        inbound.accept(db, "api", data.external_id, data.model_dump(mode="json"), now=NOW)
    assert inbound.process(db, NOW) == len({m.external_id for m in messages})  # a resend is stored once


def _marks(db):
    return {m: db.scalar(sa.select(sa.func.coalesce(sa.func.max(m.id), 0)))
            for m in (Ticket, Conversation, Message, Change, SlaTimer, Job, OutboxEvent, Event)}


def _snapshot(db, marks):
    db.flush()
    db.expire_all()
    refs: dict[tuple, object] = {}

    def ref(model, value):
        if value is None or value <= marks[model]:
            return value
        return refs.setdefault((model, value), (model.__tablename__, sum(1 for k in refs if k[0] is model)))

    for model in (Ticket, Conversation, Message, SlaTimer):
        for new_id in db.scalars(sa.select(model.id).where(model.id > marks[model]).order_by(model.id)):
            ref(model, new_id)
    numbers = {t.number: ref(Ticket, t.id) if t.id > marks[Ticket] else t.number for t in db.scalars(sa.select(Ticket))}
    tickets = [(ref(Ticket, t.id), numbers[t.number], t.customer_id, t.subject, t.status, t.priority, t.vip, t.channel,
                t.inbox_id, t.language, t.assignee_id, t.team_id, t.assignment_reason, t.assigned_at,
                t.last_customer_message_at, t.last_agent_reply_at, t.status_changed_at, t.created_at, t.updated_at,
                t.fields, t.tags) for t in db.scalars(sa.select(Ticket).order_by(Ticket.id))]
    conversations = [(ref(Conversation, c.id), ref(Ticket, c.ticket_id), c.inbox_id, c.customer_id, c.channel,
                      c.thread_key, c.last_message_at, c.created_at)
                     for c in db.scalars(sa.select(Conversation).order_by(Conversation.id))]
    messages = [(ref(Message, m.id), ref(Conversation, m.conversation_id), ref(Ticket, m.ticket_id), m.customer_id,
                 m.direction, m.body, m.external_id, m.attachments, m.created_at)
                for m in db.scalars(sa.select(Message).where(Message.id > marks[Message]).order_by(Message.id))]
    changes = [(ref(Ticket, c.ticket_id), c.customer_id, c.user_id, c.actor, c.field, c.values, c.reason, c.at)
               for c in db.scalars(sa.select(Change).where(Change.id > marks[Change]).order_by(Change.id))]
    timers = [(ref(SlaTimer, t.id), ref(Ticket, t.ticket_id), t.policy_id, t.metric, t.target_minutes, t.started_at,
               t.due_at, t.state, t.explanation)
              for t in db.scalars(sa.select(SlaTimer).where(SlaTimer.id > marks[SlaTimer]).order_by(SlaTimer.id))]
    jobs = []
    for j in db.scalars(sa.select(Job).where(Job.id > marks[Job]).order_by(Job.id)):
        args = dict(j.args)
        first = "timer_id" if "timer_id" in args else "ticket_id"
        assert j.unique_key == f"{j.kind}:{args[first]}:{args.get('due_at') or args.get('assigned_at')}"
        args[first] = ref(SlaTimer if first == "timer_id" else Ticket, args[first])
        jobs.append((j.kind, args, j.scheduled_at, j.max_attempts, j.state))
    outbox = []
    for e in db.scalars(sa.select(OutboxEvent).where(OutboxEvent.id > marks[OutboxEvent]).order_by(OutboxEvent.id)):
        payload = dict(e.payload)
        for key, model in (("ticket_id", Ticket), ("message_id", Message)):
            if key in payload:
                payload[key] = ref(model, payload[key])
        if "number" in payload:
            payload["number"] = numbers[payload["number"]]
        outbox.append((e.topic, e.customer_id, payload))
    events = []
    by_message = {f"service:message:{m}": ("message", ref(Message, m)) for m in db.scalars(sa.select(Message.id))}
    by_message |= {f"service:ticket:{t}:opened": ("opened", ref(Ticket, t)) for t in db.scalars(sa.select(Ticket.id))}
    for e in db.scalars(sa.select(Event).where(Event.id > marks[Event]).order_by(Event.id)):
        props = dict(e.properties)
        props["ticket"] = numbers.get(props.get("ticket"), props.get("ticket"))
        events.append((e.customer_id, e.name, by_message[e.message_id], props, e.timestamp))
    agents = sorted((a.user_id, a.last_assigned_at) for a in db.scalars(sa.select(Agent)))
    return {"tickets": tickets, "conversations": conversations, "messages": messages, "changes": changes,
            "timers": timers, "jobs": jobs, "outbox": outbox, "events": events, "agents": agents}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(shape=a_shape, plan=st.lists(a_message, min_size=1, max_size=14))
def test_a_batch_files_what_receiving_each_message_files(db, make_agent, shape, plan):
    outer = db.begin_nested()
    try:
        inboxes, customers, _ = _setup(db, make_agent, shape)
        messages = _messages(inboxes, customers, plan)
        marks = _marks(db)

        one_by_one = db.begin_nested()
        _one_by_one(db, messages)
        expected = _snapshot(db, marks)
        one_by_one.rollback()

        in_batch = db.begin_nested()
        _batch(db, messages)
        got = _snapshot(db, marks)
        in_batch.rollback()

        for name in expected:
            assert got[name] == expected[name], name
    finally:
        outer.rollback()


def test_the_batch_takes_first_messages_and_messages_on_open_tickets(db, shop, make_agent, zalo):
    """The common cases go through the batch, the rest one by one (the equivalence above holds either way;
    this says the batch is not idle)."""
    from clm.service.filing import Filer

    make_agent("Lan")
    a, b = shop.customer("Nguyễn Văn An"), shop.customer("Trần Thị Bình")
    lock_routing(db)
    pool = Pool.load_all(db)
    first = InboundIn(inbox_id=zalo.id, customer_id=a.id, body="Xin chào", external_id="z1", at=NOW)
    filer = Filer(db, NOW, pool, [first])
    with timeline.batched(db):
        assert filer.take(first) is not None
        filer.write()
    ticket = db.scalar(sa.select(Ticket).where(Ticket.customer_id == a.id))
    ticket.status = "solved"
    db.flush()
    again = InboundIn(inbox_id=zalo.id, customer_id=a.id, body="Còn hàng không?", external_id="z2", at=NOW)
    other = InboundIn(inbox_id=zalo.id, customer_id=b.id, body="Alo", external_id="z3", at=NOW)
    filer = Filer(db, NOW, pool, [again, other])
    assert filer.take(again) is None  # a solved ticket is reopened by receive
    assert filer.take(other) is not None
