"""Rendering a large broadcast in worker processes gives exactly what rendering in process gives."""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from clm.channels import rendering
from clm.channels.models import Message
from clm.channels.rendering import InlineRenderer, RenderPool, render_for, renderer_for
from clm.channels.service import enqueue_many
from clm.channels.templates import create_template, customer_locale, get_version, template_variables
from clm.channels.tracking import secret
from clm.customers.models import Customer
from clm.jobs.models import Job

MORNING = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
VIP = {"vi": {"subject": "Chào {{ customer.given_name }}", "text": "Hạng {{ customer.traits.tier }}: {{ 250000|vnd }}",
              "html": '<p>{{ customer.name }}</p><a href="https://shop.example.vn/vip?a=1&amp;b=2">VIP</a>'},
       "en": {"subject": "Hi {{ customer.given_name }}", "text": "Tier {{ customer.traits.tier }}: {{ 250000|vnd }}"}}


def test_a_big_call_gets_a_pool_and_a_small_one_renders_in_process():
    assert isinstance(renderer_for(50, processes=2, threshold=100), InlineRenderer)
    assert isinstance(renderer_for(50_000, processes=0), InlineRenderer)
    pool = renderer_for(500, processes=1, threshold=100)
    try:
        assert isinstance(pool, RenderPool) and pool.workers == 1
    finally:
        pool.close()


def test_a_broadcast_rendered_by_worker_processes_matches_rendering_in_process(db, channel_settings,
                                                                              make_customer, monkeypatch):
    create_template(db, key="vip", channel="email", variants=VIP)
    people = [make_customer(traits={"tier": "Vàng"} | ({"locale": "en"} if i % 3 == 0 else {})) for i in range(9)]
    no_tier = make_customer(traits={})  # the template names a trait it lacks: failed, with the reason
    no_consent = make_customer(consent=(), traits={"tier": "Bạc"})
    db.commit()
    monkeypatch.setattr(rendering, "POOL_THRESHOLD", 5)
    channel_settings.render_processes = 2
    ids = [c.id for c in (*people, no_tier, no_consent)]

    counts = enqueue_many(db, customer_ids=ids, channel="email", template_key="vip", idempotency_prefix="vip",
                          settings=channel_settings, now=MORNING, chunk=4)

    assert counts == {"queued": 9, "failed": 1, "suppressed": 1}
    rows = {m.customer_id: m for m in db.scalars(sa.select(Message))}
    failed = rows[no_tier.id]
    assert failed.status == "failed" and "'dict object' has no attribute 'tier'" in failed.status_reason
    assert rows[no_consent.id].status_reason == "no consent recorded for email marketing"
    _, version = get_version(db, "vip")
    key = secret(channel_settings)
    for person in people:
        customer = db.get(Customer, person.id)
        message = rows[person.id]
        expected = render_for(message.id, "email", "marketing", version,
                              template_variables(db, customer, None, channel_settings.timezone),
                              customer_locale(customer, channel_settings.default_locale), channel_settings, key)
        assert (message.status, message.subject, message.text, message.html) == (
            "queued", expected.subject, expected.text, expected.html)
    assert rows[people[0].id].subject == "Hi An" and rows[people[1].id].text == "Hạng Vàng: 250.000\xa0₫"
    assert db.scalar(sa.select(sa.func.count()).select_from(Job).where(Job.kind == "channels.send")) == 9
    assert len({m.id for m in rows.values()}) == 11


def test_a_render_pool_that_breaks_fails_the_call_and_queues_nothing(db, channel_settings, make_customer, welcome,
                                                                     monkeypatch):
    ids = [make_customer().id for _ in range(6)]
    db.commit()

    class Broken(InlineRenderer):
        """The first chunk renders; the process rendering the second dies (as a pool reports it)."""

        submitted = 0

        def submit(self, batch):
            self.submitted += 1
            if self.submitted == 1:
                return super().submit(batch)
            future = Future()
            future.set_exception(BrokenProcessPool("a process in the pool was terminated abruptly"))
            return future

    monkeypatch.setattr("clm.channels.bulk.renderer_for", lambda *a, **k: Broken())
    with pytest.raises(BrokenProcessPool):
        enqueue_many(db, customer_ids=ids, channel="email", template_key="welcome", idempotency_prefix="x",
                     settings=channel_settings, now=MORNING, chunk=3)
    db.rollback()
    assert db.scalar(sa.select(sa.func.count()).select_from(Message)) == 0


def test_a_broadcast_job_renders_every_chunk_in_one_set_of_processes(db, session_factory, channel_settings,
                                                                     make_customer, welcome, monkeypatch):
    from clm.channels import broadcasts
    from clm.segments.service import change_list, save_segment

    segment = save_segment(db, name="Khách quen", kind="static")
    members = [make_customer(traits={"locale": "en"} if i == 2 else {}) for i in range(5)]
    change_list(db, segment.id, add=[c.id for c in members])
    b = broadcasts.create_broadcast(db, name="Tết", template_key="welcome", segment_id=segment.id,
                                    settings=channel_settings)
    broadcasts.schedule(db, b.id)
    db.commit()
    started = []

    class Counting(RenderPool):
        def __init__(self, workers):
            started.append(workers)
            super().__init__(workers)

    monkeypatch.setattr(rendering, "POOL_THRESHOLD", 3)
    monkeypatch.setattr(rendering, "RenderPool", Counting)
    channel_settings.render_processes = 1
    with session_factory() as session:
        assert broadcasts.run_send(session, b.id, settings=channel_settings, chunk=2) == "queued"

    assert started == [1]  # one pool for the three chunks
    rows = {m.customer_id: m for m in db.scalars(sa.select(Message).where(Message.broadcast_id == b.id))}
    assert len(rows) == 5 and {m.status for m in rows.values()} == {"queued"}
    assert rows[members[2].id].subject == "Hello An" and rows[members[0].id].subject == "Chào An"


def test_a_broadcast_reading_ahead_that_dies_half_way_queues_everyone_once_when_run_again(
        db, session_factory, channel_settings, make_customer, welcome, monkeypatch):
    """With render processes, PostgreSQL reads the next chunks while one renders and writes them in later
    transactions; a job dying with chunks read but unwritten loses them to nobody: the run again queues each
    member exactly once, and the messages rendered ahead are the same as rendered in order."""
    from clm.channels import broadcasts
    from clm.segments.service import change_list, save_segment

    segment = save_segment(db, name="Khách quen", kind="static")
    members = [make_customer(traits={"locale": "en"} if i % 3 == 0 else {}) for i in range(7)]
    change_list(db, segment.id, add=[c.id for c in members])
    b = broadcasts.create_broadcast(db, name="Tết", template_key="welcome", segment_id=segment.id,
                                    settings=channel_settings)
    broadcasts.schedule(db, b.id)
    db.commit()
    monkeypatch.setattr(rendering, "POOL_THRESHOLD", 3)
    channel_settings.render_processes = 1
    beats = []

    class Died(Exception):
        pass

    def die_on_the_third_commit():
        beats.append(1)
        if len(beats) == 3:
            raise Died()

    with session_factory() as session, pytest.raises(Died):
        broadcasts.run_send(session, b.id, settings=channel_settings, chunk=2, heartbeat=die_on_the_third_commit)
    first = list(db.scalars(sa.select(Message.customer_id).where(Message.broadcast_id == b.id)))
    assert 0 < len(first) < 7  # some chunks committed, the rest (read ahead or not) not

    with session_factory() as session:
        assert broadcasts.run_send(session, b.id, settings=channel_settings, chunk=2) == "queued"
    db.expire_all()
    rows = list(db.scalars(sa.select(Message).where(Message.broadcast_id == b.id)))
    assert sorted(m.customer_id for m in rows) == sorted(c.id for c in members)
    assert len({m.id for m in rows}) == 7 and {m.status for m in rows} == {"queued"}
    for m in rows:
        assert m.subject == ("Hello An" if m.customer_id in {members[i].id for i in (0, 3, 6)} else "Chào An")
        assert m.idempotency_key == f"broadcast:{b.id}:{m.customer_id}"
    jobs = db.scalars(sa.select(Job.args).where(Job.kind == "channels.send")).all()
    assert sorted(j["message_id"] for j in jobs) == sorted(m.id for m in rows)
