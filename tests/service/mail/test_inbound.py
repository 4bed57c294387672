"""Inbound mail onto tickets: the right customer, threading, loops, quarantine, attachments (SQLite and PostgreSQL)."""

from email.message import EmailMessage

import sqlalchemy as sa

from clm.channels.models import Message as OutboxMessage
from clm.channels.models import Suppression
from clm.customers.models import Customer, Identity
from clm.jobs.models import Job
from clm.service.conversations import InboxIn, ReplyIn, reply, save_inbox
from clm.service.mail import ids
from clm.service.mail.inbound import accept, release
from clm.service.mail.models import Attachment, Quarantined
from clm.service.models import Message, Ticket
from tests.service.mail.conftest import SHOP_ADDRESS, T0, sample


def take(db, settings, raw, **kw):
    return accept(db, raw, settings=settings, now=kw.pop("now", T0), **kw)


def mail(sender, subject, body="Xin chào", *, message_id, in_reply_to=None, references=None, cc=None, **headers):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = sender, SHOP_ADDRESS, subject, message_id
    if cc:
        m["Cc"] = cc
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
    if references:
        m["References"] = references
    for name, value in headers.items():
        m[name.replace("_", "-")] = value
    m.set_content(body)
    return m.as_bytes()


def test_a_new_mail_opens_a_ticket_on_a_new_customer_found_by_email_next_time(db, mail_settings, mailbox):
    first = take(db, mail_settings, sample("outlook_windows1258.eml"))
    assert first.status == "stored" and first.threaded_by is None
    ticket = db.get(Ticket, first.ticket_id)
    customer = db.get(Customer, ticket.customer_id)
    assert (customer.email, customer.full_name) == ("an.nguyen@outlook.com.vn", "Nguyễn Văn An")
    assert ticket.subject == "Chưa nhận được xác nhận đơn hàng" and ticket.channel == "email"
    assert ticket.inbox_id == mailbox.id
    message = db.get(Message, first.message_id)
    assert message.meta["message_id"] == "<AM0PR02MB1234ABCD5678EF90@AM0PR02MB1234.eurprd02.prod.outlook.com>"
    assert "<p>Chào shop,</p>" in message.html
    other = take(db, mail_settings, mail("An <an.nguyen@outlook.com.vn>", "Another question", message_id="<q2@x.vn>"))
    assert db.get(Ticket, other.ticket_id).customer_id == customer.id
    assert other.ticket_id != first.ticket_id  # a new mail (not a reply) is a new ticket


def test_the_same_mail_delivered_twice_is_stored_once(db, mail_settings, mailbox):
    raw = sample("gmail_utf8_attachment.eml")
    first, again = take(db, mail_settings, raw), take(db, mail_settings, raw)
    assert again.status == "duplicate" and again.message_id == first.message_id
    assert db.scalar(sa.select(sa.func.count()).select_from(Attachment)) == 1


def test_attachments_are_stored_with_the_message(db, mail_settings, mailbox):
    outcome = take(db, mail_settings, sample("gmail_utf8_attachment.eml"))
    message = db.get(Message, outcome.message_id)
    [entry] = message.attachments
    stored = db.get(Attachment, entry["id"])
    assert (stored.filename, stored.content_type, stored.size) == ("hóa đơn.pdf", "application/pdf", entry["size"])
    assert stored.data.startswith(b"%PDF-1.4") and stored.customer_id == message.customer_id


def test_the_customers_answer_to_our_signed_message_id_threads_into_the_ticket(db, mail_settings, mailbox, make_agent):
    agent = make_agent("Lan")
    first = take(db, mail_settings, sample("gmail_utf8_attachment.eml"))
    answer = reply(db, first.ticket_id, ReplyIn(body="Dạ shop đổi giúp chị ạ"), by=agent.id, now=T0)
    signed = ids.make(ids.key(mail_settings), first.ticket_id, answer.id, "shop.example.vn")
    again = take(db, mail_settings, mail("bich.tran@gmail.com", "Re: Đổi size áo", "Cảm ơn shop",
                                         message_id="<r1@gmail.com>", in_reply_to=signed,
                                         references=f"<CAF1x2y3Z-4a5B6c7D8e9F0g1H2i3J4k5L6m7N8o9P0q1R2s3@mail.gmail.com> {signed}"))
    assert (again.status, again.ticket_id, again.threaded_by) == ("stored", first.ticket_id, "signed message id")


def test_a_forged_signature_does_not_thread(db, mail_settings, mailbox):
    first = take(db, mail_settings, sample("gmail_utf8_attachment.eml"))
    forged = f"<clm.t{first.ticket_id}.m1.00000000000000000000@shop.example.vn>"
    other = take(db, mail_settings, mail("stranger@evil.example", "Re: hi", message_id="<f1@evil.example>",
                                         in_reply_to=forged))
    assert other.ticket_id != first.ticket_id and other.threaded_by is None


def test_the_ticket_number_in_the_subject_threads_only_for_the_customer_or_a_cc(db, mail_settings, mailbox):
    first = take(db, mail_settings, sample("gmail_utf8_attachment.eml"))
    number = db.get(Ticket, first.ticket_id).number
    own = take(db, mail_settings, mail("Bich.Tran@gmail.com", f"Bổ sung [{number}]", message_id="<s1@gmail.com>"))
    cc = take(db, mail_settings, mail("minh.le@gmail.com", f"Re: [{number}]", message_id="<s2@gmail.com>"))
    stranger = take(db, mail_settings, mail("ke.la@example.com", f"About {number}", message_id="<s3@example.com>"))
    assert own.ticket_id == first.ticket_id and own.threaded_by == "ticket number in the subject"
    assert cc.ticket_id == first.ticket_id
    assert stranger.ticket_id != first.ticket_id
    assert db.get(Ticket, stranger.ticket_id).customer_id != db.get(Ticket, first.ticket_id).customer_id


def test_a_reply_to_a_closed_ticket_opens_a_new_one(db, mail_settings, mailbox):
    from clm.service.tickets import TicketUpdate, update_ticket

    first = take(db, mail_settings, sample("gmail_utf8_attachment.eml"))
    update_ticket(db, first.ticket_id, TicketUpdate(status="closed"), now=T0)
    number = db.get(Ticket, first.ticket_id).number
    later = take(db, mail_settings, mail("bich.tran@gmail.com", f"Re: [{number}]", message_id="<late@gmail.com>"))
    assert later.status == "stored" and later.ticket_id != first.ticket_id


def test_auto_replies_bulk_mail_and_loops_open_nothing_and_are_kept_with_why(db, mail_settings, mailbox):
    before = db.scalar(sa.select(sa.func.count()).select_from(Ticket))
    outcomes = [take(db, mail_settings, sample(n)) for n in (
        "outlook_out_of_office.eml", "x_autoreply_vacation.eml", "newsletter_precedence_bulk.eml")]
    own = take(db, mail_settings, mail(SHOP_ADDRESS, "echo", message_id="<own@shop.example.vn>"))
    save_inbox(db, InboxIn(name="Bán hàng", channel="email", address="sales@shop.example.vn"))
    inbox_echo = take(db, mail_settings, mail("sales@shop.example.vn", "echo", message_id="<own2@shop.example.vn>"))
    null_path = take(db, mail_settings, sample("outlook_windows1258.eml"), envelope_from="")
    assert [o.status for o in [*outcomes, own, inbox_echo, null_path]] == ["automatic"] * 6
    assert own.reason == "mail from clm's own address (a loop)"
    assert db.scalar(sa.select(sa.func.count()).select_from(Ticket)) == before
    held = db.get(Quarantined, outcomes[0].quarantine_id)
    assert held.reason == "Auto-Submitted: auto-generated" and held.raw == sample("outlook_out_of_office.eml")


def test_a_delivery_report_suppresses_the_dead_address_and_opens_nothing(db, mail_settings, mailbox):
    outcome = take(db, mail_settings, sample("bounce_dsn.eml"))
    assert outcome.status == "automatic"
    assert db.scalar(sa.select(Suppression.reason).where(Suppression.address == "khong-ton-tai@gmail.com")) == \
        "hard_bounce"


def test_malformed_mail_is_quarantined_once_with_the_reason_never_lost(db, mail_settings, mailbox):
    for name, reason in [("broken_mime_no_boundary.eml", "broken MIME"), ("unknown_charset.eml", "unknown charset"),
                         ("missing_from.eml", "missing From")]:
        outcome = take(db, mail_settings, sample(name))
        again = take(db, mail_settings, sample(name))
        assert outcome.status == "malformed" and reason in outcome.reason
        assert again.quarantine_id == outcome.quarantine_id
        assert db.get(Quarantined, outcome.quarantine_id).raw == sample(name)


def test_an_attachment_over_the_limit_quarantines_the_mail(db, mail_settings, mailbox):
    small = mail_settings.model_copy(update={"mail_max_attachment_bytes": 40})
    outcome = take(db, small, sample("gmail_utf8_attachment.eml"))
    assert outcome.status == "malformed" and "over the limit" in outcome.reason


def test_a_released_auto_reply_becomes_a_message(db, mail_settings, mailbox):
    held = take(db, mail_settings, sample("x_autoreply_vacation.eml"))
    outcome = release(db, held.quarantine_id, settings=mail_settings, now=T0)
    assert outcome.status == "stored"
    assert db.get(Quarantined, held.quarantine_id).ticket_id == outcome.ticket_id


def test_the_acknowledgement_is_automatic_and_rate_limited(db, mail_settings, mailbox):
    acking = mail_settings.model_copy(update={"mail_auto_ack": True, "mail_auto_per_recipient": 2})
    outcomes = [take(db, acking, mail("Chi <chi@example.com>", f"Hỏi {i}", message_id=f"<a{i}@example.com>"))
                for i in range(3)]
    acks = list(db.scalars(sa.select(OutboxMessage).where(OutboxMessage.template_key == "service.auto")
                           .order_by(OutboxMessage.id)))
    assert len(acks) == 2  # the third mail within the hour gets none
    first = acks[0]
    ticket = db.get(Ticket, outcomes[0].ticket_id)
    assert first.data["headers"]["Auto-Submitted"] == "auto-replied"
    assert first.subject == f"Re: Hỏi 0 [{ticket.number}]" and ticket.number in first.text
    assert first.address == "chi@example.com" and first.status == "queued"
    assert db.scalar(sa.select(sa.func.count()).select_from(Job).where(Job.kind == "channels.send")) == 2


def test_an_email_identity_of_an_existing_customer_is_used(db, mail_settings, mailbox, shop):
    customer = shop.customer("Lan")
    db.add(Identity(customer_id=customer.id, kind="email", value="lan.work@example.com", verified=False,
                    created_at=T0))
    db.flush()
    outcome = take(db, mail_settings, mail("lan.work@example.com", "Hello", message_id="<w1@example.com>"))
    assert db.get(Ticket, outcome.ticket_id).customer_id == customer.id
