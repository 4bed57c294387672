"""The web chat's sites in the dashboard (/service/chat-sites): list, add, change the origins and greetings,
switch off and on; managers and admins only, with CSRF, in both languages (SQLite and PostgreSQL)."""

from __future__ import annotations

import html
import re

import sqlalchemy as sa
from fastapi.testclient import TestClient

from clm.service import chat
from clm.service.models import ChatSite, Inbox
from tests.dashboard.conftest import as_role, browser, cheap_hashing, csrf_of, user_factory  # noqa: F401


def _post(client, path: str, **data):
    token = csrf_of(client.get("/service/chat-sites").text)
    return client.post(path, data={**data, "csrf_token": token})


def test_a_manager_adds_a_site_and_gets_its_snippet(db, as_role):  # noqa: F811
    manager = as_role("manager")
    page = manager.get("/service/chat-sites")
    assert page.status_code == 200 and "No chat sites yet" in page.text
    r = _post(manager, "/service/chat-sites/new", name="Website", origins="https://shop.vn/\nhttps://www.shop.vn",
              greeting_vi="Chào bạn!", greeting_en="Hello!", language="vi")
    assert r.status_code == 303
    site = db.scalar(sa.select(ChatSite))
    assert r.headers["location"] == f"/service/chat-sites/{site.id}"
    assert site.origins == ["https://shop.vn", "https://www.shop.vn"] and site.active
    assert site.greeting == {"vi": "Chào bạn!", "en": "Hello!"}
    inbox = db.get(Inbox, site.inbox_id)
    assert (inbox.channel, inbox.language) == ("chat", "vi")
    page = html.unescape(manager.get(r.headers["location"]).text)  # the snippet is text in a textarea
    assert f'data-key="{site.public_key}"' in page and "/static/chat-widget.js" in page
    listed = manager.get("/service/chat-sites").text
    assert f'id="site-{site.id}"' in listed and "https://shop.vn, https://www.shop.vn" in listed


def test_changing_the_origins_keeps_the_key_and_bad_input_is_named_and_saves_nothing(db, as_role):  # noqa: F811
    site = chat.save_site(db, chat.SiteIn(name="Website", origins=["https://shop.vn"]))
    chat.save_site(db, chat.SiteIn(name="Blog"))
    db.commit()
    key = site.public_key
    admin = as_role("admin")
    r = _post(admin, f"/service/chat-sites/{site.id}", name="Website", origins="https://shop.vn, https://m.shop.vn",
              greeting_vi="Xin chào")
    assert r.status_code == 303
    db.expire_all()
    site = db.get(ChatSite, site.id)
    assert (site.origins, site.public_key, site.greeting) == (["https://m.shop.vn", "https://shop.vn"], key,
                                                             {"vi": "Xin chào"})
    r = _post(admin, f"/service/chat-sites/{site.id}", name="Website", origins="https://shop.vn\nshop.vn/trang")
    assert r.status_code == 422
    assert "origins[1]" in r.text and "is not an origin" in r.text and "shop.vn/trang" in r.text
    r = _post(admin, f"/service/chat-sites/{site.id}", name="Blog", origins="")
    assert r.status_code == 422 and "name: a chat site named" in r.text
    r = _post(admin, "/service/chat-sites/new", name="", origins="")
    assert r.status_code == 422 and "name" in r.text
    db.expire_all()
    assert db.get(ChatSite, site.id).origins == ["https://m.shop.vn", "https://shop.vn"]
    assert db.scalar(sa.select(sa.func.count()).select_from(ChatSite)) == 2
    assert admin.get("/service/chat-sites/999999").status_code == 404
    assert admin.get(f"/service/chat-sites/{2**63}").status_code == 404


def test_a_switched_off_site_stops_the_widget_until_it_is_switched_on(db, app, as_role):  # noqa: F811
    site = chat.save_site(db, chat.SiteIn(name="Website"))
    db.commit()
    manager = as_role("manager")
    with TestClient(app) as widget:
        assert widget.get(f"/chat/{site.public_key}/config").status_code == 200
        r = _post(manager, f"/service/chat-sites/{site.id}/disable")
        assert r.status_code == 303
        assert widget.get(f"/chat/{site.public_key}/config").status_code == 404
        page = manager.get(f"/service/chat-sites/{site.id}").text
        assert "Switched off" in page and f'action="/service/chat-sites/{site.id}/enable"' in page
        # a change of the greeting leaves it off
        assert _post(manager, f"/service/chat-sites/{site.id}", name="Website", greeting_vi="Chào").status_code == 303
        assert widget.get(f"/chat/{site.public_key}/config").status_code == 404
        assert _post(manager, f"/service/chat-sites/{site.id}/enable").status_code == 303
        assert widget.get(f"/chat/{site.public_key}/config").status_code == 200


def test_agents_work_in_the_desk_but_cannot_manage_sites_and_forms_need_the_token(db, as_role):  # noqa: F811
    site = chat.save_site(db, chat.SiteIn(name="Website"))
    db.commit()
    agent = as_role("agent")
    assert "/service/chat-sites" not in agent.get("/service/inbox").text
    assert agent.get("/service/chat-sites").status_code == 403
    manager = as_role("manager")
    assert 'href="/service/chat-sites"' in manager.get("/service/inbox").text
    assert manager.post(f"/service/chat-sites/{site.id}/disable", data={}).status_code == 403
    db.expire_all()
    assert db.get(ChatSite, site.id).active


def test_the_page_speaks_vietnamese(db, browser, user_factory):  # noqa: F811
    from tests.dashboard.conftest import log_in

    chat.save_site(db, chat.SiteIn(name="Website", origins=["https://shop.vn"]))
    db.commit()
    user = user_factory("manager", email="quanly@shop.vn", locale="vi")
    client = browser()
    assert log_in(client, user.email).status_code == 303
    html = client.get("/service/chat-sites").text
    assert "Trang web có chat" in html and "Địa chỉ được phép" in html and "Đang bật" in html
    assert re.search(r"<title>[^<]*Trang web có chat", html)
