"""Messenger adapter: the 24-hour window decision and the Send API against a local Graph API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clm.channels.adapters.base import PermanentError, TransientError
from clm.channels.adapters.messenger import (
    ALLOWED_TAGS,
    HUMAN_AGENT_WINDOW,
    STANDARD_WINDOW,
    MessengerAdapter,
    Mode,
    delivery_mode,
    parse_time,
)

from .fakes import MessengerFake

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AUTOMATED_TAGS = sorted(ALLOWED_TAGS - {"HUMAN_AGENT"})
# Elapsed times clustered around the two boundaries (to the microsecond) plus anything up to 30 days.
near = st.integers(-5_000_000, 5_000_000).map(lambda us: timedelta(microseconds=us))
elapsed_times = st.one_of(
    near.map(lambda d: STANDARD_WINDOW + d),
    near.map(lambda d: HUMAN_AGENT_WINDOW + d),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
)
tags = st.one_of(st.none(), st.sampled_from(sorted(ALLOWED_TAGS)), st.sampled_from(["REMINDER", "promo", ""]))


def outcome(elapsed, tag, promotional=False):
    try:
        return delivery_mode(NOW - elapsed, NOW, tag, promotional)
    except PermanentError as exc:
        return exc


@given(elapsed_times, tags, st.booleans())
def test_inside_24_hours_it_always_replies_with_response(elapsed, tag, promotional):
    result = outcome(elapsed, tag, promotional)
    assert (result == Mode("RESPONSE")) == (elapsed < STANDARD_WINDOW)


@given(elapsed_times, st.sampled_from(AUTOMATED_TAGS))
def test_outside_24_hours_an_allowed_tag_goes_as_message_tag(elapsed, tag):
    result = outcome(elapsed, tag)
    if elapsed >= STANDARD_WINDOW:
        assert result == Mode("MESSAGE_TAG", tag)


@given(elapsed_times, tags)
def test_outside_24_hours_without_an_allowed_tag_nothing_is_sent_and_it_says_why(elapsed, tag):
    if elapsed < STANDARD_WINDOW or (tag or "").upper() in ALLOWED_TAGS:
        return
    result = outcome(elapsed, tag)
    assert isinstance(result, PermanentError)
    assert "24-hour window" in result.reason or "not a message tag" in result.reason


@given(elapsed_times)
def test_human_agent_covers_seven_days_and_no_more(elapsed):
    result = outcome(elapsed, "HUMAN_AGENT")
    if elapsed < STANDARD_WINDOW:
        assert result == Mode("RESPONSE")
    elif elapsed < HUMAN_AGENT_WINDOW:
        assert result == Mode("MESSAGE_TAG", "HUMAN_AGENT")
    else:
        assert isinstance(result, PermanentError) and "7 days" in result.reason


@given(elapsed_times, st.sampled_from(sorted(ALLOWED_TAGS)))
def test_marketing_never_goes_out_with_a_tag(elapsed, tag):
    result = outcome(elapsed, tag, promotional=True)
    assert result == Mode("RESPONSE") or (isinstance(result, PermanentError) and "marketing" in result.reason)


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
       st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)), tags, st.booleans())
def test_the_window_only_closes_as_time_passes(a, b, tag, promotional):
    earlier, later = sorted((a, b))
    if not isinstance(outcome(later, tag, promotional), PermanentError):
        assert not isinstance(outcome(earlier, tag, promotional), PermanentError)


def test_exactly_24_hours_is_outside_the_window():
    with pytest.raises(PermanentError):
        delivery_mode(NOW - STANDARD_WINDOW, NOW, None)
    assert delivery_mode(NOW - STANDARD_WINDOW + timedelta(microseconds=1), NOW) == Mode("RESPONSE")


def test_a_customer_who_never_wrote_can_only_get_an_automated_tag():
    assert delivery_mode(None, NOW, "POST_PURCHASE_UPDATE") == Mode("MESSAGE_TAG", "POST_PURCHASE_UPDATE")
    with pytest.raises(PermanentError, match="never written"):
        delivery_mode(None, NOW, None)
    with pytest.raises(PermanentError, match="7 days"):
        delivery_mode(None, NOW, "HUMAN_AGENT")


def test_legacy_tags_removed_in_2020_are_refused():
    with pytest.raises(PermanentError, match="not a message tag Meta allows"):
        delivery_mode(NOW - timedelta(days=2), NOW, "ISSUE_RESOLUTION")


def test_last_inbound_times_are_read_from_iso_strings():
    assert parse_time("2026-03-01T10:00:00Z") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse_time("2026-03-01T17:00:00+07:00") == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse_time(None) is None
    with pytest.raises(PermanentError, match="ISO 8601"):
        parse_time("yesterday")


# --- the Send API against a local Graph API -------------------------------------------------------

@pytest.fixture
def graph():
    with MessengerFake("page-token", {"psid-recent": 2, "psid-3d": 72, "psid-10d": 240}) as fake:
        yield fake


def adapter(fake, **overrides) -> MessengerAdapter:
    values = {"page_token": "page-token", "graph_url": fake.url + "/v25.0", "timeout": 0.5}
    values.update(overrides)
    return MessengerAdapter(**values)


def messenger(outgoing, psid, hours_ago=None, **data):
    last = None if hours_ago is None else (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()
    return outgoing(channel="messenger", to=psid, text="Đơn hàng của bạn đã được giao",
                    data={"last_inbound_at": last, **data})


def test_a_reply_inside_the_window_goes_as_response(graph, outgoing):
    result = adapter(graph).send(messenger(outgoing, "psid-recent", hours_ago=2))

    assert result.provider_id == "m_1" and result.detail["messaging_type"] == "RESPONSE"
    assert graph.violations == []
    request = graph.requests[0]
    assert request.path == "/v25.0/me/messages" and request.query["access_token"] == "page-token"
    assert request.json == {"recipient": {"id": "psid-recent"}, "messaging_type": "RESPONSE",
                            "message": {"text": "Đơn hàng của bạn đã được giao"}}


def test_an_update_after_the_window_goes_with_its_tag(graph, outgoing):
    adapter(graph).send(messenger(outgoing, "psid-3d", hours_ago=72, tag="POST_PURCHASE_UPDATE"))
    assert graph.violations == []
    assert graph.requests[0].json["messaging_type"] == "MESSAGE_TAG"
    assert graph.requests[0].json["tag"] == "POST_PURCHASE_UPDATE"


def test_nothing_is_sent_outside_the_window_without_a_tag(graph, outgoing):
    with pytest.raises(PermanentError, match="needs a message tag"):
        adapter(graph).send(messenger(outgoing, "psid-3d", hours_ago=72))
    assert graph.requests == []


def test_marketing_outside_the_window_is_not_sent_even_with_a_tag(graph, outgoing):
    with pytest.raises(PermanentError, match="marketing"):
        adapter(graph).send(messenger(outgoing, "psid-3d", hours_ago=72, tag="ACCOUNT_UPDATE", purpose="marketing"))
    assert graph.requests == []


def test_when_meta_knows_better_the_window_error_is_permanent(graph, outgoing):
    # clm thinks the customer wrote an hour ago; Meta's record says ten days.
    with pytest.raises(PermanentError) as caught:
        adapter(graph).send(messenger(outgoing, "psid-10d", hours_ago=1))
    assert caught.value.code == 10 and "outside the allowed window" in caught.value.reason


def test_a_bad_page_token_is_retried_with_a_hint(graph, outgoing):
    with pytest.raises(TransientError, match="CLM_MESSENGER_PAGE_TOKEN"):
        adapter(graph, page_token="old").send(messenger(outgoing, "psid-recent", hours_ago=1))


def test_an_unknown_psid_is_permanent(graph, outgoing):
    with pytest.raises(PermanentError) as caught:
        adapter(graph).send(messenger(outgoing, "psid-stranger", hours_ago=1))
    assert caught.value.code == 100


def test_text_over_2000_characters_is_refused_before_sending(graph, outgoing):
    message = outgoing(channel="messenger", to="psid-recent", text="a" * 2001,
                       data={"last_inbound_at": datetime.now(UTC).isoformat()})
    with pytest.raises(PermanentError, match="2000"):
        adapter(graph).send(message)
    assert graph.requests == []


def test_5xx_and_timeouts_are_transient(graph, outgoing):
    graph.fail_with = 500
    with pytest.raises(TransientError):
        adapter(graph).send(messenger(outgoing, "psid-recent", hours_ago=1))
    graph.fail_with, graph.hang = None, True
    with pytest.raises(TransientError, match="did not answer"):
        adapter(graph, timeout=0.2).send(messenger(outgoing, "psid-recent", hours_ago=1))


def test_the_page_token_never_reaches_the_logs(graph, outgoing, caplog):
    with caplog.at_level("INFO", logger="httpx"):
        adapter(graph).send(messenger(outgoing, "psid-recent", hours_ago=1))
    assert caplog.records and "page-token" not in caplog.text


@pytest.fixture
def strict_graph():
    """A Graph API whose app has "Require App Secret" on: every call needs appsecret_proof."""
    with MessengerFake("page-token", {"psid-recent": 2}, app_secret="app-s3cret") as fake:
        yield fake


def test_every_graph_call_carries_the_appsecret_proof_the_server_expects(strict_graph, outgoing):
    result = adapter(strict_graph, app_secret="app-s3cret").send(messenger(outgoing, "psid-recent", hours_ago=2))
    assert result.status == "sent" and strict_graph.violations == []
    [request] = strict_graph.requests
    assert request.query["appsecret_proof"] != "app-s3cret"  # a proof of the secret, never the secret


@pytest.mark.parametrize("secret,problem", [(None, "appsecret_proof missing"), ("wrong", "appsecret_proof wrong")])
def test_a_missing_or_wrong_app_secret_is_an_account_problem_retried_and_named(strict_graph, outgoing, secret,
                                                                               problem):
    with pytest.raises(TransientError) as caught:
        adapter(strict_graph, app_secret=secret).send(messenger(outgoing, "psid-recent", hours_ago=2))
    assert "CLM_MESSENGER_APP_SECRET" in caught.value.reason and strict_graph.violations == [problem]


def test_the_registry_gives_the_messenger_adapter_the_app_secret():
    from clm.channels.adapters.registry import build_adapters
    from clm.config import Settings

    settings = Settings(database_url="sqlite://", _env_file=None, messenger_page_token="page-token",
                        messenger_app_secret="app-s3cret")
    assert build_adapters(settings)["messenger"].app_secret == "app-s3cret"
