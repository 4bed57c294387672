"""Calls from a PBX through the Zammad-compatible Generic CTI endpoint: the caller log, the timeline, missed calls."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from clm.sales.models import Task
from clm.service.calls import new_token
from clm.service.desk_models import Call
from clm.tracking.models import Event
from tests.customers.shop import T0


@pytest.fixture
def token(db):
    value = new_token(db)
    db.commit()
    return value


@pytest.fixture
def clock(app):
    now = [T0]
    app.state.dashboard_clock = lambda: now[0]
    return now


def post(client, token, as_json=True, **fields):
    if as_json:
        return client.post(f"/hooks/cti/{token}", json=fields)
    return client.post(f"/hooks/cti/{token}", data=fields)


def test_new_call_answer_hangup_logs_the_call_with_its_duration_and_recording(client, db, shop, make_agent,
                                                                               token, clock):
    lan = make_agent("Lan")
    db.commit()
    customer = shop.customer("Nguyễn Văn An", phone="0912345678")
    base = {"from": "84912345678", "to": "842873001234", "direction": "in", "callId": "c-1"}
    assert post(client, token, event="newCall", user=["Lan"], queue="cskh", **base).json() == {}
    clock[0] = T0 + timedelta(seconds=8)
    assert post(client, token, event="answer", answeringNumber=lan.email, **base).status_code == 200
    clock[0] = T0 + timedelta(seconds=8 + 192)
    r = post(client, token, event="hangup", cause="normalClearing",
             recordingUrl="https://pbx.shop.vn/rec/c-1.mp3", **base)
    assert r.status_code == 200 and r.json() == {}

    db.expire_all()
    call = db.scalar(sa.select(Call).where(Call.call_id == "c-1"))
    assert call.customer_id == customer.id and call.phone == "+84912345678"
    assert call.state == "ended" and call.agent_id == lan.id and call.duration_seconds == 192
    assert call.recording_url == "https://pbx.shop.vn/rec/c-1.mp3" and call.queue == "cskh"
    [event] = db.scalars(sa.select(Event).where(Event.customer_id == customer.id, Event.name == "Call Received"))
    assert event.properties["duration_seconds"] == 192
    assert event.properties["recording_url"] == "https://pbx.shop.vn/rec/c-1.mp3"
    assert db.scalar(sa.select(sa.func.count()).select_from(Task).where(Task.customer_id == customer.id)) == 0


def test_a_missed_call_from_an_old_11_digit_number_makes_one_call_back_task_for_the_agent_rung(
        client, db, shop, make_agent, token, clock):
    lan = make_agent("Lan")
    db.commit()
    customer = shop.customer("Trần Thị Bình", phone="0382345678")
    # The PBX still sends the pre-2018 number 0168 234 5678, now 038 234 5678: the same customer.
    form = {"from": "01682345678", "to": "02873001234", "direction": "in", "callId": "c-2", "user[]": "Lan"}
    assert post(client, token, as_json=False, event="newCall", **form).status_code == 200
    clock[0] = T0 + timedelta(seconds=30)
    assert post(client, token, as_json=False, event="hangup", cause="cancel", **form).status_code == 200
    assert post(client, token, as_json=False, event="hangup", cause="cancel", **form).status_code == 200  # retried

    db.expire_all()
    call = db.scalar(sa.select(Call).where(Call.call_id == "c-2"))
    assert call.state == "missed" and call.customer_id == customer.id and call.duration_seconds == 0
    [task] = db.scalars(sa.select(Task).where(Task.customer_id == customer.id))
    assert call.task_id == task.id and task.assignee_id == lan.id and task.priority == "high"
    assert task.due_at == T0 + timedelta(hours=1)
    assert db.scalar(sa.select(Event.name).where(Event.customer_id == customer.id, Event.source == "service")) \
        == "Call Missed"


def test_an_unknown_caller_becomes_a_customer_and_an_anonymous_one_is_logged_without_one(client, db, token):
    post(client, token, event="newCall", **{"from": "0987654321", "to": "1900", "direction": "in", "callId": "u1"})
    post(client, token, event="newCall", **{"from": "anonymous", "to": "1900", "direction": "in", "callId": "u2"})
    post(client, token, event="hangup", cause="cancel", **{"from": "anonymous", "to": "1900", "direction": "in",
                                                           "callId": "u2"})
    db.expire_all()
    known = db.scalar(sa.select(Call).where(Call.call_id == "u1"))
    anonymous = db.scalar(sa.select(Call).where(Call.call_id == "u2"))
    assert known.customer_id is not None and known.phone == "+84987654321"
    assert anonymous.customer_id is None and anonymous.state == "missed" and anonymous.task_id is None


def test_an_outbound_call_nobody_answers_is_not_a_missed_call(client, db, shop, make_agent, token):
    make_agent("Minh")
    db.commit()
    customer = shop.customer("Lê Văn Cường", phone="0901234567")
    base = {"from": "842873001234", "to": "0901234567", "direction": "out", "callId": "o1", "user": "Minh"}
    post(client, token, event="newCall", **base)
    post(client, token, event="hangup", cause="noAnswer", **base)
    db.expire_all()
    call = db.scalar(sa.select(Call).where(Call.call_id == "o1"))
    assert call.state == "ended" and call.customer_id == customer.id and call.task_id is None


def test_a_retried_new_call_is_stored_once(client, db, token):
    base = {"from": "0912000111", "to": "1900", "direction": "in", "callId": "r1"}
    post(client, token, event="newCall", **base)
    post(client, token, event="newCall", **base)
    assert db.scalar(sa.select(sa.func.count()).select_from(Call).where(Call.call_id == "r1")) == 1


def test_an_unknown_call_id_or_a_bad_token_is_refused_and_stores_nothing(client, db, token):
    base = {"from": "0912000111", "to": "1900", "direction": "in"}
    r = post(client, token, event="hangup", callId="never-announced", cause="normalClearing", **base)
    assert r.status_code == 404 and r.json()["error"]["field"] == "callId"
    r = post(client, "not-the-token", event="newCall", callId="x1", **base)
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_token"
    r = post(client, token, event="ring", callId="x2", **base)
    assert r.status_code == 422 and r.json()["error"]["field"] == "event"
    r = post(client, token, event="hangup", callId="x3", recordingUrl="javascript:alert(1)", **base)
    assert r.status_code == 422 and r.json()["error"]["field"] == "recordingUrl"
    assert db.scalar(sa.select(sa.func.count()).select_from(Call)) == 0


def test_the_endpoint_is_off_until_a_token_is_made(client):
    r = client.post("/hooks/cti/anything", json={"event": "newCall", "direction": "in", "callId": "z"})
    assert r.status_code == 404 and "cti-token" in r.json()["error"]["message"]


def test_zammads_own_path_answers_too(client, db, token):
    r = client.post(f"/api/v1/cti/{token}", json={"event": "newCall", "from": "0912000222", "to": "1900",
                                                  "direction": "in", "callId": "zp"})
    assert r.status_code == 200
    assert db.scalar(sa.select(sa.func.count()).select_from(Call).where(Call.call_id == "zp")) == 1
