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

    monkeypatch.setattr("clm.channels.service.renderer_for", lambda *a, **k: Broken())
    with pytest.raises(BrokenProcessPool):
        enqueue_many(db, customer_ids=ids, channel="email", template_key="welcome", idempotency_prefix="x",
                     settings=channel_settings, now=MORNING, chunk=3)
    db.rollback()
    assert db.scalar(sa.select(sa.func.count()).select_from(Message)) == 0
