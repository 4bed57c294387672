"""Zalo ZNS adapter against a local ZNS that checks every request."""

from __future__ import annotations

import pytest

from clm.channels.adapters.base import PermanentError, TransientError
from clm.channels.adapters.zalo import ZaloZnsAdapter, tracking_id

from .fakes import ZaloFake

TEMPLATES = {"7895417a7d3f9461cd2e": {"customer", "amount", "order"}}


@pytest.fixture
def zalo():
    with ZaloFake("oa-token", TEMPLATES, zalo_phones={"84912345678"}) as fake:
        yield fake


def adapter(fake: ZaloFake, **overrides) -> ZaloZnsAdapter:
    values = {"access_token": "oa-token", "url": fake.url, "timeout": 0.5}
    values.update(overrides)
    return ZaloZnsAdapter(**values)


def zns(outgoing, **overrides):
    data = {"template_id": "7895417a7d3f9461cd2e",
            "template_data": {"customer": "Nguyễn Văn An", "amount": 150000, "order": "DH12"}}
    values = {"channel": "zalo", "to": "+84912345678", "text": "", "data": data, **overrides}
    return outgoing(**values)


def test_it_sends_a_template_message_in_the_documented_shape(zalo, outgoing):
    result = adapter(zalo).send(zns(outgoing, idempotency_key="msg-41"))

    assert result.status == "sent" and result.provider_id == "zmsg1"
    assert zalo.violations == []
    request = zalo.requests[0]
    assert request.headers["access_token"] == "oa-token" and "authorization" not in request.headers
    assert request.json == {"phone": "84912345678", "template_id": "7895417a7d3f9461cd2e",
                            "template_data": {"customer": "Nguyễn Văn An", "amount": "150000", "order": "DH12"},
                            "tracking_id": "msg-41"}


def test_a_phone_without_zalo_is_permanent(zalo, outgoing):
    with pytest.raises(PermanentError) as caught:
        adapter(zalo).send(zns(outgoing, to="0987654321"))
    assert caught.value.code == -118 and "no Zalo account" in caught.value.reason
    assert zalo.requests[0].json["phone"] == "84987654321"


def test_an_unknown_template_is_permanent(zalo, outgoing):
    message = outgoing(channel="zalo", data={"template_id": "nope", "template_data": {"a": "b"}})
    with pytest.raises(PermanentError) as caught:
        adapter(zalo).send(message)
    assert caught.value.code == -109


def test_a_message_without_a_template_id_is_refused_before_sending(zalo, outgoing):
    with pytest.raises(PermanentError, match="template_id"):
        adapter(zalo).send(outgoing(channel="zalo", data={}))
    assert zalo.requests == []


def test_an_expired_token_is_refreshed_once_and_the_message_sent(zalo, outgoing):
    refreshed = []

    def refresh(failed: str) -> str:
        refreshed.append(failed)
        return "oa-token"

    result = adapter(zalo, access_token="expired", refresh=refresh).send(zns(outgoing))

    assert result.provider_id and refreshed == ["expired"]
    assert [r.headers["access_token"] for r in zalo.requests] == ["expired", "oa-token"]


def test_an_expired_token_without_a_way_to_refresh_is_retried_later(zalo, outgoing):
    with pytest.raises(TransientError) as caught:
        adapter(zalo, access_token="expired").send(zns(outgoing))
    assert caught.value.code == -124 and "CLM_ZALO_ACCESS_TOKEN" in caught.value.reason


def test_being_out_of_quota_is_retried(zalo, outgoing):
    zalo.code, zalo.code_message = -144, "Out of quota"  # the number is unverified; the words are not
    with pytest.raises(TransientError, match="quota"):
        adapter(zalo).send(zns(outgoing))


def test_an_unknown_error_code_is_permanent_and_quoted(zalo, outgoing):
    zalo.code, zalo.code_message = -199, "Something new"
    with pytest.raises(PermanentError, match="Zalo -199: Something new"):
        adapter(zalo).send(zns(outgoing))


def test_tracking_ids_are_at_most_48_plain_characters():
    assert tracking_id("msg-41") == "msg-41"
    long = tracking_id("broadcast/12345/customer/987654321/template/welcome")
    assert len(long) == 48 and long.isalnum() and long == tracking_id("broadcast/12345/customer/987654321/template/welcome")


def test_5xx_garbage_and_timeouts_are_transient(zalo, outgoing):
    zalo.fail_with = 500
    with pytest.raises(TransientError):
        adapter(zalo).send(zns(outgoing))
    zalo.fail_with, zalo.garbage = None, True
    with pytest.raises(TransientError):
        adapter(zalo).send(zns(outgoing))
    zalo.garbage, zalo.hang = False, True
    with pytest.raises(TransientError, match="did not answer"):
        adapter(zalo, timeout=0.2).send(zns(outgoing))
