"""A worker SIGKILLed in the middle of a batch, inside a send: nothing is sent twice or lost.

The SMTP server holds its answer to one message's DATA while the test kills the worker process, the
worst moment: the server has the message, the worker never learnt it. A second worker then finishes
the batch. Counting what the server received proves each message arrived exactly once; the one the
worker died inside is `failed` with the reason that says so (email is at most once: SMTP cannot tell
a duplicate), and is not sent again.

The same against a local eSMS server, which (like eSMS) refuses a RequestId it already accepted with
code 124: a batch claims its SMS together, so the dead worker leaves several `sending`; the second
worker sends them again with the same RequestId, and every SMS is accepted exactly once and `sent`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from clm.channels.adapters.email import message_id_for
from clm.channels.models import Message
from clm.channels.sending import send_handler
from clm.channels.service import enqueue_message
from clm.channels.templates import create_template
from clm.config import Settings
from clm.customers.consent import record_consent
from clm.customers.models import Customer
from clm.db.engine import make_session_factory
from clm.jobs.runner import Registry, run_due
from clm.lib.clock import utcnow
from tests.channels.conftest import WELCOME, Sink, start_smtp
from tests.channels.providers.fakes import EsmsFake

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 40
HOLD_AT = 15  # the server holds its answer to this message (1-based)

WORKER = """
import sys, time
from clm.config import Settings
from clm.channels.sending import send_handler
from clm.db.engine import make_engine, make_session_factory
from clm.jobs.runner import Registry, run_due

settings = Settings(_env_file=None)
registry = Registry()
if sys.argv[1] == "batch":  # the worker's own set-up: a claimed batch goes through send_many
    from clm.channels.sending import register
    register(registry, settings)
else:
    registry.register("channels.send", send_handler(settings))
factory = make_session_factory(make_engine(settings.database_url))
while True:
    if not run_due(factory, registry, "doomed", limit=25, lease_seconds=60):
        time.sleep(0.05)  # idle poll
"""


class HoldingSink(Sink):
    """Receives messages; the HOLD_AT-th one is kept without an answer until `release` is set."""

    def __init__(self):
        super().__init__()
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        if len(self.messages) == HOLD_AT:
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.02)
        return answer


@pytest.fixture
def committed(engine):
    """This test commits for real (two processes); it empties what it wrote afterwards."""
    def clean():
        with engine.begin() as conn:
            for table in ("message_events", "messages", "template_versions", "templates", "job_effects", "jobs",
                          "consents", "outbox", "customers"):
                conn.exec_driver_sql(f"DELETE FROM {table}")  # noqa: S608 (fixed names)
    clean()
    yield make_session_factory(engine)
    clean()


def _wait_for(check, timeout: float) -> bool:
    """Poll for a state (not a sleep for time to pass)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def _kill_worker_while_held(mode: str, env: dict, holding, release, never: str) -> None:
    """Start a worker process in `mode`, SIGKILL it while the local server holds its request (`holding` set),
    then let the server go on (`release`)."""
    worker = subprocess.Popen([sys.executable, "-c", WORKER, mode], cwd=ROOT, env=env)
    try:
        assert _wait_for(holding.is_set, 60), never
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(5)
        release.set()



@pytest.mark.parametrize("mode", ["one-by-one", "batch"])
def test_a_worker_killed_inside_an_smtp_send_loses_nothing_and_sends_nothing_twice(committed, engine, mode):
    sink = HoldingSink()
    controller, port = start_smtp(sink)
    url = engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CLM_DATABASE_URL": url,
           "CLM_SMTP_URL": f"smtp://127.0.0.1:{port}", "CLM_QUIET_HOURS": "", "CLM_PUBLIC_URL": "https://shop.example.vn",
           "CLM_TRACKING_SECRET": "crash-test", "CLM_EMAIL_FROM": "shop@example.vn"}
    settings = Settings(_env_file=None, database_url=url, smtp_url=env["CLM_SMTP_URL"], quiet_hours="",
                        public_url=env["CLM_PUBLIC_URL"], tracking_secret="crash-test", email_from="shop@example.vn")
    with committed() as session:
        create_template(session, key="welcome", channel="email", variants=WELCOME)
        for n in range(MESSAGES):
            customer = Customer(email=f"khach{n}@example.vn", full_name=f"Khách {n}", given_name="Khách", traits={})
            session.add(customer)
            session.flush()
            record_consent(session, customer.id, channel="email", purpose="marketing", granted=True, source="test")
            enqueue_message(session, customer_id=customer.id, channel="email", template_key="welcome",
                            idempotency_key=f"crash:{n}", settings=settings)
        session.commit()

    _kill_worker_while_held(mode, env, sink.holding, sink.release, "the worker never reached the held message")

    with committed() as session:
        stuck = session.scalars(sa.select(Message.idempotency_key).where(Message.status == "sending")).all()
    assert len(stuck) == 1  # the one the worker died inside

    # A second worker finishes the batch once the dead one's lease has expired.
    registry = Registry()
    registry.register("channels.send", send_handler(settings))
    later = utcnow() + timedelta(minutes=5)
    while run_due(committed, registry, "survivor", now=later, limit=25):
        pass
    controller.stop()

    received = sink.by_message_id()
    assert len(sink.messages) == MESSAGES, "every message reached the server"
    assert set(received.values()) == {1}, "no message reached the server twice"
    with committed() as session:
        rows = session.scalars(sa.select(Message)).all()
        by_status: dict[str, list[Message]] = {}
        for m in rows:
            by_status.setdefault(m.status, []).append(m)
        assert sorted(by_status) == ["failed", "sent"]
        [interrupted] = by_status["failed"]
        assert interrupted.idempotency_key == stuck[0]
        assert interrupted.status_reason.startswith("interrupted:")
        # What the server holds is exactly the sent messages plus the interrupted one (it did arrive).
        held = message_id_for(interrupted.idempotency_key, "shop@example.vn")
        assert {m.provider_id for m in by_status["sent"]} | {held} == set(received)
        assert len(by_status["sent"]) == MESSAGES - 1
        done = session.execute(sa.text("SELECT count(*) FROM job_effects WHERE key LIKE 'channels.send:%'")).scalar()
        assert done == MESSAGES
        unfinished = session.execute(sa.text(
            "SELECT count(*) FROM jobs WHERE state NOT IN ('completed')")).scalar()
        assert unfinished == 0


class HoldingEsms(EsmsFake):
    """eSMS that accepts every new RequestId, and keeps its answer to the HOLD_AT-th accepted one until
    `release` is set (the SMS is accepted; the worker never hears so)."""

    def __init__(self):
        super().__init__("crash-key", "crash-secret", "SHOPAN")
        self.accepted: list[str] = []  # RequestIds answered 100, in order
        self.holding = threading.Event()
        self.lock = threading.Lock()

    def answer(self, request):
        status, headers, payload = super().answer(request)
        if b'"CodeResult": "100"' not in payload:
            return status, headers, payload
        with self.lock:
            self.accepted.append(request.json["RequestId"])
            held = len(self.accepted) == HOLD_AT
        if held:
            self.holding.set()
            self._release.wait(30)
        return status, headers, payload


def test_a_worker_killed_inside_an_esms_batch_sends_each_sms_once_through_the_request_id(committed, engine):
    url = engine.url.render_as_string(hide_password=False)
    with HoldingEsms() as esms:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CLM_DATABASE_URL": url, "CLM_QUIET_HOURS": "",
               "CLM_PUBLIC_URL": "https://shop.example.vn", "CLM_TRACKING_SECRET": "crash-test",
               "CLM_ESMS_API_KEY": "crash-key", "CLM_ESMS_SECRET_KEY": "crash-secret", "CLM_ESMS_BRANDNAME": "SHOPAN",
               "CLM_ESMS_URL": esms.url, "CLM_ESMS_CALLBACK_URL": "https://shop.example.vn/hooks/esms/t"}
        settings = Settings(_env_file=None, database_url=url, quiet_hours="", public_url=env["CLM_PUBLIC_URL"],
                            tracking_secret="crash-test", esms_api_key="crash-key", esms_secret_key="crash-secret",
                            esms_brandname="SHOPAN", esms_url=esms.url, esms_callback_url=env["CLM_ESMS_CALLBACK_URL"])
        with committed() as session:
            create_template(session, key="sms-offer", channel="sms",
                            variants={"vi": {"text": "SHOPAN: {{ customer.given_name }} oi, giam 20% hom nay"}})
            for n in range(MESSAGES):
                customer = Customer(phone=f"+849120{n:05d}", full_name=f"Khách {n}", given_name="Khach", traits={})
                session.add(customer)
                session.flush()
                record_consent(session, customer.id, channel="sms", purpose="marketing", granted=True, source="test")
                enqueue_message(session, customer_id=customer.id, channel="sms", template_key="sms-offer",
                                idempotency_key=f"crash-sms:{n}", settings=settings)
            session.commit()

        _kill_worker_while_held("batch", env, esms.holding, esms._release, "the worker never reached the held SMS")

        with committed() as session:
            stuck = session.scalars(sa.select(Message.idempotency_key).where(Message.status == "sending")).all()
        assert len(stuck) > 1  # the batch's SMS were claimed together: the held one and those after it

        registry = Registry()
        registry.register("channels.send", send_handler(settings))
        later = utcnow() + timedelta(minutes=5)
        while run_due(committed, registry, "survivor", now=later, limit=25):
            pass

    assert esms.violations == []
    assert len(esms.accepted) == MESSAGES and len(set(esms.accepted)) == MESSAGES, "each SMS accepted once"
    repeats = [r.json["RequestId"] for r in esms.requests if r.json["RequestId"] in esms.accepted[:HOLD_AT]]
    assert len(repeats) > HOLD_AT  # some were sent again after the crash, and eSMS refused them as repeats
    with committed() as session:
        rows = session.scalars(sa.select(Message)).all()
        assert {m.status for m in rows} == {"sent"}
        assert sorted(m.idempotency_key for m in rows) == sorted(esms.accepted)
        done = session.execute(sa.text("SELECT count(*) FROM job_effects WHERE key LIKE 'channels.send:%'")).scalar()
        assert done == MESSAGES
        unfinished = session.execute(sa.text("SELECT count(*) FROM jobs WHERE state NOT IN ('completed')")).scalar()
        assert unfinished == 0
