"""Zalo OA tokens: refreshed once on -124, the single-use refresh token rotated in a shared file."""

from __future__ import annotations

import json

import pytest

from clm.channels.adapters.base import TransientError
from clm.channels.adapters.registry import build_adapters
from clm.channels.adapters.zalo_tokens import ZaloTokens
from clm.config import Settings

from .fakes import ZaloFake, ZaloOAuthFake


@pytest.fixture
def oauth():
    with ZaloOAuthFake("app-1", "app-secret", "refresh-0") as fake:
        yield fake


def tokens(oauth, path, first="refresh-0") -> ZaloTokens:
    return ZaloTokens(path, "app-1", "app-secret", first, url=oauth.url, timeout=0.5)


def test_a_refresh_rotates_the_pair_and_keeps_it_in_the_file(oauth, tmp_path):
    path = tmp_path / "zalo.json"
    assert tokens(oauth, path).refresh("expired") == "access-1"
    stored = json.loads(path.read_text())
    assert (stored["access_token"], stored["refresh_token"]) == ("access-1", "refresh-1")
    assert oauth.violations == []
    # The next expiry spends the stored refresh token, never the first one again.
    assert tokens(oauth, path).refresh("access-1") == "access-2"


def test_a_second_process_uses_the_newer_token_instead_of_spending_the_refresh_token(oauth, tmp_path):
    path = tmp_path / "zalo.json"
    first, second = tokens(oauth, path), tokens(oauth, path)
    assert first.refresh("expired") == "access-1"
    assert second.refresh("expired") == "access-1"
    assert oauth.issued == 1


def test_a_refused_refresh_says_how_to_fix_it(oauth, tmp_path):
    with pytest.raises(TransientError, match="CLM_ZALO_REFRESH_TOKEN"):
        tokens(oauth, tmp_path / "zalo.json", first="used-up").refresh("expired")


def test_the_worker_adapter_refreshes_an_expired_token_and_sends(oauth, tmp_path, outgoing):
    path = tmp_path / "zalo.json"
    with ZaloFake("access-1", {"tpl": {"name"}}, {"84912345678"}) as zalo:
        settings = Settings(_env_file=None, zalo_access_token="expired", zalo_zns_url=zalo.url, zalo_app_id="app-1",
                            zalo_app_secret="app-secret", zalo_refresh_token="refresh-0", zalo_token_file=path,
                            zalo_oauth_url=oauth.url)
        adapter = build_adapters(settings)["zalo"]
        result = adapter.send(outgoing(channel="zalo", data={"template_id": "tpl", "template_data": {"name": "An"}}))
        restarted = build_adapters(settings)["zalo"]
    assert result.provider_id == "zmsg2"
    assert [r.headers["access_token"] for r in zalo.requests] == ["expired", "access-1"]
    assert restarted._token == "access-1"  # a restarted worker starts from the file, not the stale setting
