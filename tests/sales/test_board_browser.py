"""The pipeline board in a real browser (Debian's chromium, Playwright, uvicorn; SQLite only): a sales rep
drags a deal card from "New" to "Proposal sent"; the card lands in that column, the column counts change,
and the move is stored (the deal's stage and a stage change by that rep) and is still there after a reload;
then the card's code opens the deal's own page, which shows that stage and moves the deal on."""

from __future__ import annotations

import os
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from clm.sales.leads import LeadIn, capture_lead
from clm.sales.models import Opportunity, OpportunityStageChange, PipelineStage
from clm.sales.opportunities import DealIn, convert_lead
from tests.conftest import serve_in_thread
from tests.dashboard.test_browser import ARGS, CHROMIUM

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: apt-get install chromium")


@pytest.fixture
def server_url(app, engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("the browser test runs once, on SQLite; the pages are tested on both backends")
    yield from serve_in_thread(app)


@pytest.fixture
def page(server_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(locale="en-US", viewport={"width": 1600, "height": 1000}).new_page()
        page.set_default_timeout(30_000)  # the machine is shared
        page.problems = []
        page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        yield page
        browser.close()


def test_a_rep_drags_a_deal_to_another_stage_and_the_move_is_stored(page, server_url, db, user_factory, tmp_path):
    from playwright.sync_api import expect

    rep = user_factory("sales", email="ban@shop.vn")
    lead = capture_lead(db, LeadIn(phone="0916000001", name="Bùi Thị Hà"), score=False, first_contact_minutes=0).lead
    deal = convert_lead(db, lead.id, DealIn(title="Sofa góc cho chị Hà", value=18_500_000,
                                            expected_close_date=date.today() + timedelta(days=14)))
    other = capture_lead(db, LeadIn(phone="0916000002", name="Tạ Văn Long"), score=False, first_contact_minutes=0).lead
    convert_lead(db, other.id, DealIn(title="Bàn ăn", value=9_000_000))
    db.commit()

    page.goto(f"{server_url}/sales/board")
    page.get_by_label("Email").fill("ban@shop.vn")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{server_url}/sales/board")
    new, proposal = page.locator(".kcol[data-stage=new]"), page.locator(".kcol[data-stage=proposal]")
    card = page.locator(f"#deal-{deal.id}")
    expect(new.locator(f"#deal-{deal.id}")).to_be_visible()
    expect(new.locator(".kcount")).to_have_text("2")
    page.evaluate("document.getElementById('board').dataset.old = 'yes'")

    card.drag_to(proposal.locator(".kcards"))
    page.wait_for_function("() => { const b = document.getElementById('board'); return b && !b.dataset.old; }")
    expect(page.locator(f".kcol[data-stage=proposal] #deal-{deal.id}")).to_be_visible()
    expect(page.locator(".kcol[data-stage=proposal] .kcount")).to_have_text("1")
    expect(page.locator(".kcol[data-stage=new] .kcount")).to_have_text("1")
    page.screenshot(path=str(tmp_path / "board.png"), full_page=True)

    db.expire_all()
    stored = db.get(Opportunity, deal.id)
    assert db.get(PipelineStage, stored.stage_id).key == "proposal"
    change = db.scalars(sa.select(OpportunityStageChange).where(OpportunityStageChange.opportunity_id == deal.id)
                        .order_by(OpportunityStageChange.id.desc())).first()
    assert db.get(PipelineStage, change.to_stage_id).key == "proposal" and change.user_id == rep.id

    page.reload()
    expect(page.locator(f".kcol[data-stage=proposal] #deal-{deal.id}")).to_be_visible()

    # the card's code opens the deal's own page: its stage is the one it was dragged to, and it moves from there
    page.locator(f"#deal-{deal.id} a.kcard-code").click()
    expect(page).to_have_url(f"{server_url}/sales/opportunities/{deal.id}")
    expect(page.locator("#deal-stages li.current")).to_contain_text("Proposal sent")
    expect(page.locator("#deal-value")).to_contain_text("18,500,000")
    expect(page.locator("#deal-changes")).to_contain_text("Sales Nguyễn")  # the rep who dragged it
    page.locator("#deal-stage-form select[name=stage]").select_option("negotiation")
    page.locator("#deal-stage-form button[type=submit]").click()
    expect(page).to_have_url(f"{server_url}/sales/opportunities/{deal.id}")
    expect(page.locator("#deal-stages li.current")).to_contain_text("Negotiation")
    page.screenshot(path=str(tmp_path / "deal.png"), full_page=True)
    db.expire_all()
    assert db.get(PipelineStage, db.get(Opportunity, deal.id).stage_id).key == "negotiation"
    assert page.problems == []
