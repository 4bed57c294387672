"""Spam complaints from mailbox providers' feedback loops (ARF, RFC 5965) become suppressions."""

from __future__ import annotations

import sqlalchemy as sa

from clm.channels import guardrails
from clm.channels.inbound.complaints import Complaint, parse_arf, record_complaint
from clm.channels.models import Message, Suppression
from clm.customers.models import Consent, Customer
from clm.tracking.models import Event

URL = "/hooks/email/feedback/hook-t0ken"


def arf(*, message_id: str | None = "<3f2a@example.vn>", rcpt: str | None = "an@example.vn",
        feedback_type: str = "abuse", original: str = "message/rfc822") -> bytes:
    """A feedback report as Yahoo's or Outlook's loop mails it (RFC 5965 appendix B shape)."""
    fields = ["Feedback-Type: " + feedback_type, "User-Agent: Yahoo!-Mail-Feedback/2.0", "Version: 1",
              "Original-Mail-From: <shop@example.vn>", "Arrival-Date: Tue, 04 Mar 2025 10:12:05 +0700",
              "Reported-Domain: example.vn", "Source-IP: 192.0.2.1"]
    if rcpt:
        fields.append(f"Original-Rcpt-To: <{rcpt}>")
    headers = ["From: =?utf-8?b?Q+G7rWEgaMOgbmcgQW4=?= <shop@example.vn>", "To: an@example.vn",
               "Subject: =?utf-8?q?=C6=AFu_=C4=91=C3=A3i?=", "Date: Tue, 04 Mar 2025 09:00:00 +0700"]
    if message_id:
        headers.append(f"Message-ID: {message_id}")
    text = "\r\n".join([
        "From: <feedback@arf.mail.yahoo.com>", "To: <fbl@example.vn>", "Subject: FW: Ưu đãi",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=feedback-report; boundary="part_1"', "",
        "--part_1", "Content-Type: text/plain; charset=utf-8", "",
        "This is an email abuse report for an email message received from IP 192.0.2.1.", "",
        "--part_1", "Content-Type: message/feedback-report", "", *fields, "",
        "--part_1", f"Content-Type: {original}", "", *headers, "",
        *([] if original == "text/rfc822-headers" else ["Giảm 20% cho bạn", ""]),
        "--part_1--", ""])
    return text.encode()


def email_sent(db, address="an@example.vn", provider_id="<3f2a@example.vn>", purpose="marketing",
               status="sent", customer=None) -> Message:
    from clm.lib.clock import utcnow

    if customer is None:
        customer = Customer(full_name="Nguyễn Văn An", email=address)
        db.add(customer)
        db.flush()
    at = utcnow()
    message = Message(customer_id=customer.id, channel="email", purpose=purpose, template_key="offer",
                      text="Giảm 20%", idempotency_key=f"k-{provider_id}-{status}", status=status, address=address,
                      provider_id=provider_id if status != "queued" else None,
                      sent_at=at if status != "queued" else None, created_at=at, updated_at=at)
    db.add(message)
    db.flush()
    return message


def test_an_abuse_report_suppresses_the_address_withdraws_consent_and_stops_queued_marketing(client, db):
    message = email_sent(db)
    queued = email_sent(db, provider_id="later", status="queued", customer=db.get(Customer, message.customer_id))
    db.commit()

    response = client.post(URL, content=arf(), headers={"Content-Type": "message/rfc822"})

    assert response.status_code == 200 and response.json()["updated"] == 1
    db.expire_all()
    [row] = db.scalars(sa.select(Suppression)).all()
    assert (row.channel, row.address, row.reason, row.customer_id) == ("email", "an@example.vn", "complaint",
                                                                       message.customer_id)
    assert "Yahoo!-Mail-Feedback" in row.detail
    assert db.get(Message, message.id).status == "unsubscribed"
    assert db.get(Message, message.id).status_reason.startswith("the recipient reported it: spam complaint (abuse)")
    assert db.get(Message, queued.id).status == "suppressed"
    consent = db.scalar(sa.select(Consent).where(Consent.customer_id == message.customer_id)
                        .order_by(Consent.id.desc()))
    assert (consent.channel, consent.purpose, consent.granted) == ("email", "marketing", False)
    [event] = db.scalars(sa.select(Event).where(Event.name == "Email Marked as Spam")).all()
    assert event.customer_id == message.customer_id and event.properties["message_id"] == message.id
    # Marketing is blocked from now on; an order confirmation still goes (a complaint is not a bounce).
    assert guardrails.blocked(db, message.customer_id, "email", "marketing", "an@example.vn")
    assert guardrails.blocked(db, message.customer_id, "email", "transactional", "an@example.vn") is None


def test_a_repeated_report_changes_nothing(client, db):
    email_sent(db)
    db.commit()
    assert client.post(URL, content=arf()).json()["updated"] == 1
    assert client.post(URL, content=arf()).json()["updated"] == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 1
    assert db.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.name == "Email Marked as Spam")) == 1


def test_a_report_with_only_the_headers_or_only_the_recipient_finds_the_message(client, db):
    by_id = email_sent(db, "binh@example.vn", "<aa11@example.vn>")
    by_rcpt = email_sent(db, "chi@example.vn", "<bb22@example.vn>")
    db.commit()
    client.post(URL, content=arf(message_id="<aa11@example.vn>", rcpt=None, original="text/rfc822-headers"))
    client.post(URL, content=arf(message_id=None, rcpt="Chi@Example.vn"))
    db.expire_all()
    assert db.get(Message, by_id.id).status == db.get(Message, by_rcpt.id).status == "unsubscribed"
    assert set(db.scalars(sa.select(Suppression.address))) == {"binh@example.vn", "chi@example.vn"}


def test_a_complaint_about_an_address_clm_never_mailed_still_suppresses_it(db):
    assert record_complaint(db, Complaint("email", "stranger@example.vn", None, "spam complaint")) is True
    assert db.scalar(sa.select(Suppression.reason).where(Suppression.address == "stranger@example.vn")) == "complaint"
    assert record_complaint(db, Complaint("email", None, "<unknown@example.vn>")) is None


def test_not_spam_reports_are_ignored_and_other_bodies_refused(client, db):
    message = email_sent(db)
    db.commit()
    assert client.post(URL, content=arf(feedback_type="not-spam")).json() == {
        "ok": True, "updated": 0, "unmatched": 0, "replies": 0, "ignored": 1}
    refused = client.post(URL, content=b"From: a@b\r\nSubject: hi\r\n\r\nhello\r\n")
    assert refused.status_code == 400
    assert refused.json()["error"] == {"code": "not_a_report", "field": "body", "message": refused.json()["error"][
        "message"]} and "ARF" in refused.json()["error"]["message"]
    assert client.post("/hooks/email/feedback/guess", content=arf()).status_code == 401
    db.expire_all()
    assert db.get(Message, message.id).status == "sent"
    assert db.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 0


def test_parse_arf_reads_the_recipient_the_message_and_the_reporter():
    [complaint], ignored = parse_arf(arf())
    assert ignored == 0
    assert (complaint.channel, complaint.address, complaint.provider_id) == ("email", "an@example.vn",
                                                                            "<3f2a@example.vn>")
    assert complaint.source == "spam complaint (abuse) reported by Yahoo!-Mail-Feedback/2.0"
    assert complaint.at.isoformat() == "2025-03-04T03:12:05+00:00"
