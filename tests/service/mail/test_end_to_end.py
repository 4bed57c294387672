"""The issue's end-to-end test: mail in over SMTP, the agent's reply out over SMTP, the answer threads back.

A real listener (aiosmtpd, `clm mail serve`'s) takes mail sent with smtplib; the reply goes through the
channels' outbox and send job to another real SMTP server (the sink), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest
import sqlalchemy as sa

from clm.channels.adapters.email import EmailAdapter
from clm.customers.models import Customer
from clm.jobs.runner import run_due
from clm.service.conversations import ReplyIn, reply
from clm.service.mail import ids
from clm.service.mail.listener import controller
from clm.service.mail.models import Quarantined
from clm.service.models import Message, Ticket
from tests.channels.conftest import Sink, free_port, start_smtp
from tests.channels.test_sending import registry_for
from tests.service.mail.conftest import SHOP_ADDRESS, sample


@pytest.fixture
def listener(session_factory, mail_settings):
    port = free_port()
    running = controller(session_factory, mail_settings, host="127.0.0.1", port=port)
    running.start()
    yield port
    running.stop()


@pytest.fixture
def sink():
    sink = Sink()
    server, port = start_smtp(sink)
    yield sink, f"smtp://127.0.0.1:{port}"
    server.stop()


def send(port: int, raw: bytes, sender: str, to: str = SHOP_ADDRESS) -> None:
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.sendmail(sender, [to], raw)


def tickets_of(db, email: str) -> list[Ticket]:
    db.expire_all()
    customer = db.scalar(sa.select(Customer).where(Customer.email == email))
    if customer is None:
        return []
    return list(db.scalars(sa.select(Ticket).where(Ticket.customer_id == customer.id).order_by(Ticket.id)))


def test_mail_becomes_a_ticket_the_reply_threads_out_and_the_answer_threads_back(
        db, session_factory, mail_settings, mailbox, make_agent, listener, sink):
    agent = make_agent("Lan")
    db.commit()
    # 1. The customer writes: a ticket on the customer found (here: made) by their email.
    send(listener, sample("gmail_utf8_attachment.eml"), "bich.tran@gmail.com")
    [ticket] = tickets_of(db, "bich.tran@gmail.com")
    assert ticket.subject == "Đổi size áo" and ticket.channel == "email"

    # 2. The agent answers; the worker's send job hands the reply to the mail server.
    received, url = sink
    settings = mail_settings.model_copy(update={"smtp_url": url})
    answer = reply(db, ticket.id, ReplyIn(body="Dạ shop đã đổi sang size L cho chị ạ."), by=agent.id,
                   settings=settings)
    db.commit()
    adapters = {"email": EmailAdapter(url, settings.email_from)}
    assert run_due(session_factory, registry_for(settings, adapters), "w") == 1
    [out] = received.messages
    assert out["To"] == "bich.tran@gmail.com"
    assert out["In-Reply-To"].strip() == "<CAF1x2y3Z-4a5B6c7D8e9F0g1H2i3J4k5L6m7N8o9P0q1R2s3@mail.gmail.com>"
    assert out["Subject"] == f"Re: Đổi size áo [{ticket.number}]"
    assert ids.read(ids.key(settings), out["Message-ID"].strip()) == ids.Signed(ticket.id, answer.id)
    assert out["References"].split() == [out["In-Reply-To"].strip()]  # the thread: the customer's one mail
    assert out.get_content().strip() == "Dạ shop đã đổi sang size L cho chị ạ."
    assert "Auto-Submitted" not in out  # a person's answer

    # 3. The customer answers from their mail client: In-Reply-To our Message-ID, the same ticket.
    answer_mail = EmailMessage()
    answer_mail["From"] = "Trần Thị Bích <bich.tran@gmail.com>"
    answer_mail["To"] = SHOP_ADDRESS
    answer_mail["Subject"] = "Re: " + out["Subject"]
    answer_mail["Message-ID"] = "<CAF-answer-2@mail.gmail.com>"
    answer_mail["In-Reply-To"] = out["Message-ID"].strip()
    answer_mail["References"] = f"{out['References'].strip()} {out['Message-ID'].strip()}"
    answer_mail.set_content("Cảm ơn shop nhiều!")
    send(listener, answer_mail.as_bytes(), "bich.tran@gmail.com")
    assert [t.id for t in tickets_of(db, "bich.tran@gmail.com")] == [ticket.id]
    bodies = list(db.scalars(sa.select(Message.body).where(Message.ticket_id == ticket.id).order_by(Message.id)))
    assert bodies[-1] == "Cảm ơn shop nhiều!" and len(bodies) == 3

    # 4. An out-of-office answer opens nothing and is kept with why.
    before = db.scalar(sa.select(sa.func.count()).select_from(Ticket))
    send(listener, sample("outlook_out_of_office.eml"), "huy.dang@congty.vn")
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(Ticket)) == before
    assert db.scalar(sa.select(Quarantined.reason).where(Quarantined.sender == "huy.dang@congty.vn")) == \
        "Auto-Submitted: auto-generated"


def test_the_listener_refuses_other_addresses_and_answers_451_when_it_cannot_store(
        db, session_factory, mail_settings, mailbox, listener):
    db.commit()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(listener, sample("outlook_windows1258.eml"), "an@outlook.com.vn", to="someone@else.example")
    assert next(iter(refused.value.recipients.values()))[0] == 550

    def broken():
        raise RuntimeError("the database is down")

    port = free_port()
    failing = controller(session_factory, mail_settings, host="127.0.0.1", port=port)
    failing.handler.store = lambda *a: broken()
    failing.start()
    try:
        with pytest.raises(smtplib.SMTPDataError) as caught:
            send(port, sample("outlook_windows1258.eml"), "an@outlook.com.vn")
    finally:
        failing.stop()
    assert caught.value.smtp_code == 451  # the sender keeps the mail and tries again


def test_a_null_sender_envelope_opens_nothing(db, session_factory, mail_settings, mailbox, listener):
    db.commit()
    send(listener, sample("outlook_windows1258.eml"), "")
    assert tickets_of(db, "an.nguyen@outlook.com.vn") == []
    db.expire_all()
    assert db.scalar(sa.select(Quarantined.reason)).startswith("a null return path")
