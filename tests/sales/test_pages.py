"""The sales dashboard: the board (moves by form and by the drag's fetch, refusals shown), the lead list
(search ignoring diacritics, filters), a lead's page (assignment reason, SLA, update, log a call, convert),
lead forms (saved settings reach the public form; the embed snippet), assignment rules, the forecast."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from clm.access.models import User
from clm.lib.clock import utcnow
from clm.sales.leads import LeadIn, capture_lead
from clm.sales.models import AssignmentRule, Lead, LeadForm, Opportunity, OpportunityStageChange
from clm.sales.opportunities import DealIn, convert_lead
from clm.sales.pipelines import default_pipeline, stage_by
from tests.dashboard.conftest import token_of


def deal(db, phone: str, name: str, value: int = 5_000_000, stage: str | None = None) -> Opportunity:
    lead = capture_lead(db, LeadIn(phone=phone, name=name), score=False, first_contact_minutes=0).lead
    opportunity = convert_lead(db, lead.id, DealIn(title=f"Sofa cho {name}", value=value, stage=stage,
                                                   expected_close_date=date.today() + timedelta(days=20)))
    db.commit()
    return opportunity


def test_the_board_shows_each_stage_with_its_deals_count_and_value(db, as_role):
    deal(db, "0911000001", "Nguyễn Văn An", 12_000_000)
    deal(db, "0911000002", "Trần Thị Bình", 8_000_000, stage="proposal")
    html = as_role("sales").get("/sales/board").text
    columns = re.findall(r'<section class="kcol kind-(\w+)" data-stage="(\w+)"', html)
    assert [key for _, key in columns][:2] == ["new", "qualified"] and ("won", "won") in columns
    new_column = html.split('data-stage="new"')[1].split("</section>")[0]
    assert "Sofa cho Nguyễn Văn An" in new_column and "12,000,000" in new_column  # English: the test browser's language
    assert 'data-count="1"' in new_column


def test_moving_a_card_by_its_form_records_the_stage_change_and_who_made_it(db, as_role):
    opportunity = deal(db, "0911000003", "Lê Văn Cường")
    client = as_role("sales")
    r = client.post(f"/sales/opportunities/{opportunity.id}/stage", data={"stage": "proposal", "csrf_token": token_of(client)})
    assert r.status_code == 303 and r.headers["location"].startswith("/sales/board?pipeline=")
    db.expire_all()
    moved = db.get(Opportunity, opportunity.id)
    assert moved.stage_id == stage_by(db, default_pipeline(db).id, "proposal").id
    change = db.scalars(sa.select(OpportunityStageChange).where(OpportunityStageChange.opportunity_id == opportunity.id)
                        .order_by(OpportunityStageChange.id.desc())).first()
    assert change.to_stage_id == moved.stage_id
    assert change.user_id == db.scalar(sa.select(User.id).where(User.email == "sales@shop.vn"))


def test_a_drop_answers_the_board_fragment_and_a_refused_move_says_why(db, as_role):
    opportunity = deal(db, "0911000004", "Phạm Thị Dung")
    client = as_role("sales")
    headers = {"X-CSRF-Token": token_of(client), "X-Requested-With": "fetch"}
    r = client.post(f"/sales/opportunities/{opportunity.id}/stage", data={"stage": "negotiation"}, headers=headers)
    assert r.status_code == 200 and r.text.startswith('<div id="board"')
    assert "Phạm Thị Dung" in r.text.split('data-stage="negotiation"')[1].split("</section>")[0]
    r = client.post(f"/sales/opportunities/{opportunity.id}/stage", data={"stage": "lost"}, headers=headers)
    assert r.status_code == 422 and "reason: say why the deal was lost" in r.text
    r = client.post(f"/sales/opportunities/{opportunity.id}/stage", data={"stage": "nowhere"}, headers=headers)
    assert r.status_code == 422 and "stage:" in r.text
    r = client.post(f"/sales/opportunities/{opportunity.id}/stage", data={"stage": "lost", "reason": "Giá cao"},
                    headers=headers)
    assert r.status_code == 200
    r = client.post(f"/sales/opportunities/{opportunity.id}/stage", data={"stage": "new"}, headers=headers)
    assert r.status_code == 409 and "is lost; it cannot move" in r.text
    db.expire_all()
    assert db.get(Opportunity, opportunity.id).status == "lost"


def test_the_lead_list_searches_names_without_diacritics_and_filters_by_status(db, as_role):
    capture_lead(db, LeadIn(phone="0912000001", name="Nguyễn Thị Hằng", source="zalo"), score=False)
    capture_lead(db, LeadIn(phone="0912000002", name="Đặng Văn Đức", source="referral"), score=False)
    db.commit()
    client = as_role("sales")
    html = client.get("/sales/leads", params={"q": "hang nguyen"}).text
    assert "Nguyễn Thị Hằng" in html and "Đặng Văn Đức" not in html
    html = client.get("/sales/leads", params={"q": "duc"}).text
    assert "Đặng Văn Đức" in html and "Nguyễn Thị Hằng" not in html
    html = client.get("/sales/leads", params={"source": "zalo", "status": "open"}).text
    assert "Nguyễn Thị Hằng" in html and "Đặng Văn Đức" not in html
    assert "No lead matches" in client.get("/sales/leads", params={"status": "converted"}).text


def test_a_leads_page_shows_why_it_was_assigned_and_logging_a_call_makes_it_contacted(db, as_role, user_factory):
    client = as_role("sales")
    rep = user_factory("sales", email="rep@shop.vn")
    db.add(AssignmentRule(name="Miền Bắc", method="round_robin", sources=[], provinces=["Hà Nội"], product_lines=[],
                          user_ids=[rep.id], next_index=0, active=True, position=0, created_at=utcnow(),
                          updated_at=utcnow()))
    lead = capture_lead(db, LeadIn(phone="0913000001", name="Vũ Minh", city="Hà Nội"), score=False,
                        first_contact_minutes=15).lead
    db.commit()
    html = client.get(f"/sales/leads/{lead.id}").text
    assert "Rule “Miền Bắc” (province Hà Nội): in turn, person 1 of 1" in html
    assert "Call before" in html
    r = client.post(f"/sales/leads/{lead.id}/activities", data={"kind": "call", "subject": "Gọi tư vấn",
                                                               "csrf_token": token_of(client)})
    assert r.status_code == 303
    html = client.get(f"/sales/leads/{lead.id}").text
    assert "Gọi tư vấn" in html and 'id="lead-status">Contacted' in html


def test_a_lead_update_that_the_flow_refuses_names_the_field_and_changes_nothing(db, as_role):
    lead = capture_lead(db, LeadIn(phone="0913000002", name="Hồ Lan"), score=False).lead
    db.commit()
    client = as_role("sales")
    r = client.post(f"/sales/leads/{lead.id}", data={"status": "unqualified", "priority": "urgent",
                                                     "csrf_token": token_of(client)})
    assert r.status_code == 422 and "unqualified_reason: say why the lead is unqualified" in r.text
    db.expire_all()
    assert db.get(Lead, lead.id).priority == "low"


def test_converting_a_lead_from_its_page_opens_a_deal_on_the_board(db, as_role):
    lead = capture_lead(db, LeadIn(phone="0913000003", name="Đỗ Quang"), score=False).lead
    db.commit()
    client = as_role("sales")
    r = client.post(f"/sales/leads/{lead.id}/convert", data={"title": "Bàn ăn", "value": "15.000.000",
                                                            "csrf_token": token_of(client)})
    assert r.status_code == 303
    opportunity = db.scalar(sa.select(Opportunity).where(Opportunity.lead_id == lead.id))
    assert opportunity.value == 15_000_000 and opportunity.title == "Bàn ăn"
    assert "Bàn ăn" in client.get("/sales/board").text
    r = client.post(f"/sales/leads/{lead.id}/convert", data={"csrf_token": token_of(client)})
    assert r.status_code == 409 and "was converted already" in r.text


def test_a_saved_form_gives_the_public_form_its_title_fields_campaign_and_owner(db, as_role, client, user_factory):
    admin = as_role("manager")
    owner = user_factory("sales", email="owner@shop.vn")
    r = admin.post("/sales/forms/new", data={"key": "sofa-tet", "title": "Nhận báo giá sofa", "fields": ["name", "phone", "city"],
                                             "campaign": "tet-2026", "owner_id": str(owner.id), "active": "on",
                                             "csrf_token": token_of(admin)})
    assert r.status_code == 303
    form = db.scalar(sa.select(LeadForm).where(LeadForm.key == "sofa-tet"))
    page = admin.get(r.headers["location"]).text
    assert "/forms/lead?form=sofa-tet&amp;amp;lang=en" in page  # the snippet, escaped inside the textarea
    assert 'data-copy="snippet"' in page
    public = client.get("/forms/lead", params={"form": "sofa-tet"}).text
    assert "Nhận báo giá sofa" in public and 'name="city"' in public and 'name="email"' not in public
    from clm.sales import form as lead_form

    key = lead_form.form_key(client.app.state.settings.secret_key.get_secret_value())
    token = lead_form.issue_token(key, "sofa-tet", utcnow() - timedelta(seconds=30))
    r = client.post("/forms/lead", json={"form": "sofa-tet", "token": token, "name": "Lý Thu", "phone": "0914000001"})
    assert r.status_code == 201
    lead = db.scalar(sa.select(Lead).order_by(Lead.id.desc()).limit(1))
    assert (lead.campaign, lead.owner_id) == ("tet-2026", owner.id)
    r = admin.post(f"/sales/forms/{form.id}", data={"key": "sofa-tet", "title": "x", "fields": ["name"],
                                                    "csrf_token": token_of(admin)})
    assert r.status_code == 422 and "ask for a phone number or an email address" in r.text


def test_assignment_rules_are_added_and_deleted_from_their_page_and_a_bad_one_is_explained(db, as_role, user_factory):
    admin = as_role("admin")
    rep = user_factory("sales", email="rep2@shop.vn")
    r = admin.post("/sales/assignment/new", data={"name": "Zalo", "method": "least_load", "sources": "zalo",
                                             "provinces": "Hà Nội, Huế", "user_ids": str(rep.id),
                                             "csrf_token": token_of(admin)})
    assert r.status_code == 303
    rule = db.scalar(sa.select(AssignmentRule))
    assert (rule.sources, rule.provinces, rule.user_ids, rule.method) == (["zalo"], ["Hà Nội", "Huế"], [rep.id], "least_load")
    r = admin.post("/sales/assignment/new", data={"name": "Không ai", "csrf_token": token_of(admin)})
    assert r.status_code == 422 and "user_ids" in r.text
    assert admin.post(f"/sales/assignment/{rule.id}/delete", data={"csrf_token": token_of(admin)}).status_code == 303
    assert db.scalar(sa.select(sa.func.count()).select_from(AssignmentRule)) == 0


def test_the_forecast_page_charts_weighted_value_by_close_month(db, as_role):
    deal(db, "0915000001", "Mai Anh", 10_000_000, stage="proposal")
    html = as_role("manager").get("/sales/forecast").text
    data = re.search(r'<script type="application/json" id="forecast-data">(.*?)</script>', html).group(1)
    import json

    chart = json.loads(data)
    assert sum(chart["weighted"]) == 5_000_000 and sum(chart["rest"]) == 5_000_000
    assert "/static/vendor/chartjs/chart.umd.min.js" in html


@pytest.mark.parametrize("role,path,code", [("agent", "/sales/board", 403), ("marketer", "/sales/leads", 403),
                                            ("sales", "/sales/forms", 403), ("sales", "/sales/assignment", 403),
                                            ("sales", "/sales/forecast", 200)])
def test_who_may_open_the_sales_pages(as_role, role, path, code):
    assert as_role(role).get(path).status_code == code


def test_the_pages_speak_vietnamese(db, as_role, user_factory):
    client = as_role("sales")
    client.post("/locale", data={"locale": "vi", "csrf_token": token_of(client)})
    html = client.get("/sales/leads").text
    assert "Khách hàng tiềm năng" in html and "Chưa có khách tiềm năng" in html


def test_a_leads_page_shows_its_rule_points_and_the_forecast_compares_them_with_the_learned_score(db, as_role):
    from clm.sales.points import PointRuleIn, save_point_rule
    from clm.sales.scoring.service import train
    from tests.sales.test_scoring import synthetic_history

    synthetic_history(db, 200)
    save_point_rule(db, PointRuleIn(name="Ở Huế", points=7, rule={"type": "profile", "field": "city", "op": "eq",
                                                                   "value": "Huế"}))
    train(db)
    lead = capture_lead(db, LeadIn(phone="0918000001", city="Huế"), first_contact_minutes=0).lead
    db.commit()
    client = as_role("manager")
    assert "Rule points: 7" in client.get(f"/sales/leads/{lead.id}").text
    html = client.get("/sales/forecast").text
    assert re.search(r"learned score tells won from lost with AUC 0\.\d\d; your rule points with AUC 0\.\d\d", html)
