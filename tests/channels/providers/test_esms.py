"""eSMS adapter against a local eSMS that checks every request."""

from __future__ import annotations

import pytest

from clm.channels.adapters.base import PermanentError, TransientError
from clm.channels.adapters.esms import EsmsAdapter, read_answer, request_id

from .fakes import EsmsFake


@pytest.fixture
def esms():
    with EsmsFake("key", "secret", "Baotrixemay", template=r"Ma xac minh .*") as fake:
        yield fake


def adapter(fake: EsmsFake, **overrides) -> EsmsAdapter:
    values = {"api_key": "key", "secret_key": "secret", "brandname": "Baotrixemay", "url": fake.url,
              "timeout": 0.5}
    values.update(overrides)
    return EsmsAdapter(**values)


def test_it_sends_a_brandname_sms_in_the_documented_shape(esms, outgoing):
    result = adapter(esms, callback_url="https://shop.example/hooks/esms/t0k").send(
        outgoing(to="+84912345678", idempotency_key="msg-7"))

    assert result.status == "sent" and result.provider_id == "sms-1"
    assert esms.violations == []
    body = esms.requests[0].json
    assert body["Phone"] == "0912345678"
    assert body["SmsType"] == "2" and body["Brandname"] == "Baotrixemay"
    assert body["RequestId"] == "msg-7"
    assert body["CallbackUrl"] == "https://shop.example/hooks/esms/t0k"
    assert body["IsUnicode"] == "0" and body["Sandbox"] == "0"


def test_a_retry_with_the_same_request_id_counts_as_already_sent(esms, outgoing):
    first = adapter(esms).send(outgoing(idempotency_key="msg-9"))
    again = adapter(esms).send(outgoing(idempotency_key="msg-9"))

    assert first.status == "sent" and again.status == "sent"
    assert again.detail["duplicate"] is True
    assert len(esms.request_ids) == 1


def test_long_idempotency_keys_become_a_stable_request_id_of_at_most_50_characters():
    key = "broadcast:12345:customer:987654321:template:welcome-v3:variant-vi"
    assert len(request_id(key)) == 50 and request_id(key) == request_id(key)
    assert request_id("short") == "short"


def test_wrong_credentials_are_retried_with_a_hint(esms, outgoing):
    with pytest.raises(TransientError) as caught:
        adapter(esms, secret_key="wrong").send(outgoing())
    assert caught.value.code == "101" and "CLM_ESMS_SECRET_KEY" in caught.value.reason


def test_an_unregistered_brandname_is_reported(esms, outgoing):
    with pytest.raises(TransientError) as caught:
        adapter(esms, brandname="Other").send(outgoing())
    assert caught.value.code == "104"


def test_a_text_outside_the_registered_template_is_permanent(esms, outgoing):
    with pytest.raises(PermanentError) as caught:
        adapter(esms).send(outgoing(text="Khuyen mai 50%"))
    assert caught.value.code == "146" and "template" in caught.value.reason


@pytest.mark.parametrize("code", ["99", "108", "177"])
def test_refusals_about_the_recipient_are_permanent(esms, outgoing, code):
    esms.code = code
    with pytest.raises(PermanentError) as caught:
        adapter(esms).send(outgoing())
    assert caught.value.code == code


def test_a_balance_too_low_is_retried(esms, outgoing):
    esms.code = "103"
    with pytest.raises(TransientError, match="balance"):
        adapter(esms).send(outgoing())


def test_a_foreign_or_invalid_phone_is_refused_before_any_request(esms, outgoing):
    for phone in ("+14155550100", "not a phone", ""):
        with pytest.raises(PermanentError) as caught:
            adapter(esms).send(outgoing(to=phone))
        assert caught.value.code == "bad_phone"
    assert esms.requests == []


def test_an_old_11_digit_number_is_sent_in_its_new_form(esms, outgoing):
    adapter(esms).send(outgoing(to="01662345678"))
    assert esms.requests[0].json["Phone"] == "0362345678"


def test_a_5xx_is_transient(esms, outgoing):
    esms.fail_with = 502
    with pytest.raises(TransientError) as caught:
        adapter(esms).send(outgoing())
    assert caught.value.code == 502


def test_a_timeout_is_transient(esms, outgoing):
    esms.hang = True
    with pytest.raises(TransientError) as caught:
        adapter(esms, timeout=0.2).send(outgoing())
    assert caught.value.code == "timeout"


def test_a_refused_connection_is_transient(outgoing):
    dead = EsmsAdapter("key", "secret", "B", url="http://127.0.0.1:9", timeout=0.5)
    with pytest.raises(TransientError) as caught:
        dead.send(outgoing())
    assert caught.value.code == "connection"


def test_a_body_that_is_not_json_is_transient(esms, outgoing):
    esms.garbage = True
    with pytest.raises(TransientError):
        adapter(esms).send(outgoing())


def test_an_answer_without_code_result_is_a_rejected_request():
    with pytest.raises(PermanentError, match="Invalid request"):
        read_answer({"error": "Invalid request"})


def test_code_result_may_come_as_a_number():
    assert read_answer({"CodeResult": 100, "SMSID": "abc"}).provider_id == "abc"
