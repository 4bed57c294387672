"""The lifecycle playbook: every play installs as a valid journey with vi and en templates that render,
installing twice adds nothing, the API and CLI install it, and the plays behave as their summaries say
(the abandoned cart waits for an order, the repeat nudge is timed by the customer's usual gap)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from clm.channels.models import Message, Template, TemplateVersion
from clm.channels.templates import preview, update_template
from clm.customers.consent import record_consent
from clm.journeys import playbook
from clm.journeys.consumers import EventsConsumer, sweep_dates
from clm.journeys.models import Journey, JourneyRun
from clm.journeys.validate import check
from clm.lib.errors import FieldError
from clm.lifecycle.models import CustomerStats
from clm.tracking.models import Event
from tests.journeys.conftest import run_of

TZ = "Asia/Ho_Chi_Minh"
KEYS = ["welcome", "abandoned_cart", "first_purchase", "repeat_purchase", "win_back", "birthday", "vip_thanks"]


def counts(db) -> tuple[int, int, int]:
    return (db.scalar(sa.select(sa.func.count()).select_from(Journey)),
            db.scalar(sa.select(sa.func.count()).select_from(Template)),
            db.scalar(sa.select(sa.func.count()).select_from(TemplateVersion)))


def test_the_playbook_covers_the_lifecycle_with_a_vietnamese_and_english_template_for_every_message():
    plays = playbook.plays()
    assert [p.key for p in plays] == KEYS
    for play in plays:
        sent = {n["template"] for n in play.definition["nodes"] if n["type"] == "send_message"}
        assert sent == set(play.template_keys), play.key
        for template in play.templates:
            assert set(template["variants"]) == {"vi", "en"}, template["key"]
        assert set(play.title) == set(play.summary) == {"vi", "en"}


def test_every_play_installs_as_a_valid_journey_and_its_templates_render_in_both_languages(db, people):
    [anna] = people(given_name="An", email="an@example.vn")
    results = playbook.install(db, timezone=TZ)
    db.commit()
    assert [(r.key, r.status, r.state) for r in results] == [(k, "installed", "draft") for k in KEYS]
    for play in playbook.plays():
        journey = db.get(Journey, [r.journey_id for r in results if r.key == play.key][0])
        assert check(db, play.definition)[1] == []
        assert journey.name == play.name
        journey_context = {"journey": {"event": "Product Added", "properties": {"name": "Áo thun", "price": 149000},
                                       "gap_days": 23.4}}
        for template in play.templates:
            for locale in ("vi", "en"):
                for context in ({}, journey_context):  # the editor's preview has no journey context
                    rendered = preview(db, template["key"], anna, locale=locale, context=context)
                    assert rendered.locale == locale and rendered.text.strip()
    rendered = preview(db, "playbook.cart-reminder", anna, locale="vi", context=journey_context)
    assert "Áo thun (149.000" in rendered.text


def test_installing_twice_adds_nothing_and_keeps_the_shops_edits(db):
    playbook.install(db, ["welcome"], timezone=TZ)
    db.commit()
    update_template(db, "playbook.welcome-hello", variants={"vi": {"subject": "Của shop", "text": "Sửa rồi"}})
    db.commit()
    before = counts(db)
    again = playbook.install(db, ["welcome", "welcome"], timezone=TZ)
    db.commit()
    assert [(r.key, r.status, r.templates_created) for r in again] == [("welcome", "exists", [])]
    assert counts(db) == before
    assert db.scalar(sa.select(Template.current_version).where(Template.key == "playbook.welcome-hello")) == 2


def test_installing_with_activate_starts_the_journeys_and_an_unknown_key_names_the_field(db):
    [result] = playbook.install(db, ["birthday"], activate=True, timezone=TZ)
    assert result.state == "active"
    with pytest.raises(FieldError) as err:
        playbook.install(db, ["birthday", "nope"], timezone=TZ)
    assert err.value.field == "keys" and "welcome" in err.value.message


def test_a_play_the_shop_cannot_run_is_reported_failed_and_the_others_install(db, monkeypatch):
    broken = playbook.find_play("vip_thanks")
    odd = playbook.Play(**{**vars(broken), "definition": {**broken.definition,
                                                          "trigger": {"type": "stage_changed", "to": "platinum"}}})
    birthday = playbook.find_play("birthday")
    monkeypatch.setattr(playbook, "plays", lambda: (birthday, odd))
    results = playbook.install(db, timezone=TZ)
    assert [(r.key, r.status) for r in results] == [("birthday", "installed"), ("vip_thanks", "failed")]
    assert "platinum" in results[1].error
    assert db.scalar(sa.select(sa.func.count()).select_from(Template).where(Template.key.like("playbook.vip%"))) == 0


def _event(db, customer_id: int, event: str, at, **properties) -> None:
    db.add(Event(message_id=uuid.uuid4().hex, customer_id=customer_id, type="track", name=event,
                 properties=properties, context={}, timestamp=at, received_at=at))
    db.commit()


def test_abandoned_cart_reminds_after_four_hours_without_an_order_and_an_order_ends_it(db, clock, people, drain):
    [anna], [binh] = people(email="an@example.vn"), people(email="binh@example.vn")
    for cid in (anna, binh):
        record_consent(db, cid, channel="email", purpose="marketing", granted=True, source="test")
    [cart] = playbook.install(db, ["abandoned_cart"], activate=True, now=clock.now, timezone=TZ)
    db.commit()
    events = EventsConsumer(lambda: TZ)
    for cid in (anna, binh):
        _event(db, cid, "Product Added", clock.now, name="Son môi", price=259000)
    events(db, clock.now)
    db.commit()
    clock.advance(hours=1)
    _event(db, binh, "Order Completed", clock.now, order_id="DH-1", total=259000)
    events(db, clock.now)
    db.commit()
    clock.advance(hours=3, minutes=1)
    drain()
    assert run_of(db, cart.journey_id, binh).status == "converted"
    reminder = db.scalars(sa.select(Message).where(Message.journey_id == cart.journey_id)).all()
    assert [(m.customer_id, m.template_key) for m in reminder] == [(anna, "playbook.cart-reminder")]
    assert "Son môi" in reminder[0].text
    clock.advance(days=1)
    drain()
    keys = db.scalars(sa.select(Message.template_key).where(Message.customer_id == anna).order_by(Message.id)).all()
    assert keys == ["playbook.cart-reminder", "playbook.cart-coupon"]


def test_the_repeat_nudge_is_due_one_usual_gap_after_the_last_order(db, clock, people):
    """A repeat buyer's gap is their median gap; a one-time buyer's is the shop's (the median of medians)."""
    regular, other, once, early = people(4)
    rows = [(regular, 3, 10.0, 10), (other, 2, 30.0, 30), (once, 1, None, 20), (early, 1, None, 5)]
    for cid, n, gap, days_ago in rows:
        at = clock.now - timedelta(days=days_ago)
        db.add(CustomerStats(customer_id=cid, orders_count=n, revenue=1, refunded_orders=0, first_order_at=at,
                             last_order_at=at, median_gap_days=gap, updated_at=clock.now))
    db.commit()
    [nudge] = playbook.install(db, ["repeat_purchase"], activate=True, now=clock.now, timezone=TZ)
    db.commit()
    sweep_dates(db, clock.now, TZ)  # the shop's gap: the (lower) median of 10 and 30 days, so `once` was due 10 days ago
    db.commit()
    runs = {r.customer_id: r for r in db.scalars(sa.select(JourneyRun).where(JourneyRun.journey_id == nudge.journey_id))}
    assert set(runs) == {regular, other}
    assert runs[regular].context["gap_days"] == 10.0
    assert runs[regular].entry_key.startswith("order:")
    sweep_dates(db, clock.now + timedelta(hours=2), TZ)  # the same day again: nobody enters twice
    db.commit()
    assert db.scalar(sa.select(sa.func.count()).select_from(JourneyRun)
                     .where(JourneyRun.journey_id == nudge.journey_id)) == len(runs)


def test_the_api_lists_and_installs_the_playbook_in_one_call(client, api_key_for):
    writer = api_key_for("journeys:read", "journeys:write")
    listed = client.get("/api/v1/journeys/playbook", headers=writer).json()["data"]
    assert [p["key"] for p in listed] == KEYS and all(p["journey_id"] is None for p in listed)
    first = client.post("/api/v1/journeys/playbook/install", json={"keys": None}, headers=writer)
    assert first.status_code == 200 and {r["status"] for r in first.json()["data"]} == {"installed"}
    second = client.post("/api/v1/journeys/playbook/install", json={}, headers=writer).json()["data"]
    assert {r["status"] for r in second} == {"exists"}
    assert all(p["state"] == "draft" for p in client.get("/api/v1/journeys/playbook", headers=writer).json()["data"])
    bad = client.post("/api/v1/journeys/playbook/install", json={"keys": ["nope"]}, headers=writer)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "keys"


def test_the_cli_installs_named_plays_or_all_and_again_adds_nothing(tmp_path, monkeypatch):
    from clm.cli import app
    from clm.config import get_settings

    monkeypatch.setenv("CLM_DATABASE_URL", f"sqlite:///{tmp_path}/playbook.db")
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        assert "birthday: installed" in runner.invoke(app, ["journeys", "playbook", "install", "birthday"]).output
        everything = runner.invoke(app, ["journeys", "playbook", "install", "--all", "--activate"])
        assert everything.exit_code == 0
        assert "birthday: exists (journey 1, draft)" in everything.output
        assert "welcome: installed" in everything.output and "active" in everything.output
        again = runner.invoke(app, ["journeys", "playbook", "install", "--all"])
        assert again.output.count(": exists") == len(KEYS)
        assert "birthday" in runner.invoke(app, ["journeys", "playbook", "list"]).output
        refused = runner.invoke(app, ["journeys", "playbook", "install"])
        assert refused.exit_code == 1 and "--all" in refused.output
    finally:
        get_settings.cache_clear()
