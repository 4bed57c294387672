"""Bounces that arrive by mail (DSN, RFC 3464) after the SMTP server accepted the message."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from clm.channels import guardrails
from clm.channels.adapters.base import Outgoing
from clm.channels.adapters.email import EmailAdapter
from clm.channels.inbound.bounces import NotADsn, is_hard, parse_dsn
from clm.channels.models import Message, MessageEvent, Suppression
from clm.customers.models import Customer
from clm.lib.clock import utcnow

URL = "/hooks/email/bounces/hook-t0ken"


def dsn(original_headers: str, *, recipient: str = "an@example.vn", action: str = "failed",
        status: str = "5.1.1", diagnostic: str = "smtp; 550 5.1.1 <an@example.vn>: Recipient address rejected: "
        "User unknown in virtual mailbox table", part: str = "text/rfc822-headers", extra: list[str] = ()) -> bytes:
    """A bounce as Postfix mails it back to the envelope sender (RFC 3464, with the original's headers)."""
    fields = [f"Final-Recipient: rfc822; {recipient}", f"Original-Recipient: rfc822;{recipient}",
              f"Action: {action}", f"Status: {status}", "Remote-MTA: dns; mx.example.vn",
              f"Diagnostic-Code: {diagnostic}"]
    text = "\r\n".join([
        "From: MAILER-DAEMON@mail.shop.example.vn (Mail Delivery System)", "To: bounces@shop.example.vn",
        "Subject: Undelivered Mail Returned to Sender", "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B1"', "",
        "--B1", "Content-Description: Notification", "Content-Type: text/plain; charset=us-ascii", "",
        "I'm sorry to have to inform you that your message could not be delivered to one or more recipients.", "",
        "--B1", "Content-Description: Delivery report", "Content-Type: message/delivery-status", "",
        "Reporting-MTA: dns; mail.shop.example.vn", "X-Postfix-Queue-ID: 4Q7x9K1", "",
        *fields, *extra, "",
        "--B1", "Content-Description: Undelivered Message Headers", f"Content-Type: {part}", "",
        original_headers.strip(), "",
        "--B1--", ""])
    return text.encode()


@pytest.fixture
def mailed(db, smtp):
    """A marketing email really sent through SMTP (aiosmtpd), recorded as the outbox records it; returns
    (message, the headers the server received)."""
    sink, url = smtp

    def send(address: str = "an@example.vn", key: str = "broadcast:1:1") -> tuple[Message, str]:
        customer = Customer(full_name="Nguyễn Văn An", email=address)
        db.add(customer)
        db.flush()
        result = EmailAdapter(url, "Shop <shop@example.vn>").send(Outgoing(
            message_id=1, idempotency_key=key, channel="email", to=address, subject="Ưu đãi", text="Giảm 20%"))
        at = utcnow()
        message = Message(customer_id=customer.id, channel="email", purpose="marketing", template_key="offer",
                          idempotency_key=key, status="sent", address=address, provider="smtp",
                          provider_id=result.provider_id, sent_at=at, created_at=at, updated_at=at)
        db.add(message)
        db.commit()
        received = sink.raw[-1].decode()
        return message, received.split("\r\n\r\n", 1)[0].split("\n\n", 1)[0]

    return send


def test_a_hard_bounce_by_mail_marks_the_message_bounced_and_suppresses_the_address(client, db, mailed):
    message, headers = mailed()
    assert "Message-ID:" in headers

    response = client.post(URL, content=dsn(headers))

    assert response.status_code == 200 and response.json()["updated"] == 1
    db.expire_all()
    stored = db.get(Message, message.id)
    assert stored.status == "bounced" and stored.status_reason.startswith("the mail server reported a bounce: 5.1.1")
    assert "User unknown" in stored.status_reason
    [row] = db.scalars(sa.select(Suppression)).all()
    assert (row.channel, row.address, row.reason, row.customer_id) == ("email", "an@example.vn", "hard_bounce",
                                                                       message.customer_id)
    assert guardrails.blocked(db, message.customer_id, "email", "transactional", "an@example.vn") is not None
    assert client.post(URL, content=dsn(headers)).json()["updated"] == 0  # a repeat changes nothing
    assert db.scalar(sa.select(sa.func.count()).select_from(MessageEvent).where(
        MessageEvent.message_id == message.id, MessageEvent.status == "bounced")) == 1


def test_a_full_mailbox_fails_the_message_but_suppresses_nothing(client, db, mailed):
    message, headers = mailed()
    response = client.post(URL, content=dsn(headers, status="5.2.2", diagnostic="smtp; 552 5.2.2 Mailbox full",
                                             part="message/rfc822"))
    assert response.json()["updated"] == 1
    db.expire_all()
    assert db.get(Message, message.id).status == "failed"
    assert db.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 0


@pytest.mark.parametrize("action,status", [("delayed", "4.4.1"), ("delivered", "2.0.0"), ("relayed", "2.0.0"),
                                           ("failed", "4.4.7")])
def test_a_dsn_that_is_no_failure_is_ignored(client, db, mailed, action, status):
    message, headers = mailed()
    body = client.post(URL, content=dsn(headers, action=action, status=status)).json()
    assert (body["ignored"], body["updated"]) == (1, 0)
    db.expire_all()
    assert db.get(Message, message.id).status == "sent"


def test_a_bounce_without_the_original_finds_the_latest_email_to_that_address(client, db, mailed):
    message, _ = mailed("binh@example.vn", key="k-binh")
    raw = dsn("X-Nothing: here", recipient="binh@example.vn")
    assert client.post(URL, content=raw).json()["updated"] == 1
    db.expire_all()
    assert db.get(Message, message.id).status == "bounced"


def test_a_bounce_for_an_address_clm_never_mailed_still_suppresses_it(client, db):
    body = client.post(URL, content=dsn("Message-ID: <other@example.vn>", recipient="ghost@example.vn")).json()
    assert body["updated"] == 1
    assert db.scalar(sa.select(Suppression.address)) == "ghost@example.vn"


def test_a_body_that_is_no_dsn_or_a_wrong_token_is_refused(client, db):
    assert client.post(URL, content=b"Subject: hello\r\n\r\nhi").json()["error"]["code"] == "not_a_report"
    r = client.post("/hooks/email/bounces/guess", content=dsn("Message-ID: <x@y>"))
    assert r.status_code == 401 and db.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 0


def test_a_dsn_reports_each_recipient_it_names():
    raw = dsn("Message-ID: <m1@shop>", extra=["", "Final-Recipient: rfc822; b@example.vn", "Action: delayed",
                                              "Status: 4.4.1"])
    bounces, ignored = parse_dsn(raw)
    assert [(b.address, b.status, b.hard, b.message_id) for b in bounces] == [("an@example.vn", "5.1.1", True,
                                                                                "<m1@shop>")]
    assert ignored == 1


@pytest.mark.parametrize("status,hard", [("5.1.1", True), ("5.1.10", True), ("5.2.1", True), ("5.2.2", False),
                                         ("5.7.1", False), ("4.1.1", False), ("nonsense", False)])
def test_only_a_bad_or_disabled_address_is_a_hard_bounce(status, hard):
    assert is_hard(status) is hard


def test_an_arf_report_is_not_read_as_a_bounce():
    raw = (b'Content-Type: multipart/report; report-type=feedback-report; boundary="x"\r\n\r\n'
           b"--x\r\nContent-Type: text/plain\r\n\r\nabuse\r\n--x--\r\n")
    with pytest.raises(NotADsn):
        parse_dsn(raw)
