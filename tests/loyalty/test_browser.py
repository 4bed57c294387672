"""Loyalty in a real browser (Debian's chromium, Playwright, uvicorn; SQLite only): a customer opens their member
page from the signed link on a phone-sized screen; a manager takes points off with a reason and the customer's
page shows the new balance; the reports draw their charts without a script error."""

from __future__ import annotations

import os

import pytest

from clm.lib.clock import utcnow
from clm.loyalty import ledger, links
from clm.loyalty.program import ProgramSettings, save_program
from clm.loyalty.rewards import RewardIn, save_reward
from clm.loyalty.tiers import DEFAULT_TIERS, TierIn, save_tiers
from tests.conftest import serve_in_thread
from tests.dashboard.conftest import cheap_hashing, user_factory  # noqa: F401 (fixtures)
from tests.dashboard.test_browser import ARGS, CHROMIUM
from tests.loyalty.conftest import make_customer

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: apt-get install chromium")


@pytest.fixture
def server_url(app, engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("the browser test runs once, on SQLite; the pages are tested on both backends")
    yield from serve_in_thread(app)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


def watched(page):
    page.problems = []
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    return page


def test_a_member_sees_their_points_on_a_phone_and_a_manager_adjusts_them(browser, server_url, app, db,
                                                                          user_factory, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    now = utcnow()
    program = save_program(db, ProgramSettings(referral_url="https://shop.example.vn/dang-ky?ref={code}"))
    save_tiers(db, [TierIn(**t) for t in DEFAULT_TIERS])
    save_reward(db, RewardIn(name="Phiếu giảm 50.000 ₫", kind="voucher", points=50, value=50_000))
    lan = make_customer(db, full_name="Trần Thị Lan")
    member = ledger.lock_member(db, lan.id, now)
    ledger.credit(db, member, program, key="browser:1", points=150, reason="Đơn SO-1", source="order",
                  source_id="1", at=now, now=now, qualifying=150)
    member.tier = "member"
    db.commit()
    user_factory("manager", email="minh@shop.vn")
    link = links.member_url(app.state.settings, lan.id, now)
    member_path = link[link.index("/m/"):]

    phone = watched(browser.new_context(locale="vi-VN", viewport={"width": 390, "height": 844},
                                        is_mobile=True).new_page())
    phone.goto(f"{server_url}{member_path}")
    expect(phone.locator("h1")).to_have_text("Xin chào Trần Thị Lan")
    expect(phone.locator("#available")).to_have_text("150")
    expect(phone.locator("#tier")).to_have_text("Thành viên")
    expect(phone.get_by_role("progressbar")).to_be_visible()
    expect(phone.locator("#next-tier")).to_contain_text("Bạc")
    expect(phone.locator("#rewards")).to_contain_text("Phiếu giảm 50.000 ₫")
    expect(phone.locator("#referral-link")).to_have_attribute("href", r"https://shop.example.vn/dang-ky?ref="
                                                              + phone.locator("#referral-code").inner_text())
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"
    phone.screenshot(path=str(tmp_path / "member-page.png"), full_page=True)

    desk = watched(browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000}).new_page())
    desk.goto(f"{server_url}/loyalty/members/{lan.id}")
    desk.get_by_label("Email").fill("minh@shop.vn")
    desk.get_by_label("Password").fill("correct horse battery")
    desk.get_by_role("button", name="Log in").click()
    expect(desk).to_have_url(f"{server_url}/loyalty/members/{lan.id}")
    desk.get_by_label("Points (negative to take)").fill("-50")
    desk.get_by_label("Reason").fill("Khách đổi quà tại quầy")
    desk.get_by_role("button", name="Apply").click()
    expect(desk.get_by_role("status")).to_have_text("The adjustment was applied.")
    expect(desk.locator("#available")).to_have_text("100")
    expect(desk.locator("#history")).to_contain_text("Khách đổi quà tại quầy")
    expect(desk.locator("#audit")).to_contain_text("minh@shop.vn")

    desk.goto(f"{server_url}/loyalty")
    expect(desk.locator("#outstanding")).to_have_text("100")
    desk.wait_for_function("() => window.Chart && Chart.getChart('chart-expiring') && Chart.getChart('chart-revenue')")

    phone.reload()
    expect(phone.locator("#available")).to_have_text("100")
    expect(phone.locator("#history")).to_contain_text("Khách đổi quà tại quầy")
    assert phone.problems == [] and desk.problems == []
