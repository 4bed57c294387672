"""Tickets: numbers, the audit, custom fields, notes with @mentions, merge, orders, the customer's timeline."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from clm.lib.errors import FieldError
from clm.outbox.models import OutboxEvent
from clm.sales.models import Task
from clm.sales.tasks import TaskIn
from clm.service import audit
from clm.service.conversations import InboundIn, ReplyIn, receive, reply
from clm.service.errors import ServiceConflict
from clm.service.tasks import task_for_ticket
from clm.service.tickets import (
    FieldIn,
    TicketIn,
    TicketUpdate,
    add_note,
    find_ticket,
    merge_tickets,
    open_ticket,
    open_tickets_of,
    save_field,
    update_ticket,
)
from clm.tracking.models import Event
from tests.customers.shop import T0


def outbox(db, topic: str) -> list[dict]:
    return [r.payload for r in db.scalars(sa.select(OutboxEvent).where(OutboxEvent.topic == topic)
                                          .order_by(OutboxEvent.id))]


def test_tickets_get_readable_numbers_that_never_repeat(db, shop):
    customer = shop.customer("Nguyễn Văn An")
    first = open_ticket(db, TicketIn(customer_id=customer.id, subject="Giao hàng chậm", route=False), now=T0)
    second = open_ticket(db, TicketIn(customer_id=customer.id, subject="Đổi size", route=False), now=T0)
    assert first.number.startswith("TK-") and len(first.number) == 9
    assert int(second.number[3:]) == int(first.number[3:]) + 1
    assert find_ticket(db, second.number.lower()).id == second.id


def test_every_change_is_audited_with_who_what_and_when(db, shop, make_agent):
    customer = shop.customer("Trần Thị Bình")
    boss = make_agent("Hà", role="manager")
    ticket = open_ticket(db, TicketIn(customer_id=customer.id, subject="Hoàn tiền", route=False), now=T0)
    update_ticket(db, ticket.id, TicketUpdate(priority="high", tags=["Hoàn tiền", "vip"], status="on_hold"),
                  by=boss.id, now=T0 + timedelta(minutes=5))
    changes = {(c.field, str(c.old), str(c.new), c.user_id) for c in audit.history(db, ticket.id)}
    assert ("priority", "normal", "high", boss.id) in changes
    assert ("tags", "[]", "['hoàn tiền', 'vip']", boss.id) in changes
    assert ("status", "new", "on_hold", boss.id) in changes
    assert [c.new for c in audit.history(db, ticket.id, "status")] == ["new", "on_hold"]


def test_custom_fields_are_checked_against_their_definitions(db, shop):
    customer = shop.customer("Lê Văn Cường")
    save_field(db, FieldIn(key="order_ref", kind="text"))
    save_field(db, FieldIn(key="refund_amount", kind="number"))
    save_field(db, FieldIn(key="delivered_on", kind="date"))
    save_field(db, FieldIn(key="reason", kind="choice", choices=["damaged", "late", "wrong item"], required=True))
    data = {"customer_id": customer.id, "subject": "Hàng lỗi", "route": False}
    with pytest.raises(FieldError) as err:
        open_ticket(db, TicketIn(**data, fields={"order_ref": "SO-1"}))
    assert err.value.field == "fields.reason" and "required" in err.value.message
    for bad, field in (({"reason": "bored"}, "fields.reason"), ({"reason": "late", "refund_amount": "lots"},
                                                                 "fields.refund_amount"),
                       ({"reason": "late", "delivered_on": "31/12/2025"}, "fields.delivered_on"),
                       ({"reason": "late", "colour": "red"}, "fields.colour")):
        with pytest.raises(FieldError) as err:
            open_ticket(db, TicketIn(**data, fields=bad))
        assert err.value.field == field
    ticket = open_ticket(db, TicketIn(**data, fields={"reason": "damaged", "refund_amount": 150000,
                                                       "delivered_on": "2025-03-01"}))
    assert ticket.fields == {"reason": "damaged", "refund_amount": 150000, "delivered_on": "2025-03-01"}


def test_a_note_mentions_staff_by_email_or_name_and_tells_them(db, shop, make_agent):
    customer = shop.customer("Phạm Thị Dung")
    lan, minh = make_agent("Lan"), make_agent("Minh")
    ticket = open_ticket(db, TicketIn(customer_id=customer.id, subject="Khiếu nại", route=False), now=T0)
    local = lan.email.split("@")[0]
    note = add_note(db, ticket.id, f"@{local} xem giúp, cc @{minh.email}; khách ghi a@b.vn và @nobody", by=minh.id)
    assert [u.id for u in note.users] == sorted([lan.id, minh.id])
    assert note.note.mentions == sorted([lan.id, minh.id])
    assert sorted(p["user_id"] for p in outbox(db, "service.mentioned")) == sorted([lan.id, minh.id])
    with pytest.raises(FieldError) as err:
        add_note(db, ticket.id, "   ")
    assert err.value.field == "body"


def test_merging_moves_messages_notes_and_tasks_and_closes_the_source(db, shop, zalo):
    customer = shop.customer("Võ Văn Em")
    first = receive(db, InboundIn(inbox_id=zalo.id, customer_id=customer.id, body="Đơn của tôi đâu?",
                                  thread_key="a"), now=T0).ticket
    second = receive(db, InboundIn(inbox_id=zalo.id, customer_id=customer.id, body="Tôi hỏi lại đơn hàng",
                                   thread_key="b"), now=T0 + timedelta(minutes=1)).ticket
    add_note(db, second.id, "trùng với phiếu trước")
    task_for_ticket(db, TaskIn(subject="Gọi lại", due_at=T0 + timedelta(hours=2)), second.id, now=T0)
    target = merge_tickets(db, second.id, first.id, now=T0 + timedelta(minutes=2))
    db.expire_all()
    source = find_ticket(db, second.number)
    assert source.status == "closed" and source.merged_into_id == target.id
    assert db.scalar(sa.select(sa.func.count()).select_from(Task).where(Task.ticket_id == target.id)) == 1
    from clm.service.tickets import ticket_detail

    detail = ticket_detail(db, target)
    assert len(detail["messages"]) == 2 and len(detail["notes"]) == 1
    # A reply to the merged ticket's thread lands on the target.
    again = receive(db, InboundIn(inbox_id=zalo.id, customer_id=customer.id, body="còn nữa", thread_key="b"),
                    now=T0 + timedelta(minutes=3))
    assert again.ticket.id == target.id


def test_tickets_of_different_customers_do_not_merge(db, shop):
    a, b = shop.customer("A"), shop.customer("B")
    ta = open_ticket(db, TicketIn(customer_id=a.id, subject="x", route=False))
    tb = open_ticket(db, TicketIn(customer_id=b.id, subject="y", route=False))
    with pytest.raises(ServiceConflict) as err:
        merge_tickets(db, ta.id, tb.id)
    assert err.value.code == "other_customer"
    with pytest.raises(ServiceConflict):
        merge_tickets(db, ta.id, ta.id)


def test_a_ticket_links_to_an_order_of_its_own_customer_only(db, shop):
    customer, other = shop.customer("Đỗ Thị Giang"), shop.customer("Bùi Văn Hải")
    order = shop.order(customer, 350_000)
    stranger = shop.order(other, 100_000)
    ticket = open_ticket(db, TicketIn(customer_id=customer.id, subject="Hàng lỗi", order_id=order.id, route=False))
    assert ticket.order_id == order.id
    with pytest.raises(FieldError) as err:
        update_ticket(db, ticket.id, TicketUpdate(order_id=stranger.id))
    assert err.value.field == "order_id"


def test_tickets_and_messages_are_on_the_customers_timeline_once(db, shop, zalo, make_agent):
    customer = shop.customer("Ngô Thị Hoa")
    agent = make_agent("Lan")
    received = receive(db, InboundIn(inbox_id=zalo.id, customer_id=customer.id, body="Cho hỏi giờ mở cửa",
                                     external_id="zalo:m1"), now=T0)
    again = receive(db, InboundIn(inbox_id=zalo.id, customer_id=customer.id, body="Cho hỏi giờ mở cửa",
                                  external_id="zalo:m1"), now=T0)
    assert not again.created and again.message.id == received.message.id
    reply(db, received.ticket.id, ReplyIn(body="Dạ 8h-22h ạ"), by=agent.id, now=T0 + timedelta(minutes=3))
    update_ticket(db, received.ticket.id, TicketUpdate(status="solved"), now=T0 + timedelta(minutes=4))
    names = list(db.scalars(sa.select(Event.name).where(Event.customer_id == customer.id, Event.name.like("Ticket%"))
                            .order_by(Event.timestamp, Event.id)))
    assert names == ["Ticket Opened", "Ticket Message Received", "Ticket Reply Sent", "Ticket Solved"]
    assert open_tickets_of(db, customer.id) == []


def test_a_closed_ticket_stays_closed_and_a_new_message_opens_a_new_one(db, shop, zalo):
    customer = shop.customer("Lý Văn Khoa")
    first = receive(db, InboundIn(inbox_id=zalo.id, customer_id=customer.id, body="hỏi"), now=T0).ticket
    update_ticket(db, first.id, TicketUpdate(status="closed"))
    with pytest.raises(ServiceConflict):
        update_ticket(db, first.id, TicketUpdate(status="open"))
    later = receive(db, InboundIn(inbox_id=zalo.id, customer_id=customer.id, body="hỏi tiếp"),
                    now=T0 + timedelta(days=1)).ticket
    assert later.id != first.id and later.status == "new"
