"""Downloading a customer's attachment: over the API (`service:read`) and from the workspace (permission
`service`), as a download with a safe type, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage

import pytest
import sqlalchemy as sa

from clm.service.attachments import disposition, safe_type
from clm.service.mail.inbound import accept
from clm.service.mail.models import Attachment
from clm.service.models import Message
from clm.service.tickets import TicketIn, merge_tickets, open_ticket
from tests.dashboard.conftest import as_role, browser, cheap_hashing, user_factory  # noqa: F401
from tests.service.mail.conftest import SHOP_ADDRESS, T0, sample


def _files(db, outcome) -> list[Attachment]:
    message = db.get(Message, outcome.message_id)
    return [db.get(Attachment, entry["id"]) for entry in message.attachments]


def _mail_with(*parts: tuple[bytes, str, str, str]) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = "Bích <bich@example.vn>", SHOP_ADDRESS, "Ảnh lỗi", "<f1@x.vn>"
    m.set_content("Shop xem giúp em")
    for data, maintype, subtype, name in parts:
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return m.as_bytes()


def test_the_api_sends_the_pdf_as_a_download_with_its_vietnamese_name(client, db, mail_settings, mailbox,
                                                                       api_key_for):
    outcome = accept(db, sample("gmail_utf8_attachment.eml"), settings=mail_settings, now=T0)
    db.commit()
    [pdf] = _files(db, outcome)
    headers = api_key_for("service:read")
    detail = client.get(f"/api/v1/service/tickets/{outcome.ticket_id}", headers=headers).json()
    [listed] = next(m for m in detail["messages"] if m["id"] == outcome.message_id)["attachments"]
    assert listed["id"] == pdf.id and listed["filename"] == "hóa đơn.pdf"

    r = client.get(f"/api/v1/service/attachments/{pdf.id}", headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == (
        "attachment; filename=\"hoa don.pdf\"; filename*=UTF-8''h%C3%B3a%20%C4%91%C6%A1n.pdf")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in r.headers["content-security-policy"]
    assert r.content.startswith(b"%PDF-1.4") and hashlib.sha256(r.content).hexdigest() == pdf.sha256


def test_html_svg_and_unknown_types_are_plain_bytes_and_names_cannot_break_the_header(client, db, mail_settings,
                                                                                     mailbox, api_key_for):
    raw = _mail_with((b"<script>alert(1)</script>", "text", "html", "trang.html"),
                     (b"<svg onload='alert(1)'/>", "image", "svg+xml", 'a"b.svg'),
                     (b"\x89PNG\r\n\x1a\n....", "image", "png", "ảnh.png"))
    outcome = accept(db, raw, settings=mail_settings, now=T0)
    db.commit()
    html, svg, png = _files(db, outcome)
    headers = api_key_for("service:read")
    got = {f.filename: client.get(f"/api/v1/service/attachments/{f.id}", headers=headers) for f in (html, svg, png)}
    assert got["trang.html"].headers["content-type"] == "application/octet-stream"
    assert got["trang.html"].content == b"<script>alert(1)</script>"
    svg_answer = got[svg.filename]
    assert svg_answer.headers["content-type"] == "application/octet-stream"
    assert svg_answer.headers["content-disposition"].count('"') == 2  # the name's own quote is dropped
    assert got["ảnh.png"].headers["content-type"] == "image/png"


def test_an_unknown_attachment_is_a_404_and_a_bad_id_a_422_naming_it(client, db, api_key_for):
    headers = api_key_for("service:read")
    r = client.get("/api/v1/service/attachments/999999", headers=headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.get("/api/v1/service/attachments/abc", headers=headers)
    assert r.status_code == 422 and r.json()["error"]["field"] == "attachment_id"


def test_the_workspace_links_the_file_and_only_staff_with_the_service_permission_download_it(
        db, app, mail_settings, mailbox, as_role):  # noqa: F811
    outcome = accept(db, sample("apple_mail_inline_image.eml"), settings=mail_settings, now=T0)
    db.commit()
    [image] = _files(db, outcome)
    agent = as_role("agent")
    page = agent.get(f"/service/tickets/{outcome.ticket_id}")
    assert page.status_code == 200
    assert f'href="/service/attachments/{image.id}"' in page.text and "IMG_0042.PNG" in page.text
    r = agent.get(f"/service/attachments/{image.id}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"].startswith('attachment; filename="IMG_0042.PNG"')
    assert r.content == image.data
    assert agent.get("/service/attachments/999999").status_code == 404
    assert agent.get(f"/service/attachments/{2**63}").status_code == 404
    marketer = as_role("marketer")
    refused = marketer.get(f"/service/attachments/{image.id}")
    assert refused.status_code == 403 and image.data not in refused.content
    assert as_role("outsider").get(f"/service/attachments/{image.id}").status_code == 303


def test_a_file_follows_its_message_when_the_ticket_is_merged(db, client, mail_settings, mailbox, api_key_for):
    outcome = accept(db, sample("gmail_utf8_attachment.eml"), settings=mail_settings, now=T0)
    message = db.get(Message, outcome.message_id)
    other = open_ticket(db, TicketIn(customer_id=message.customer_id, subject="Đổi size", route=False), now=T0)
    merge_tickets(db, outcome.ticket_id, other.id, now=T0)
    db.commit()
    [pdf] = _files(db, outcome)
    r = client.get(f"/api/v1/service/attachments/{pdf.id}", headers=api_key_for("service:read"))
    assert r.status_code == 200 and r.content == pdf.data
    assert db.scalar(sa.select(Message.ticket_id).where(Message.id == outcome.message_id)) == other.id


@pytest.mark.parametrize("declared,sent", [("application/pdf", "application/pdf"), ("IMAGE/JPEG", "image/jpeg"),
                                           ("text/plain; charset=windows-1258", "text/plain"),
                                           ("text/html", "application/octet-stream"),
                                           ("application/javascript", "application/octet-stream"),
                                           ("image/svg+xml", "application/octet-stream"),
                                           ("", "application/octet-stream")])
def test_safe_type(declared, sent):
    assert safe_type(declared) == sent


def test_disposition_drops_control_characters_and_quotes():
    assert disposition('x"\r\nSet-Cookie: a=b.pdf') == (
        "attachment; filename=\"xSet-Cookie: a=b.pdf\"; filename*=UTF-8''x%22Set-Cookie%3A%20a%3Db.pdf")
    assert disposition("") == "attachment; filename=\"attachment\"; filename*=UTF-8''attachment"


def test_the_thread_links_only_files_stored_with_the_message_not_what_its_json_claims(db, mail_settings, mailbox,
                                                                                      as_role, zalo, shop):  # noqa: F811
    from clm.service.conversations import InboundIn, receive

    outcome = accept(db, sample("gmail_utf8_attachment.eml"), settings=mail_settings, now=T0)
    [pdf] = _files(db, outcome)
    other = shop.customer("Người khác", phone="0987654321")
    claimed = receive(db, InboundIn(inbox_id=zalo.id, customer_id=other.id, body="xem file", external_id="z-f1",
                                    attachments=[{"id": pdf.id, "filename": "hoa-don-gia.pdf", "size": 1}]), now=T0)
    db.commit()
    page = as_role("agent").get(f"/service/tickets/{claimed.ticket.id}").text
    assert "/service/attachments/" not in page and "hoa-don-gia.pdf" not in page
