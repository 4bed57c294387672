"""DKIM: mail received by a real SMTP server (aiosmtpd) verifies with dkimpy against the public key;
the signature covers the one-click unsubscribe headers; settings that cannot sign are refused at start.
Also: SMTP accounts whose password is not ASCII."""

from __future__ import annotations

import base64

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from clm.channels.adapters.dkim_signing import DkimSigner, signer_from_settings
from clm.channels.adapters.email import EmailAdapter
from clm.channels.adapters.registry import build_adapters
from clm.config import Settings, _read_secret_files
from tests.channels.conftest import Sink, authenticator, start_smtp, tls_context
from tests.channels.test_email_adapter import SENDER, outgoing


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, bytes]:
    """(private key PEM, the DNS TXT record publishing its public key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def dns(records: dict[bytes, bytes]):
    """dkimpy's DNS hook: TXT records by name, instead of asking a resolver."""
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name)
    return lookup


def test_mail_received_over_smtp_verifies_against_the_published_key(smtp, key_pair):
    sink, url = smtp
    pem, record = key_pair
    adapter = EmailAdapter(url, SENDER, signer=DkimSigner("s2026", "example.vn", pem))
    adapter.send(outgoing(subject="Ưu đãi tháng 3 cho Nguyễn Văn An", text="Giảm 20% — chỉ hôm nay.\n.\nHết."))
    adapter.close()
    [raw] = sink.raw
    assert raw.startswith(b"DKIM-Signature:")
    published = dns({b"s2026._domainkey.example.vn.": record})
    assert dkim.verify(raw, dnsfunc=published)
    assert sink.messages[0]["Subject"] == "Ưu đãi tháng 3 cho Nguyễn Văn An"  # still readable after signing


def test_the_signature_covers_the_one_click_unsubscribe_headers_and_the_body(smtp, key_pair):
    sink, url = smtp
    pem, record = key_pair
    EmailAdapter(url, SENDER, signer=DkimSigner("s2026", "example.vn", pem)).send(outgoing())
    [raw] = sink.raw
    signature = dkim.DKIM(raw)
    signature.verify(dnsfunc=dns({b"s2026._domainkey.example.vn.": record}))
    signed = {name.decode().lower() for name, _ in signature.signed_headers}
    assert {"from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"} <= signed
    published = dns({b"s2026._domainkey.example.vn.": record})
    other_link = raw.replace(b"https://shop.example.vn/t/u/abc", b"https://evil.example/t/u/abc")
    assert other_link != raw and not dkim.verify(other_link, dnsfunc=published)
    other_body = raw.replace(b"20%", b"90%")
    assert other_body != raw and not dkim.verify(other_body, dnsfunc=published)


def test_a_signature_does_not_verify_against_another_key(smtp, key_pair):
    sink, url = smtp
    pem, _ = key_pair
    EmailAdapter(url, SENDER, signer=DkimSigner("s2026", "example.vn", pem)).send(outgoing())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(other)
    assert not dkim.verify(sink.raw[0], dnsfunc=dns({b"s2026._domainkey.example.vn.": record}))


def _settings(**kw) -> Settings:
    return Settings(_env_file=None, database_url="sqlite://", email_from=SENDER, **kw)


def test_the_worker_signs_when_the_three_settings_are_set_and_reads_the_key_from_a_file(smtp, key_pair, tmp_path,
                                                                                          monkeypatch):
    sink, url = smtp
    pem, record = key_pair
    path = tmp_path / "dkim.pem"
    path.write_text(pem)
    monkeypatch.setenv("CLM_DKIM_PRIVATE_KEY_FILE", str(path))
    settings = Settings(**_read_secret_files({}), _env_file=None, database_url="sqlite://", email_from=SENDER,
                        smtp_url=url, dkim_selector="s2026", dkim_domain="example.vn")
    adapter = build_adapters(settings)["email"]
    adapter.send(outgoing())
    assert dkim.verify(sink.raw[0], dnsfunc=dns({b"s2026._domainkey.example.vn.": record}))
    unsigned = build_adapters(_settings(smtp_url=url))["email"]
    unsigned.send(outgoing(message_id=8, idempotency_key="welcome:8"))
    assert not sink.raw[1].startswith(b"DKIM-Signature:")


def test_incomplete_or_unreadable_dkim_settings_are_refused_when_the_worker_starts(key_pair):
    pem, _ = key_pair
    with pytest.raises(ValueError, match="CLM_DKIM_DOMAIN, CLM_DKIM_PRIVATE_KEY"):
        signer_from_settings(_settings(dkim_selector="s2026"))
    with pytest.raises(ValueError, match="PEM"):
        signer_from_settings(_settings(dkim_selector="s", dkim_domain="example.vn", dkim_private_key="abc"))
    lines = pem.splitlines()
    broken = "\n".join([*lines[:4], lines[-1]])  # cut short
    with pytest.raises(ValueError, match="cannot be read"):
        DkimSigner("s", "example.vn", broken)
    assert signer_from_settings(_settings()) is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_an_smtp_password_with_vietnamese_letters_logs_in(tls_files, mechanism):
    cert, key = tls_files
    sink = Sink()
    excluded = [m for m in ("PLAIN", "LOGIN") if m != mechanism]
    controller, port = start_smtp(sink, tls_context=tls_context(cert, key), require_starttls=True,
                                  authenticator=authenticator("cửahàng", "mậtkhẩu€:/"), auth_required=True,
                                  auth_exclude_mechanism=excluded)
    try:
        url = f"smtp://c%E1%BB%ADah%C3%A0ng:m%E1%BA%ADtkh%E1%BA%A9u%E2%82%AC%3A%2F@127.0.0.1:{port}?starttls=1&verify=0"
        EmailAdapter(url, SENDER).send(outgoing())
        assert len(sink.messages) == 1 and sink.envelopes[0][2] is True
        from clm.channels.adapters.base import TransientError

        with pytest.raises(TransientError, match="refused the login"):
            EmailAdapter(url.replace("%E2%82%AC", "%E2%82%AD"), SENDER).send(outgoing())
    finally:
        controller.stop()


def test_an_address_with_vietnamese_letters_goes_as_smtputf8_and_still_verifies(key_pair):
    pem, record = key_pair
    sink = Sink()
    controller, port = start_smtp(sink, enable_SMTPUTF8=True)
    try:
        adapter = EmailAdapter(f"smtp://127.0.0.1:{port}", SENDER, signer=DkimSigner("s2026", "example.vn", pem))
        adapter.send(outgoing(to="nguyễn.an@example.vn"))
        adapter.close()
    finally:
        controller.stop()
    assert sink.envelopes[0][1] == ["nguyễn.an@example.vn"]
    assert sink.messages[0]["To"] == "nguyễn.an@example.vn"
    assert dkim.verify(sink.raw[0], dnsfunc=dns({b"s2026._domainkey.example.vn.": record}))
