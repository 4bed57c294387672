"""Reading mail as real clients write it: charsets, sanitised HTML, attachments, loop signs, broken mail."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clm.service.mail import ids
from clm.service.mail.parse import Malformed, parse
from tests.service.mail.conftest import sample

LIMIT = 100_000


def read(name: str, **kw):
    return parse(sample(name), max_attachment_bytes=kw.pop("limit", LIMIT), **kw)


def test_outlook_windows_1258_quoted_printable_reads_as_composed_vietnamese():
    mail = read("outlook_windows1258.eml")
    assert mail.sender == "an.nguyen@outlook.com.vn"
    assert mail.sender_name == "Nguyễn Văn An"
    assert mail.subject == "Chưa nhận được xác nhận đơn hàng"
    assert "Tôi đặt đơn DH-1042 hôm qua nhưng chưa nhận được email xác nhận." in mail.text
    assert "\r" not in mail.text
    assert mail.automatic is None


def test_gmail_base64_utf8_keeps_the_pdf_with_its_rfc2231_name_and_the_cc():
    mail = read("gmail_utf8_attachment.eml")
    assert mail.sender == "bich.tran@gmail.com"
    assert mail.subject == "Đổi size áo"
    assert mail.cc == ["minh.le@gmail.com"]
    assert mail.text.startswith("Chào shop ạ,")
    [pdf] = mail.attachments
    assert (pdf.filename, pdf.content_type) == ("hóa đơn.pdf", "application/pdf")
    assert pdf.data.startswith(b"%PDF-1.4")


def test_html_is_sanitised_scripts_handlers_and_javascript_links_are_gone():
    mail = read("gmail_utf8_attachment.eml")
    assert "<script" not in mail.html and "onerror" not in mail.html and "javascript:" not in mail.html
    assert "Mình muốn đổi áo sang size L" in mail.html
    only_html = read("html_only_script.eml")
    assert only_html.text == "Tôi muốn khiếu nại.\nCám ơn\nQuang"
    assert "<script" not in only_html.html and "iframe" not in only_html.html and "onload" not in only_html.html


def test_apple_mail_inline_image_is_an_attachment_with_a_safe_name():
    mail = read("apple_mail_inline_image.eml")
    assert mail.sender_name == "Phạm Thu Hà"
    assert mail.subject == "Áo bị lỗi"
    [image] = mail.attachments
    assert image.filename == "IMG_0042.PNG"  # "../../etc/IMG_0042.PNG" reduced to its base name
    assert image.content_type == "image/png"


def test_a_forwarded_message_is_kept_whole_and_not_read_as_the_body():
    mail = read("forwarded_chain.eml")
    assert mail.text.startswith("Shop xem giúp")
    [forwarded] = mail.attachments
    assert forwarded.filename == "forwarded.eml" and b"original-hoa-1@gmail.com" in forwarded.data


@pytest.mark.parametrize("name, why", [
    ("outlook_out_of_office.eml", "Auto-Submitted: auto-generated"),
    ("x_autoreply_vacation.eml", "X-Autoreply: yes"),
    ("newsletter_precedence_bulk.eml", "Precedence: bulk"),
    ("bounce_dsn.eml", "a delivery report (delivery-status)"),
])
def test_machine_mail_says_why(name, why):
    assert read(name).automatic == why


def test_a_null_return_path_in_the_envelope_is_machine_mail():
    assert read("outlook_windows1258.eml", envelope_from="").automatic.startswith("a null return path")
    assert read("outlook_windows1258.eml", envelope_from="an.nguyen@outlook.com.vn").automatic is None


@pytest.mark.parametrize("name, reason", [
    ("broken_mime_no_boundary.eml", "broken MIME structure"),
    ("unknown_charset.eml", "unknown charset 'x-vni-unknown'"),
    ("missing_from.eml", "missing From header"),
])
def test_malformed_mail_raises_with_the_reason(name, reason):
    with pytest.raises(Malformed) as caught:
        read(name)
    assert reason in caught.value.reason


def test_an_attachment_over_the_limit_is_malformed_not_cut():
    with pytest.raises(Malformed, match="over the limit of 40 bytes"):
        read("gmail_utf8_attachment.eml", limit=40)


def test_a_mail_without_message_id_gets_one_derived_from_its_bytes():
    raw = b"From: a@example.com\r\nSubject: x\r\n\r\nhello\r\n"
    first, again = parse(raw, max_attachment_bytes=LIMIT), parse(raw, max_attachment_bytes=LIMIT)
    assert first.message_id == again.message_id and first.message_id.startswith("<")


@given(ticket_id=st.integers(1, 2**63 - 1), message_id=st.integers(1, 2**63 - 1))
def test_signed_message_ids_read_back_and_any_edit_is_refused(ticket_id, message_id):
    secret = b"k" * 32
    value = ids.make(secret, ticket_id, message_id, "shop.example.vn")
    assert ids.read(secret, value) == ids.Signed(ticket_id, message_id)
    assert ids.read(b"other" * 8, value) is None
    forged = value.replace(f".t{ticket_id}.", f".t{ticket_id + 1}.")
    assert ids.read(secret, forged) is None


def test_reply_subjects_carry_the_ticket_number_once():
    assert ids.reply_subject("Đổi size áo", "TK-000007") == "Re: Đổi size áo [TK-000007]"
    assert ids.reply_subject("Re: Đổi size áo [TK-000007]", "TK-000007") == "Re: Đổi size áo [TK-000007]"
    assert ids.subject_token("Re: Đổi size [tk-000007]") == "TK-000007"


@settings(deadline=None, max_examples=200)
@given(raw=st.binary(max_size=3000))
def test_any_bytes_are_read_or_refused_as_malformed_never_a_crash(raw):
    try:
        parse(raw, max_attachment_bytes=LIMIT)
    except Malformed as exc:
        assert exc.reason


@settings(deadline=None, max_examples=200)
@given(data=st.data())
def test_a_real_mail_with_bytes_damaged_anywhere_is_read_or_refused_never_a_crash(data):
    raw = bytearray(sample(data.draw(st.sampled_from(["outlook_windows1258.eml", "gmail_utf8_attachment.eml",
                                                      "apple_mail_inline_image.eml", "forwarded_chain.eml"]))))
    for _ in range(data.draw(st.integers(1, 20))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    try:
        mail = parse(bytes(raw), max_attachment_bytes=LIMIT)
    except Malformed as exc:
        assert exc.reason
    else:
        assert "\x00" not in mail.text and (mail.html is None or "<script" not in mail.html.lower())


def test_a_charset_name_with_a_nul_is_an_unknown_charset():
    raw = b"From: =?\x00indows-1258?Q?An?= <an@example.com>\r\nSubject: x\r\n\r\nhello\r\n"
    with pytest.raises(Malformed, match="unknown charset"):
        parse(raw, max_attachment_bytes=LIMIT)
