"""The web chat and the workspace in a real browser (Debian's chromium, Playwright, uvicorn; SQLite): two pages.

A visitor on the shop's own site (another origin, serving the embed snippet) writes in the widget; the agent's
open workspace shows the new ticket, then the agent's open ticket page shows the visitor's next message, both
without a reload (server-sent events); the agent's reply appears in the visitor's widget, live too. The app
runs on its own database file (not the test's rolled-back connection), as several server processes would:
each request and each stream poll has its own connection.
"""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from clm.access.users import create_user
from clm.db.engine import for_writing, make_session_factory
from clm.service import chat
from clm.service.agents import AgentIn, save_agent
from clm.service.models import Message, Ticket
from tests.conftest import fresh_engine, serve_in_thread
from tests.dashboard.conftest import PASSWORD
from tests.dashboard.test_browser import ARGS, CHROMIUM

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: apt-get install chromium")


@pytest.fixture
def shop_site():
    """The shop's own site: another origin (another port on this machine) serving the embed snippet."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    page = {"html": b""}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(page["html"])

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # "localhost" and "127.0.0.1" are different origins, both in the loopback address space (a real shop's
    # public site calling a public clm server is what this stands in for)
    yield f"http://localhost:{server.server_address[1]}", page
    server.shutdown()


@pytest.fixture
def world(tmp_path, settings, cheap_hashing, shop_site):  # noqa: F811
    from clm.web.app import create_app

    engine = fresh_engine("sqlite", tmp_path)
    factory = make_session_factory(engine)
    with factory() as session:
        for_writing(session)
        lan = create_user(session, email="lan@shop.vn", name="Trần Thị Lan", role="agent", password=PASSWORD)
        save_agent(session, lan.id, AgentIn(availability="online", capacity=5))
        site = chat.save_site(session, chat.SiteIn(name="Shop", origins=[shop_site[0]]))
        session.commit()
        key = site.public_key
    app = create_app(settings, factory)
    yield app, factory, key
    engine.dispose()


@pytest.fixture
def cheap_hashing(monkeypatch):
    from argon2 import PasswordHasher

    from clm.access import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))


@pytest.fixture
def server_url(world):
    yield from serve_in_thread(world[0])


@pytest.fixture
def pages(server_url, world, shop_site):
    from playwright.sync_api import sync_playwright

    key = world[2]
    snippet = (f'<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>Shop</title></head>'
               f'<body><h1>Cửa hàng</h1><script src="{server_url}/static/chat-widget.js" data-key="{key}" '
               f'data-lang="vi" async></script></body></html>')
    shop_site[1]["html"] = snippet.encode()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        agent = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 900}).new_page()
        visitor = browser.new_context(locale="vi-VN", viewport={"width": 420, "height": 800}).new_page()
        for page in (agent, visitor):
            page.set_default_timeout(30_000)  # the machine is shared
            page.problems = []
            page.on("console", lambda m, page=page: m.type == "error" and page.problems.append(m.text))
            page.on("pageerror", lambda e, page=page: page.problems.append(str(e)))
        yield agent, visitor
        browser.close()


def test_a_visitors_chat_reaches_the_agents_open_page_and_the_reply_reaches_the_widget_without_reloads(
        pages, server_url, world, shop_site, tmp_path):
    from playwright.sync_api import expect

    agent, visitor = pages
    _, factory, _ = world
    agent.goto(f"{server_url}/service/inbox?view=all")
    agent.get_by_label("Email").fill("lan@shop.vn")
    agent.get_by_label("Password").fill(PASSWORD)
    agent.get_by_role("button", name="Log in").click()
    expect(agent.locator("#no-tickets")).to_be_visible()
    agent.evaluate("window.notReloaded = true")

    visitor.goto(f"{shop_site[0]}/")
    visitor.locator("#clm-chat-open").click()
    visitor.locator("#clm-chat-input").fill("Shop ơi, áo sơ mi còn size M không ạ?")
    visitor.locator("#clm-chat-send").click()
    expect(visitor.locator(".clm-chat-visitor")).to_have_count(1)

    row = agent.locator("#ticket-list tbody tr")
    expect(row).to_have_count(1)  # the list refreshed by itself
    expect(row).to_contain_text("Shop ơi, áo sơ mi còn size M không ạ?")
    assert agent.evaluate("window.notReloaded") is True
    agent.locator("#ticket-list tbody tr a").first.click()
    expect(agent.locator("#thread")).to_contain_text("Shop ơi, áo sơ mi còn size M không ạ?")
    agent.evaluate("window.notReloaded = true")

    visitor.locator("#clm-chat-input").fill("<b>Em</b> mặc 60kg ạ")
    visitor.locator("#clm-chat-send").click()
    expect(agent.locator("#thread .msg-in")).to_have_count(2)  # arrived live on the open ticket
    expect(agent.locator("#thread .msg-in .msg-body").nth(1)).to_have_text("<b>Em</b> mặc 60kg ạ")
    assert agent.evaluate("window.notReloaded") is True

    agent.locator("#reply-body").fill("Dạ còn ạ, chị mặc size M vừa đẹp ạ")
    agent.locator("#send-reply").click()
    expect(agent.locator("#thread .msg-out")).to_have_count(1)
    expect(agent.locator("#reply-body")).to_have_value("")
    reply = visitor.locator(".clm-chat-agent")
    expect(reply).to_have_count(1)  # pushed to the widget by its stream
    expect(reply).to_contain_text("Dạ còn ạ, chị mặc size M vừa đẹp ạ")
    expect(reply).to_contain_text("Lan")
    assert visitor.locator("#clm-chat b").count() == 0  # the visitor's markup stayed text
    agent.screenshot(path=str(tmp_path / "agent.png"), full_page=True)
    visitor.screenshot(path=str(tmp_path / "visitor.png"))

    with factory() as session:
        ticket = session.scalar(sa.select(Ticket))
        bodies = [(m.direction, m.body) for m in session.scalars(sa.select(Message).order_by(Message.id))]
    assert ticket.channel == "chat" and ticket.status == "open"
    assert bodies == [("in", "Shop ơi, áo sơ mi còn size M không ạ?"), ("in", "<b>Em</b> mặc 60kg ạ"),
                      ("out", "Dạ còn ạ, chị mặc size M vừa đẹp ạ")]
    assert agent.problems == [] and visitor.problems == []
