"""`clm service chat-site` on a temporary SQLite file: a site is added with its origins and greeting, its
embed snippet printed; run again it changes the site (same key); a bad origin is refused by name."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from clm.cli import app
from clm.config import get_settings
from clm.db.engine import make_engine, make_session_factory
from clm.service.chat import list_sites


@pytest.fixture
def desk_url(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/chat.db"
    monkeypatch.setenv("CLM_DATABASE_URL", url)
    monkeypatch.setenv("CLM_PUBLIC_URL", "https://clm.shop.vn")
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_a_chat_site_is_added_printed_as_a_snippet_and_changed_in_place(desk_url):
    runner = CliRunner()
    r = runner.invoke(app, ["service", "chat-site", "Cửa hàng", "--origin", "https://shop.vn",
                            "--greeting", "Chào bạn!"])
    assert r.exit_code == 0, r.output
    key = re.search(r'data-key="([^"]+)"', r.output)[1]
    assert 'src="https://clm.shop.vn/static/chat-widget.js"' in r.output
    r = runner.invoke(app, ["service", "chat-site", "Cửa hàng", "--origin", "https://www.shop.vn"])
    assert r.exit_code == 0 and "changed" in r.output and key in r.output
    with make_session_factory(make_engine(desk_url))() as session:
        [site] = list_sites(session)
        assert (site.origins, site.greeting, site.public_key) == (["https://www.shop.vn"], {"vi": "Chào bạn!"}, key)
    r = runner.invoke(app, ["service", "chat-site", "Khác", "--origin", "shop.vn"])
    assert r.exit_code == 2 and "origins[0]" in r.output
    r = runner.invoke(app, ["service", "chat-site"])
    assert "Cửa hàng" in r.output and "https://www.shop.vn" in r.output
