"""Triggers (created, updated, time elapsed), canned replies with variables, macros."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from clm.jobs.models import Job
from clm.lib.errors import FieldError
from clm.sales.models import Task
from clm.service import automation
from clm.service.automation import MacroIn, TriggerIn, apply_macro, fire_elapsed, save_macro, save_trigger
from clm.service.automation_steps import changed_since, react
from clm.service.canned import CannedIn, render_canned, save_canned
from clm.service.conversations import InboundIn, receive
from clm.service.desk_models import TriggerRun
from clm.service.models import Change, Message
from clm.service.tickets import TicketIn, TicketUpdate, open_ticket, update_ticket
from tests.customers.shop import T0

HANOI = {"type": "profile", "field": "city", "op": "eq", "value": "Hà Nội"}


@pytest.fixture
def run(db, settings):
    """The worker step's work on every audit row written since the last call (and the given messages)."""
    seen = [0]

    def step(now, messages=()):
        rows = changed_since(db, seen[0])
        seen[0] = max([seen[0], *(r.id for r in rows)])
        react(db, rows, list(messages), settings, now)
        db.flush()

    return step


def test_a_created_trigger_acts_only_when_the_ticket_and_the_customer_match(db, shop, zalo, run):
    save_trigger(db, TriggerIn(name="Zalo Hà Nội gấp", event="created", conditions={
        "ticket": [{"field": "channel", "op": "eq", "value": "zalo"}], "customer": HANOI},
        actions=[{"type": "tag", "add": ["hà nội"]}, {"type": "set_priority", "priority": "high"}]))
    hanoi = shop.customer("Nguyễn Văn An", city="Hà Nội")
    saigon = shop.customer("Trần Thị Bình", city="Hồ Chí Minh")
    mine = open_ticket(db, TicketIn(customer_id=hanoi.id, subject="Đơn hàng", inbox_id=zalo.id, route=False), now=T0)
    other = open_ticket(db, TicketIn(customer_id=saigon.id, subject="Đơn hàng", inbox_id=zalo.id, route=False),
                        now=T0)
    run(T0)
    run(T0)  # the same rows again (a restarted worker): nothing fires twice
    db.expire_all()
    assert mine.tags == ["hà nội"] and mine.priority == "high" and mine.priority_rank == 2
    assert other.tags == [] and other.priority == "normal"
    audit = db.scalars(sa.select(Change).where(Change.ticket_id == mine.id, Change.field == "priority")).one()
    assert audit.actor == "automation" and audit.reason == "trigger: Zalo Hà Nội gấp"
    assert db.scalar(sa.select(sa.func.count()).select_from(TriggerRun)) == 1


def test_changes_made_by_triggers_set_off_no_other_trigger(db, shop, run):
    save_trigger(db, TriggerIn(name="escalate", event="updated", conditions={
        "ticket": [{"field": "priority", "op": "changed_to", "value": "urgent"}]},
        actions=[{"type": "tag", "add": ["escalated"]}]))
    save_trigger(db, TriggerIn(name="tagged", event="updated", conditions={
        "ticket": [{"field": "tags", "op": "changed"}]}, actions=[{"type": "set_priority", "priority": "low"}]))
    customer = shop.customer("Lê Văn Cường")
    ticket = open_ticket(db, TicketIn(customer_id=customer.id, subject="Hỏng hàng", route=False), now=T0)
    run(T0)
    update_ticket(db, ticket.id, TicketUpdate(priority="urgent"), now=T0 + timedelta(minutes=1))
    run(T0 + timedelta(minutes=1))
    run(T0 + timedelta(minutes=2))  # reads the trigger's own tag change: "tagged" must not answer it
    db.expire_all()
    assert ticket.tags == ["escalated"] and ticket.priority == "urgent"


def test_an_updated_trigger_hears_the_customer_write_again(db, shop, zalo, make_agent, run):
    lan = make_agent("Lan")
    save_trigger(db, TriggerIn(name="khách VIP nhắn", event="updated", conditions={
        "ticket": [{"field": "message", "op": "eq", "value": "in"}, {"field": "tags", "op": "contains",
                                                                      "value": "vip"}]},
        actions=[{"type": "notify", "to": "assignee", "text": "Khách VIP vừa nhắn"}]))
    customer = shop.customer("Phạm Thị Dung")
    first = receive(db, InboundIn(inbox_id=zalo.id, customer_id=customer.id, body="Chào shop", external_id="z1",
                                  at=T0))
    update_ticket(db, first.ticket.id, TicketUpdate(tags=["vip"]), by=lan.id, now=T0)
    run(T0)
    from clm.outbox.models import OutboxEvent

    again = receive(db, InboundIn(inbox_id=zalo.id, customer_id=customer.id, body="Sao chưa trả lời?",
                                  external_id="z2", at=T0 + timedelta(minutes=5)))
    messages = db.execute(sa.select(OutboxEvent.id, OutboxEvent.payload).where(
        OutboxEvent.topic == "service.message_received")).all()
    run(T0 + timedelta(minutes=5), messages)
    [note] = db.scalars(sa.select(OutboxEvent).where(OutboxEvent.topic == "service.notification"))
    assert note.payload["user_id"] == lan.id and note.payload["ticket_id"] == again.ticket.id


def test_an_elapsed_trigger_waits_on_the_job_queue_and_fires_only_if_nothing_happened_since(db, shop, run):
    save_canned(db, CannedIn(key="dong", title="Đóng yêu cầu", bodies={
        "vi": "Chào {{ customer.name }}, yêu cầu {{ ticket.number }} được đóng vì chưa nhận phản hồi.",
        "en": "Hi {{ customer.name }}, we closed {{ ticket.number }}."}))
    trigger = save_trigger(db, TriggerIn(name="hết chờ", event="elapsed", minutes=48 * 60, since="status_changed",
                                         conditions={"ticket": [{"field": "status", "op": "eq",
                                                                 "value": "pending_customer"}]},
                                         actions=[{"type": "reply", "canned": "dong"},
                                                  {"type": "set_status", "status": "solved"}]))
    customer = shop.customer("Võ Thị Em")
    quiet = open_ticket(db, TicketIn(customer_id=customer.id, subject="Bảo hành", route=False), now=T0)
    busy = open_ticket(db, TicketIn(customer_id=customer.id, subject="Đổi size", route=False), now=T0)
    for ticket in (quiet, busy):
        update_ticket(db, ticket.id, TicketUpdate(status="pending_customer"), now=T0 + timedelta(hours=1))
    run(T0 + timedelta(hours=1))
    job = db.scalars(sa.select(Job).where(Job.kind == automation.ELAPSED_KIND,
                                          Job.args["ticket_id"].as_integer() == quiet.id)).one()
    assert job.scheduled_at == T0 + timedelta(hours=49)
    update_ticket(db, busy.id, TicketUpdate(status="open"), now=T0 + timedelta(hours=2))
    busy_job = db.scalars(sa.select(Job).where(Job.kind == automation.ELAPSED_KIND,
                                               Job.args["ticket_id"].as_integer() == busy.id)).one()

    assert fire_elapsed(db, trigger.id, quiet.id, job.args["anchor"], T0 + timedelta(hours=30)) is None  # too early
    assert fire_elapsed(db, trigger.id, quiet.id, job.args["anchor"], T0 + timedelta(hours=49)) is not None
    assert fire_elapsed(db, trigger.id, busy.id, busy_job.args["anchor"], T0 + timedelta(hours=49)) is None
    db.expire_all()
    assert quiet.status == "solved" and busy.status == "open"
    [reply] = db.scalars(sa.select(Message).where(Message.ticket_id == quiet.id, Message.direction == "out"))
    assert reply.body == f"Chào Võ Thị Em, yêu cầu {quiet.number} được đóng vì chưa nhận phản hồi."


def test_a_macro_applies_its_actions_as_the_agent_who_clicked_it(db, shop, make_agent):
    lan = make_agent("Lan")
    save_canned(db, CannedIn(key="doi-hang", title="Đổi hàng", bodies={
        "vi": "Dạ {{ agent.name }} đã ghi nhận yêu cầu đổi hàng {{ ticket.number }} ạ."}))
    macro = save_macro(db, MacroIn(name="Đổi hàng", actions=[
        {"type": "tag", "add": ["đổi hàng"]}, {"type": "reply", "canned": "doi-hang"},
        {"type": "task", "subject": "Gọi xác nhận", "due_in_minutes": 120},
        {"type": "set_status", "status": "pending_customer"}]))
    customer = shop.customer("Đặng Văn Phúc")
    ticket = open_ticket(db, TicketIn(customer_id=customer.id, subject="Đổi size", assignee_id=lan.id), now=T0)
    outcome = apply_macro(db, macro.id, ticket.id, by=lan.id, now=T0 + timedelta(minutes=3))
    db.expire_all()
    assert len(outcome) == 4 and not any(o.startswith("skipped") for o in outcome)
    assert ticket.tags == ["đổi hàng"] and ticket.status == "pending_customer"
    [reply] = db.scalars(sa.select(Message).where(Message.ticket_id == ticket.id, Message.direction == "out"))
    assert reply.body == f"Dạ Lan đã ghi nhận yêu cầu đổi hàng {ticket.number} ạ." and reply.author_id == lan.id
    [task] = db.scalars(sa.select(Task).where(Task.ticket_id == ticket.id))
    assert task.assignee_id == lan.id and task.due_at == T0 + timedelta(minutes=123)
    tags = db.scalars(sa.select(Change).where(Change.ticket_id == ticket.id, Change.field == "tags")).one()
    assert tags.user_id == lan.id and tags.actor == "user" and tags.reason == "macro: Đổi hàng"


def test_an_action_that_cannot_be_done_is_recorded_and_the_others_still_happen(db, shop, make_agent):
    full = make_agent("Minh", capacity=1)
    customer = shop.customer("Bùi Thị Giang")
    open_ticket(db, TicketIn(customer_id=customer.id, subject="một", assignee_id=full.id), now=T0)
    ticket = open_ticket(db, TicketIn(customer_id=customer.id, subject="hai", route=False), now=T0)
    macro = save_macro(db, MacroIn(name="Cho Minh", actions=[{"type": "assign", "user_id": full.id},
                                                             {"type": "tag", "add": ["minh"]}]))
    outcome = apply_macro(db, macro.id, ticket.id, by=None, now=T0)
    db.expire_all()
    assert outcome[0].startswith("skipped assign") and ticket.assignee_id is None and ticket.tags == ["minh"]


@pytest.mark.parametrize(("data", "field"), [
    ({"conditions": {"ticket": [{"field": "colour", "op": "eq", "value": "red"}]}}, "conditions.ticket[0].field"),
    ({"conditions": {"ticket": [{"field": "status", "op": "changed"}]}}, "conditions.ticket[0].op"),
    ({"conditions": {"customer": {"type": "profile", "field": "city", "op": "between", "value": 1}}},
     "conditions.customer"),
    ({"actions": [{"type": "reply", "canned": "missing"}]}, "actions[0].canned"),
    ({"actions": [{"type": "set_priority", "priority": "asap"}]}, "actions[0].priority"),
    ({"event": "elapsed"}, "minutes"),
])
def test_a_trigger_that_cannot_work_is_refused_naming_the_field(db, data, field):
    body = {"name": "x", "event": "created", "actions": [{"type": "tag", "add": ["a"]}], **data}
    with pytest.raises(FieldError) as caught:
        save_trigger(db, TriggerIn(**body))
    assert caught.value.field.startswith(field)


def test_a_canned_reply_with_an_unknown_variable_is_refused_and_a_good_one_speaks_the_tickets_language(db, shop):
    with pytest.raises(FieldError) as caught:
        save_canned(db, CannedIn(key="sai", title="Sai", bodies={"vi": "Chào {{ khach.ten }}"}))
    assert caught.value.field == "bodies.vi"
    reply = save_canned(db, CannedIn(key="chao", title="Chào", bodies={"vi": "Chào {{ customer.given_name }}",
                                                                       "en": "Hello {{ customer.given_name }}"}))
    customer = shop.customer("Ngô Thị Hoa", first_name="Hoa")
    ticket = open_ticket(db, TicketIn(customer_id=customer.id, subject="Hi", language="en", route=False))
    assert render_canned(db, reply, ticket) == "Hello Hoa"
    assert render_canned(db, reply, ticket, language="vi") == "Chào Hoa"


def test_the_worker_step_reads_the_audit_and_the_messages_and_moves_on(db, shop, zalo, settings):
    from clm.service.automation_steps import AutomationConsumer

    save_trigger(db, TriggerIn(name="gắn thẻ zalo", event="created", actions=[{"type": "tag", "add": ["zalo"]}]))
    customer = shop.customer("Trịnh Văn Khoa")
    got = receive(db, InboundIn(inbox_id=zalo.id, customer_id=customer.id, body="Alo", external_id="k1", at=T0))
    step = AutomationConsumer(settings)
    assert step(db, T0) > 0
    db.expire_all()
    assert got.ticket.tags == ["zalo"]
    assert step(db, T0 + timedelta(seconds=1)) >= 0  # nothing new: no trigger fires again
    assert db.scalar(sa.select(sa.func.count()).select_from(TriggerRun)) == 1
