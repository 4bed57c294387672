"""Rule points from the dashboard (issue 11): the list, adding a rule with the segment builder's rule-tree editor
(a structural change redraws the editor), editing and deleting it, decay, and refusals naming the field with
nothing saved. A saved rule scores leads like one made through the API."""

from __future__ import annotations

import sqlalchemy as sa

from clm.sales.leads import LeadIn, capture_lead
from clm.sales.models import Lead, PointRule
from clm.sales.points import PointRuleIn, save_point_rule
from clm.sales.scoring.service import score_open_leads
from tests.dashboard.conftest import token_of

# An event condition as the segment builder's form posts it: "Product Added" at least once in 30 days.
CART = {"r.kind": "group", "r.mode": "all", "r.0.kind": "cond", "r.0.type": "event", "r.0.name": "Product Added",
        "r.0.op": "at_least", "r.0.count": "1", "r.0.window": "last", "r.0.days": "30"}
HUE = {"r.kind": "group", "r.mode": "all", "r.0.kind": "cond", "r.0.type": "profile", "r.0.field": "city",
       "r.0.op": "eq", "r.0.value": "Huế"}


def test_a_rule_is_added_with_the_rule_tree_editor_and_scores_leads(db, as_role):
    client = as_role("manager")
    html = client.get("/sales/points/new").text
    assert 'hx-post="/sales/points/builder"' in html and 'name="r.0.type"' in html
    token = token_of(client)
    # a structural change (add a condition) redraws the editor with two conditions, nothing saved
    r = client.post("/sales/points/builder", data={**HUE, "name": "Huế", "points": "15", "action": "add:r",
                                                   "csrf_token": token})
    assert r.status_code == 200 and 'name="r.1.type"' in r.text and 'value="Huế"' in r.text
    assert db.scalar(sa.select(sa.func.count()).select_from(PointRule)) == 0
    r = client.post("/sales/points/new", data={**HUE, "name": "Khách ở Huế", "points": "15", "half_life_days": "",
                                               "active": "1", "csrf_token": token})
    assert r.status_code == 303
    rule = db.scalar(sa.select(PointRule))
    assert (rule.name, rule.points, rule.half_life_days, rule.active) == ("Khách ở Huế", 15, None, True)
    assert rule.rule == {"all": [{"type": "profile", "field": "city", "op": "eq", "value": "Huế"}]}
    listing = client.get("/sales/points").text
    assert "Khách ở Huế" in listing and "+15" in listing and "Huế" in listing.split('id="points"')[1]
    lead = capture_lead(db, LeadIn(phone="0916000001", name="Tôn Nữ Hoa", city="Huế"), score=False).lead
    other = capture_lead(db, LeadIn(phone="0916000002", name="Phan Văn Nam", city="Đà Nẵng"), score=False).lead
    db.commit()
    score_open_leads(db)
    db.commit()
    db.expire_all()
    assert db.get(Lead, lead.id).rule_points == 15 and db.get(Lead, other.id).rule_points == 0
    assert "Khách ở Huế +15" in client.get(f"/sales/leads/{lead.id}").text


def test_an_event_rule_with_decay_is_edited_and_deleted(db, as_role):
    rule = save_point_rule(db, PointRuleIn(name="Giỏ hàng", points=20, half_life_days=10, rule={
        "type": "event", "name": "Product Added", "op": "at_least", "count": 1, "window": {"last_days": 30}}))
    db.commit()
    client = as_role("admin")
    html = client.get(f"/sales/points/{rule.id}").text
    assert 'value="Giỏ hàng"' in html and 'value="Product Added"' in html and 'name="half_life_days" value="10"' in html
    assert "halves every 10 days" in client.get("/sales/points").text
    token = token_of(client)
    r = client.post(f"/sales/points/{rule.id}", data={**CART, "name": "Giỏ hàng", "points": "-5",
                                                      "half_life_days": "7", "csrf_token": token})
    assert r.status_code == 303
    db.expire_all()
    changed = db.get(PointRule, rule.id)
    assert (changed.points, changed.half_life_days, changed.active) == (-5, 7, False)  # unticked: off
    r = client.post(f"/sales/points/{rule.id}/delete", data={"csrf_token": token})
    assert r.status_code == 303 and db.scalar(sa.select(sa.func.count()).select_from(PointRule)) == 0
    assert client.post(f"/sales/points/{rule.id}/delete", data={"csrf_token": token}).status_code == 404


def test_bad_input_names_the_field_and_saves_nothing(db, as_role):
    client = as_role("manager")
    token = token_of(client)
    cases = [
        ({**HUE, "name": "Huế", "points": "0"}, "points: Value error, a rule worth 0 points changes nothing"),
        ({**HUE, "name": "Huế", "points": "nhiều"}, "points: a whole number"),
        ({**HUE, "name": "Huế", "points": ""}, "points: give the points"),
        ({**HUE, "name": "Huế", "points": "5000"}, "points: Input should be less than or equal to 1000"),
        ({**HUE, "name": "Huế", "points": "5", "half_life_days": "0"}, "half_life_days: Input should be greater"),
        ({**HUE, "name": "", "points": "5"}, "name: String should have at least 1 character"),
        ({**CART, "r.0.name": "", "name": "Giỏ", "points": "5"}, "rule.all[0].name: String should have at least 1"),
    ]
    for data, message in cases:
        r = client.post("/sales/points/new", data={**data, "csrf_token": token})
        assert r.status_code == 422 and message in r.text, (data, r.text[r.text.find("alert"):][:300])
        assert 'id="builder"' in r.text  # the editor again, with what was typed
    assert db.scalar(sa.select(sa.func.count()).select_from(PointRule)) == 0


def test_the_points_pages_are_for_managers_and_speak_vietnamese(db, as_role, user_factory):
    assert as_role("sales").get("/sales/points").status_code == 403
    user_factory("manager", email="ql@shop.vn", locale="vi")
    from tests.dashboard.conftest import log_in

    client = as_role("outsider")
    assert log_in(client, "ql@shop.vn").status_code == 303
    assert "Chưa có quy tắc tính điểm" in client.get("/sales/points").text
    assert "Chu kỳ bán rã" in client.get("/sales/points/new").text
