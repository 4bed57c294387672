"""Web chat on SQLite and PostgreSQL: a visitor (the tracking API's anonymousId) writes through the widget's
endpoints, which go through `conversations.receive` (a ticket on the chat inbox, stored once per widget
message id); the agent's reply comes back to the visitor by the messages list and the live stream; origins,
keys and rate limits are enforced; text stays text."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clm.lib.errors import FieldError
from clm.service import chat
from clm.service.conversations import ReplyIn, reply
from clm.service.models import Message, Ticket
from clm.web.sse import Timing

VISITOR = "5b1f6c9e-3a0d-4c77-9d0e-8f2a1b3c4d5e"
ORIGIN = "https://shop.vn"


@pytest.fixture
def site(db, app):
    app.state.sse_timing = Timing(interval=0, duration=0)
    made = chat.save_site(db, chat.SiteIn(name="Cửa hàng", origins=[ORIGIN + "/"], greeting={"vi": "Chào bạn!"}))
    db.commit()
    return made


@pytest.fixture
def widget(app):
    with TestClient(app, headers={"Origin": ORIGIN}) as client:
        yield client


def _say(widget, site, body, mid, visitor=VISITOR):
    return widget.post(f"/chat/{site.public_key}/messages", content=json.dumps({"visitor": visitor, "id": mid,
                                                                              "body": body}))


def test_a_visitors_message_opens_a_chat_ticket_on_the_profile_of_their_anonymous_id(db, shop, site, widget):
    r = _say(widget, site, "Shop ơi, còn áo size M không?", "m1")
    assert r.status_code == 201 and r.json()["created"] is True
    assert r.headers["access-control-allow-origin"] == ORIGIN
    ticket = db.scalar(sa.select(Ticket))
    assert (ticket.channel, ticket.inbox_id, ticket.subject) == ("chat", site.inbox_id, "Shop ơi, còn áo size M không?")
    # the visitor browses on: the tracked page view lands on the same profile
    shop._ingest([{"type": "page", "anonymousId": VISITOR, "name": "Áo thun"}], ticket.created_at)
    assert chat.visitor_customer(db, VISITOR) == ticket.customer_id


def test_a_message_sent_again_with_the_same_id_is_stored_once(db, site, widget):
    first = _say(widget, site, "Alo", "m1")
    again = _say(widget, site, "Alo", "m1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["message"]["id"] == first.json()["message"]["id"]
    assert db.scalar(sa.select(sa.func.count()).select_from(Message)) == 1


def test_the_agents_reply_reaches_the_visitor_by_list_and_by_stream_and_a_script_stays_text(db, site, widget,
                                                                                            make_agent):
    lan = make_agent("Trần Thị Lan")
    sent = _say(widget, site, "<img src=x onerror=alert(1)>", "m1").json()["message"]
    ticket = db.scalar(sa.select(Ticket))
    reply(db, ticket.id, ReplyIn(body="Dạ còn ạ <b>size M</b>"), by=lan.id)
    db.commit()

    listed = widget.get(f"/chat/{site.public_key}/messages", params={"visitor": VISITOR}).json()["messages"]
    assert [(m["from"], m["body"], m["author"]) for m in listed] == [
        ("visitor", "<img src=x onerror=alert(1)>", None), ("agent", "Dạ còn ạ <b>size M</b>", "Lan")]
    r = widget.get(f"/chat/{site.public_key}/stream", params={"visitor": VISITOR},
                   headers={"Last-Event-ID": str(sent["id"])})
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(b.split("data: ", 1)[1]) for b in r.text.split("\n\n") if "data: " in b]
    assert [e["body"] for e in events] == ["Dạ còn ạ <b>size M</b>"]
    # another visitor reads nothing of it
    assert widget.get(f"/chat/{site.public_key}/messages",
                      params={"visitor": "another-visitor-0001"}).json()["messages"] == []


def test_an_unknown_key_a_foreign_origin_and_bad_input_are_refused_by_name(db, app, site, widget):
    assert _say(widget, type("S", (), {"public_key": "nope"}), "Alo", "m1").status_code == 404
    with TestClient(app, headers={"Origin": "https://evil.example"}) as stranger:
        r = _say(stranger, site, "Alo", "m1")
        assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    r = _say(widget, site, "   ", "m1")
    assert r.status_code == 422 and r.json()["error"]["field"] == "body"
    r = _say(widget, site, "Alo", "m1", visitor="x")
    assert r.status_code == 422 and r.json()["error"]["field"] == "visitor"
    r = widget.post(f"/chat/{site.public_key}/messages", content=b"[1, 2]")
    assert r.status_code == 422
    assert db.scalar(sa.select(sa.func.count()).select_from(Message)) == 0


def test_a_visitor_sending_too_fast_is_slowed_down(db, site, widget):
    codes = [_say(widget, site, f"tin {i}", f"m{i}").status_code for i in range(chat_limit() + 1)]
    assert codes[:-1] == [201] * chat_limit() and codes[-1] == 429


def chat_limit() -> int:
    from clm.service.chat_public import PER_VISITOR

    return PER_VISITOR


def test_the_preflight_lets_the_sites_origin_post_json(site, widget):
    r = widget.options(f"/chat/{site.public_key}/messages", headers={"Access-Control-Request-Method": "POST"})
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == ORIGIN
    assert "Content-Type" in r.headers["access-control-allow-headers"]


def test_a_site_refuses_an_origin_that_is_not_one(db):
    with pytest.raises(FieldError) as refused:
        chat.save_site(db, chat.SiteIn(name="Sai", origins=["shop.vn/path"]))
    assert refused.value.field == "origins[0]"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=0, max_size=120))
def test_only_id_like_visitor_ids_are_accepted_and_accepted_ones_are_kept_as_given(value):
    try:
        checked = chat.check_visitor(value)
    except FieldError as exc:
        assert exc.field == "visitor"
        assert not chat.VISITOR.match(value.strip())
    else:
        assert checked == value.strip() and 8 <= len(checked) <= 100
        assert all(c.isascii() and (c.isalnum() or c in "._:-") for c in checked)
