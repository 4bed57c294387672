"""A deal's own page inside the customer's record (issue 11): what it shows (value, products, the pipeline's
stages, owner, the lead's source, campaign, both scores with their reasons, the customer's events and
messages), what it changes (stage moves under the board's rules, won and lost with a reason, fields,
products, calls and tasks), refusals naming the field with nothing changed, and the links that lead to it."""

from __future__ import annotations

import re
from datetime import date, timedelta

import sqlalchemy as sa

from clm.commerce.models import Order
from clm.sales.leads import LeadIn, capture_lead
from clm.sales.models import Activity, Lead, Opportunity, OpportunityStageChange, Task
from clm.sales.opportunities import DealIn, convert_lead
from clm.sales.pipelines import default_pipeline, stage_by
from tests.dashboard.conftest import token_of


def a_deal(db, phone: str = "0915000001", name: str = "Nguyễn Thu Hà", value: int = 12_000_000,
           campaign: str | None = "sofa-thang-3") -> Opportunity:
    lead = capture_lead(db, LeadIn(phone=phone, name=name, source="web_form", campaign=campaign,
                                   message="Cần sofa góc cho phòng khách"), score=False,
                        first_contact_minutes=0).lead
    lead.score, lead.score_kind, lead.rule_points = 0.62, "learned", 30.0
    lead.score_detail = {"model_id": None, "note": None, "reasons": [
        {"feature": "events:Product Added:7d", "value": 3.0, "contribution": 0.8,
         "vi": "3 lần “Product Added” trong 7 ngày qua", "en": "3 × “Product Added” in the last 7 days"}]}
    lead.rule_points_detail = [{"rule_id": 1, "name": "Thêm vào giỏ", "points": 30.0}]
    deal = convert_lead(db, lead.id, DealIn(title="Sofa góc L", value=value,
                                            expected_close_date=date.today() + timedelta(days=14)))
    db.commit()
    return deal


def test_the_page_shows_the_deal_its_stages_and_what_it_inherited_from_the_lead(db, as_role, shop):
    known = shop.customer("Nguyễn Thu Hà", phone="0915000001")
    shop.track(known, "Product Viewed", product_id="sofa-l")
    deal = a_deal(db)
    customer = db.get(Lead, deal.lead_id).customer_id
    assert customer == known.id  # the lead joined the customer who had browsed: one history
    html = as_role("sales").get(f"/sales/opportunities/{deal.id}").text
    assert deal.code in html and "Sofa góc L" in html and "12,000,000" in html
    stages = re.findall(r"<li class=\"(current )?\s*kind-(\w+)\">", html)
    assert [kind for _, kind in stages][-2:] == ["won", "lost"] and ("current ", "open") == stages[0]
    assert "Web form" in html and "sofa-thang-3" in html and "Cần sofa góc cho phòng khách" in html
    score = html.split('id="lead-score"')[1].split("</section>")[0]
    assert "62.0%" in score and "3 × “Product Added” in the last 7 days" in score
    assert "Rule points: 30" in score and "Thêm vào giỏ +30" in score
    history = html.split('id="sales-history"')[1].split("</section>")[0]
    assert "Product Viewed" in history and "Lead Form Submitted" in history  # the lead's own submission
    assert f'href="/customers/{customer}"' in html and f'href="/sales/leads/{deal.lead_id}"' in html


def test_moving_winning_and_losing_from_the_page_follow_the_boards_rules(db, as_role):
    deal = a_deal(db)
    other = a_deal(db, phone="0915000002", name="Trần Quốc Bảo")
    client = as_role("sales")
    token = token_of(client)
    r = client.post(f"/sales/opportunities/{deal.id}/stage", data={"stage": "proposal", "back": "deal", "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == f"/sales/opportunities/{deal.id}"
    db.expire_all()
    assert db.get(Opportunity, deal.id).stage_id == stage_by(db, default_pipeline(db).id, "proposal").id
    # lost without a reason: refused, naming the field; the deal stays where it was
    r = client.post(f"/sales/opportunities/{other.id}/stage", data={"stage": "lost", "back": "deal", "csrf_token": token})
    assert r.status_code == 422 and "reason: say why the deal was lost" in r.text and 'id="deal-error"' in r.text
    db.expire_all()
    assert db.get(Opportunity, other.id).status == "open"
    r = client.post(f"/sales/opportunities/{other.id}/stage",
                    data={"stage": "lost", "reason": "Chọn bên khác", "back": "deal", "csrf_token": token})
    assert r.status_code == 303
    # won: an order the customer's value counts; a closed deal has no move form and refuses a move
    r = client.post(f"/sales/opportunities/{deal.id}/stage", data={"stage": "won", "back": "deal", "csrf_token": token})
    assert r.status_code == 303
    db.expire_all()
    won = db.get(Opportunity, deal.id)
    assert won.status == "won" and db.get(Order, won.order_id).total == 12_000_000
    html = client.get(f"/sales/opportunities/{deal.id}").text
    assert 'id="deal-stage-form"' not in html and "Recorded as an order" in html
    r = client.post(f"/sales/opportunities/{deal.id}/stage", data={"stage": "new", "back": "deal", "csrf_token": token})
    assert r.status_code == 409 and "stage: opportunity" in r.text and "cannot move" in r.text
    assert "Chọn bên khác" in client.get(f"/sales/opportunities/{other.id}").text
    moves = db.scalar(sa.select(sa.func.count()).select_from(OpportunityStageChange)
                      .where(OpportunityStageChange.opportunity_id == deal.id))
    assert moves == 3  # opened, proposal, won


def test_a_stage_of_another_pipeline_is_refused_naming_the_stage(db, as_role):
    deal = a_deal(db)
    client = as_role("sales")
    r = client.post(f"/sales/opportunities/{deal.id}/stage", data={"stage": "nope", "back": "deal",
                                                                   "csrf_token": token_of(client)})
    assert r.status_code == 422 and "stage:" in r.text
    db.expire_all()
    assert db.get(Opportunity, deal.id).stage_id == stage_by(db, default_pipeline(db).id, "new").id


def test_the_deals_fields_and_products_change_from_the_page_and_bad_input_names_the_field(db, as_role, user_factory):
    deal = a_deal(db)
    rep = user_factory("sales", email="rep2@shop.vn")
    client = as_role("manager")
    token = token_of(client)
    r = client.post(f"/sales/opportunities/{deal.id}", data={
        "title": "Sofa góc L + bàn trà", "value": "14.500.000", "expected_close_date": "2031-05-02",
        "priority": "urgent", "owner_id": str(rep.id), "csrf_token": token})
    assert r.status_code == 303
    db.expire_all()
    changed = db.get(Opportunity, deal.id)
    assert (changed.title, changed.value, changed.expected_close_date, changed.priority, changed.owner_id) == (
        "Sofa góc L + bàn trà", 14_500_000, date(2031, 5, 2), "urgent", rep.id)
    for data, field in (({"value": "mười triệu"}, "value:"), ({"priority": "whenever"}, "priority"),
                        ({"expected_close_date": "2031-13-40"}, "expected_close_date"),
                        ({"owner_id": "999999"}, "owner_id: no staff user has id 999999")):
        r = client.post(f"/sales/opportunities/{deal.id}", data={**data, "csrf_token": token})
        assert r.status_code == 422 and field in r.text, (data, r.text[:300])
    db.expire_all()
    assert db.get(Opportunity, deal.id).value == 14_500_000
    r = client.post(f"/sales/opportunities/{deal.id}/products", data={
        "sku": "SOFA-L", "name": "Sofa góc L", "quantity": "1", "price": "12.000.000", "csrf_token": token})
    assert r.status_code == 303
    r = client.post(f"/sales/opportunities/{deal.id}/products", data={
        "sku": "BAN-TRA", "quantity": "2", "price": "1.500.000", "csrf_token": token})
    assert r.status_code == 303
    db.expire_all()
    assert [p["sku"] for p in db.get(Opportunity, deal.id).products] == ["SOFA-L", "BAN-TRA"]
    assert db.get(Opportunity, deal.id).value == 15_000_000  # the products' total
    r = client.post(f"/sales/opportunities/{deal.id}/products", data={"sku": "", "quantity": "1",
                                                                     "csrf_token": token})
    assert r.status_code == 422 and "sku" in r.text
    r = client.post(f"/sales/opportunities/{deal.id}/products", data={"sku": "X", "quantity": "0",
                                                                     "csrf_token": token})
    assert r.status_code == 422 and "quantity" in r.text
    r = client.post(f"/sales/opportunities/{deal.id}/products", data={"remove": "0", "csrf_token": token})
    assert r.status_code == 303
    db.expire_all()
    assert [p["sku"] for p in db.get(Opportunity, deal.id).products] == ["BAN-TRA"]
    assert "BAN-TRA" in client.get(f"/sales/opportunities/{deal.id}").text


def test_calls_and_tasks_are_added_on_the_deal_and_the_leads_calls_come_with_it(db, as_role):
    deal = a_deal(db)
    client = as_role("sales")
    token = token_of(client)
    r = client.post(f"/sales/leads/{deal.lead_id}/activities", data={"kind": "call", "subject": "Gọi lần đầu",
                                                                     "csrf_token": token})
    assert r.status_code == 303
    r = client.post(f"/sales/opportunities/{deal.id}/activities", data={"kind": "meeting", "subject": "Gặp tại showroom",
                                                                       "csrf_token": token})
    assert r.status_code == 303
    r = client.post(f"/sales/opportunities/{deal.id}/tasks", data={
        "subject": "Gửi báo giá", "due_at": "2031-03-02T10:00", "remind_at": "2031-03-02T09:00", "priority": "high",
        "csrf_token": token})
    assert r.status_code == 303
    task = db.scalar(sa.select(Task).where(Task.opportunity_id == deal.id))
    assert task.subject == "Gửi báo giá" and task.priority == "high"
    assert task.due_at.hour == 3  # 10:00 in Vietnam (the business time zone) is 03:00 UTC
    html = client.get(f"/sales/opportunities/{deal.id}").text
    work = html.split('id="lead-activities"')[1].split("</section>")[0]
    assert "Gọi lần đầu" in work and "Gặp tại showroom" in work
    assert "Gửi báo giá" in html.split('id="lead-tasks"')[1]
    r = client.post(f"/sales/opportunities/{deal.id}/tasks", data={"subject": "Không hạn", "csrf_token": token})
    assert r.status_code == 422 and "due_at: a task needs a due time" in r.text
    r = client.post(f"/sales/opportunities/{deal.id}/tasks", data={"subject": "", "due_at": "2031-03-02T10:00",
                                                                  "csrf_token": token})
    assert r.status_code == 422 and "subject" in r.text
    r = client.post(f"/sales/opportunities/{deal.id}/activities", data={"kind": "email", "subject": "x",
                                                                       "csrf_token": token})
    assert r.status_code == 422 and "kind" in r.text
    assert db.scalar(sa.select(sa.func.count()).select_from(Task).where(Task.opportunity_id == deal.id)) == 1
    assert db.scalar(sa.select(sa.func.count()).select_from(Activity).where(Activity.customer_id == deal.customer_id)) == 2
    r = client.post(f"/sales/tasks/{task.id}/done", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == f"/sales/opportunities/{deal.id}"
    db.expire_all()
    assert db.get(Task, task.id).done_at is not None


def test_a_task_is_added_on_the_leads_page_too(db, as_role):
    lead = capture_lead(db, LeadIn(phone="0915000009", name="Lý Thanh"), score=False).lead
    db.commit()
    client = as_role("sales")
    r = client.post(f"/sales/leads/{lead.id}/tasks", data={"subject": "Gọi lại chiều nay", "due_at": "2031-03-02T15:00",
                                                           "csrf_token": token_of(client)})
    assert r.status_code == 303
    html = client.get(f"/sales/leads/{lead.id}").text
    assert "Gọi lại chiều nay" in html.split('id="lead-tasks"')[1]
    assert "Lead Created" in html.split('id="sales-history"')[1]


def test_the_board_the_lead_list_the_lead_and_the_customer_360_link_to_the_deal(db, as_role):
    deal = a_deal(db)
    client = as_role("sales")
    link = f'href="/sales/opportunities/{deal.id}"'
    assert link in client.get("/sales/board").text
    assert link in client.get("/sales/leads?status=converted").text
    assert link in client.get(f"/sales/leads/{deal.lead_id}").text
    assert link in client.get(f"/customers/{deal.customer_id}").text


def test_the_page_speaks_vietnamese_and_an_unknown_deal_is_a_404(db, as_role, user_factory):
    deal = a_deal(db)
    user_factory("sales", email="vi@shop.vn", locale="vi")
    from tests.dashboard.conftest import log_in

    client = as_role("outsider")
    assert log_in(client, "vi@shop.vn").status_code == 303
    html = client.get(f"/sales/opportunities/{deal.id}").text
    assert "Cập nhật cơ hội" in html and "Các lần chuyển giai đoạn" in html and "Sản phẩm" in html
    assert client.get("/sales/opportunities/999999").status_code == 404
