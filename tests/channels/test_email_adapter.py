"""The SMTP adapter against a real aiosmtpd server: plain, STARTTLS (self-signed), SMTPS, AUTH."""

from __future__ import annotations

import pytest

from clm.channels.adapters.base import Outgoing, PermanentError, TransientError
from clm.channels.adapters.email import EmailAdapter, HardBounce, SmtpConfig, message_id_for
from tests.channels.conftest import Sink, authenticator, free_port, start_smtp, tls_context

SENDER = "Cửa hàng An <shop@example.vn>"


def outgoing(to="khach@example.vn", **kw) -> Outgoing:
    values = dict(message_id=7, idempotency_key="welcome:7", channel="email", to=to, subject="Ưu đãi tháng 3",
                  text="Giảm 20% cho bạn", html="<p>Giảm <b>20%</b> cho bạn</p>",
                  headers={"List-Unsubscribe": "<https://shop.example.vn/t/u/abc>",
                           "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
    values.update(kw)
    return Outgoing(**values)


def test_it_sends_multipart_text_and_html_with_a_stable_message_id(smtp):
    sink, url = smtp
    adapter = EmailAdapter(url, SENDER)
    result = adapter.send(outgoing())
    adapter.send(outgoing(to="other@example.vn", message_id=8, idempotency_key="welcome:8"))
    adapter.close()
    assert len(sink.messages) == 2
    mail = sink.messages[0]
    assert sink.envelopes[0][:2] == ("shop@example.vn", ["khach@example.vn"])
    assert mail["Subject"] == "Ưu đãi tháng 3"
    assert mail["From"].addresses[0].display_name == "Cửa hàng An"
    assert mail.get_content_type() == "multipart/alternative"
    assert mail.get_body(("plain",)).get_content().strip() == "Giảm 20% cho bạn"
    assert mail.get_body(("html",)).get_content().strip() == "<p>Giảm <b>20%</b> cho bạn</p>"
    assert mail["List-Unsubscribe"] == "<https://shop.example.vn/t/u/abc>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["Message-ID"] == message_id_for("welcome:7", SENDER) == result.provider_id
    assert mail["Message-ID"].endswith("@example.vn>")
    assert sink.messages[1]["Message-ID"] != mail["Message-ID"]


def test_a_text_only_message_is_a_single_part(smtp):
    sink, url = smtp
    EmailAdapter(url, SENDER).send(outgoing(html=None, headers={}))
    assert sink.messages[0].get_content_type() == "text/plain"
    assert "List-Unsubscribe" not in sink.messages[0]


def test_starttls_with_a_self_signed_certificate_and_auth(tls_files):
    cert, key = tls_files
    sink = Sink()
    controller, port = start_smtp(sink, tls_context=tls_context(cert, key), require_starttls=True,
                                  authenticator=authenticator("shop", "p@ss:w0rd/"), auth_required=True)
    try:
        url = f"smtp://shop:p%40ss%3Aw0rd%2F@127.0.0.1:{port}?starttls=1&cafile={cert}"
        EmailAdapter(url, SENDER).send(outgoing())
        with pytest.raises(TransientError, match="refused the login"):
            EmailAdapter(f"smtp://shop:wrong@127.0.0.1:{port}?starttls=1&verify=0", SENDER).send(outgoing())
        with pytest.raises(TransientError):  # the certificate is not trusted without cafile or verify=0
            EmailAdapter(f"smtp://shop:x@127.0.0.1:{port}?starttls=1", SENDER).send(outgoing())
    finally:
        controller.stop()
    assert len(sink.messages) == 1
    assert sink.envelopes[0][2] is True  # the session was authenticated


def test_smtps_wraps_the_connection_in_tls_from_the_start(tls_files):
    cert, key = tls_files
    sink = Sink()
    controller, port = start_smtp(sink, ssl_context=tls_context(cert, key))
    try:
        EmailAdapter(f"smtps://127.0.0.1:{port}?verify=0", SENDER).send(outgoing())
    finally:
        controller.stop()
    assert len(sink.messages) == 1


def test_smtp_answers_become_transient_permanent_or_hard_bounce(smtp):
    sink, url = smtp
    sink.refuse["ghost@example.vn"] = "550 5.1.1 <ghost@example.vn>: no such user"
    sink.refuse["busy@example.vn"] = "451 4.3.0 try again later"
    adapter = EmailAdapter(url, SENDER)
    with pytest.raises(HardBounce) as bounce:
        adapter.send(outgoing(to="ghost@example.vn"))
    assert bounce.value.code == 550 and bounce.value.hard_bounce
    with pytest.raises(TransientError) as busy:
        adapter.send(outgoing(to="busy@example.vn"))
    assert busy.value.code == 451
    sink.fail_data.append("554 5.7.1 rejected as spam")
    with pytest.raises(PermanentError) as spam:
        adapter.send(outgoing())
    assert spam.value.code == 554 and not getattr(spam.value, "hard_bounce", False)
    adapter.send(outgoing())  # the kept connection still works after the refusals
    assert len(sink.messages) == 1


def test_an_unreachable_server_is_a_transient_error():
    with pytest.raises(TransientError, match="cannot reach"):
        EmailAdapter(f"smtp://127.0.0.1:{free_port()}?timeout=2", SENDER).send(outgoing())


def test_the_url_is_read_into_a_config():
    c = SmtpConfig.from_url("smtps://u%40x:p%3Aw@mail.example.vn?timeout=5")
    assert (c.host, c.port, c.ssl, c.username, c.password, c.timeout) == ("mail.example.vn", 465, True, "u@x", "p:w", 5)
    assert SmtpConfig.from_url("smtp://h").port == 25
    with pytest.raises(ValueError, match="smtp://"):
        SmtpConfig.from_url("http://h")
