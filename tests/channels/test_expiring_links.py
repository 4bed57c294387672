"""The shared expiring links (member page /m/, survey page /s/): tokens made before the code was shared
are still made the same way and still open, a forged or expired one is refused, and a token for one page
does not open the other. No database: the tokens are pure functions of the secret and the payload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from pydantic import SecretStr

from clm.channels.expiring_links import BadLink, ExpiredLink
from clm.loyalty import links
from clm.service import satisfaction

SETTINGS = SimpleNamespace(secret_key=SecretStr("abc"), public_url="https://x.vn/")
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
# Made by clm/loyalty/links.py and clm/service/satisfaction.py before they shared clm.channels.expiring_links.
MEMBER_42 = "NDIKMTc3NTA5OTA0NQ.XYzqpubZN1h5J0eSVrvQVA"  # customer 42, NOW + 90 days
SURVEY_9 = "OQoxNzY3MzIzMDQ1.FHYXjgaYrqlIrnVEBh8guw"  # survey 9, until NOW


def test_tokens_and_keys_are_made_as_before():
    assert links.member_key(SETTINGS).hex() == "0f55f85cc5a15ff3a0f31c036b5d42a7bc0cda16a40130523328f37648000770"
    assert satisfaction.link_key(SETTINGS).hex() == (
        "abbb460019e64d767723a6a119c25f3dab0bfec9df005f5726596ec31b7e2e6d")
    assert links.member_token(links.member_key(SETTINGS), 42, NOW) == MEMBER_42
    assert links.member_url(SETTINGS, 7, NOW, 5) == "https://x.vn/m/NwoxNzY3NzU1MDQ1.mqFxYUWzwJ6CDFPKuRVLiw"
    assert satisfaction.survey_url(SETTINGS, 9, NOW) == f"https://x.vn/s/{SURVEY_9}"


def test_old_tokens_still_open_until_their_time():
    assert links.customer_of(links.member_key(SETTINGS), MEMBER_42, NOW + timedelta(days=89)) == 42
    assert satisfaction.survey_of_token(satisfaction.link_key(SETTINGS), SURVEY_9, NOW - timedelta(seconds=1)) == 9
    with pytest.raises(links.ExpiredLink):
        links.customer_of(links.member_key(SETTINGS), MEMBER_42, NOW + timedelta(days=90))
    with pytest.raises(satisfaction.ExpiredLink):
        satisfaction.survey_of_token(satisfaction.link_key(SETTINGS), SURVEY_9, NOW)
    assert links.ExpiredLink is satisfaction.ExpiredLink is ExpiredLink
    assert issubclass(ExpiredLink, BadLink)


def test_forged_and_crossed_tokens_are_refused():
    member_key, survey_key = links.member_key(SETTINGS), satisfaction.link_key(SETTINGS)
    other = links.member_token(member_key, 43, NOW).split(".")[0]
    with pytest.raises(BadLink, match="signature"):
        links.customer_of(member_key, f"{other}.{MEMBER_42.split('.')[1]}", NOW)
    with pytest.raises(BadLink, match="signature"):  # a survey link does not open a member page
        links.customer_of(member_key, SURVEY_9, NOW - timedelta(days=1))
    with pytest.raises(BadLink, match="signature"):  # nor the other way round, even under the same key
        satisfaction.survey_of_token(member_key, MEMBER_42, NOW)
    with pytest.raises(BadLink, match="signature"):
        satisfaction.survey_of_token(survey_key, MEMBER_42, NOW)
    with pytest.raises(BadLink, match="malformed"):
        links.customer_of(member_key, "no-dot-here", NOW)
