"""Channel fixtures: a real SMTP server (aiosmtpd) that keeps what it receives, customers, templates."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from clm.config import Settings
from clm.customers.consent import record_consent
from clm.customers.models import Customer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Sink:
    """What the SMTP server accepted: one entry per DATA it answered 250 to (or was answering)."""

    messages: list = field(default_factory=list)
    raw: list = field(default_factory=list)  # the bytes received, as DATA carried them (DKIM checks)
    envelopes: list = field(default_factory=list)
    refuse: dict = field(default_factory=dict)  # recipient -> SMTP reply for RCPT
    fail_data: list = field(default_factory=list)  # replies for the next DATA commands
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.fail_data:
                return self.fail_data.pop(0)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), session.authenticated))
            self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
            self.raw.append(envelope.original_content)
        return "250 Message accepted"

    def by_message_id(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in self.messages:
            counts[m["Message-ID"]] = counts.get(m["Message-ID"], 0) + 1
        return counts


def self_signed(tmp_path) -> tuple[str, str]:
    """A certificate for 127.0.0.1/localhost made for this test run: (cert.pem, key.pem)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def start_smtp(sink: Sink, **kwargs) -> tuple[Controller, int]:
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return controller, port


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, str]]:
    """A plain SMTP server: (sink, CLM_SMTP_URL)."""
    sink = Sink()
    controller, port = start_smtp(sink)
    yield sink, f"smtp://127.0.0.1:{port}"
    controller.stop()


@pytest.fixture
def tls_files(tmp_path) -> tuple[str, str]:
    return self_signed(tmp_path)


def authenticator(user: str, password: str):
    def check(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == user.encode() and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False)
    return check


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def channel_settings(smtp) -> Settings:
    _, url = smtp
    return Settings(database_url="sqlite://", dashboard_warm_up=False, _env_file=None, smtp_url=url,
                    email_from="Cửa hàng An <shop@example.vn>", public_url="https://shop.example.vn",
                    tracking_secret="test-tracking-secret", quiet_hours="", timezone="Asia/Ho_Chi_Minh")


@pytest.fixture
def make_customer(db):
    """A customer with consent for email marketing unless told otherwise."""
    counter = iter(range(1, 10_000))

    def make(email: str | None = "__auto__", *, consent: tuple[str, ...] = ("email",), phone: str | None = None,
             full_name: str = "Nguyễn Văn An", given_name: str = "An", traits: dict | None = None) -> Customer:
        n = next(counter)
        address = f"khach{n}@example.vn" if email == "__auto__" else email
        c = Customer(email=address, phone=phone, full_name=full_name, given_name=given_name, traits=traits or {})
        db.add(c)
        db.flush()
        for channel in consent:
            record_consent(db, c.id, channel=channel, purpose="marketing", granted=True, source="test")
        return c

    return make


WELCOME = {
    "vi": {"subject": "Chào {{ customer.given_name }}", "text": "Xin chào {{ customer.name }}!",
           "html": "<p>Xin chào <b>{{ customer.name }}</b> <a href=\"https://shop.example.vn/sale?a=1&b=2\">Mua</a></p>"},
    "en": {"subject": "Hello {{ customer.given_name }}", "text": "Hello {{ customer.name }}!",
           "html": "<p>Hello {{ customer.name }}</p>"},
}


@pytest.fixture
def welcome(db):
    from clm.channels.templates import create_template

    template = create_template(db, key="welcome", channel="email", variants=WELCOME)
    db.flush()
    return template
