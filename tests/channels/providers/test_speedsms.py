"""SpeedSMS adapter against a local SpeedSMS that checks every request."""

from __future__ import annotations

import pytest

from clm.channels.adapters.base import PermanentError, TransientError
from clm.channels.adapters.speedsms import SpeedSmsAdapter

from .fakes import SpeedSmsFake


@pytest.fixture
def speedsms():
    with SpeedSmsFake("tok3n") as fake:
        yield fake


def adapter(fake: SpeedSmsFake, **overrides) -> SpeedSmsAdapter:
    values = {"token": "tok3n", "sender": "SHOPABC", "sms_type": 3, "url": fake.url + "/index.php",
              "timeout": 0.5}
    values.update(overrides)
    return SpeedSmsAdapter(**values)


def test_it_sends_with_basic_auth_and_the_documented_body(speedsms, outgoing):
    result = adapter(speedsms).send(outgoing(to="+84912345678", text="Don hang #12 da giao"))

    assert result.status == "sent" and result.provider_id == "1001"
    assert speedsms.violations == []
    request = speedsms.requests[0]
    assert request.headers["authorization"].startswith("Basic ")
    assert request.json == {"to": ["84912345678"], "content": "Don hang #12 da giao", "sms_type": 3,
                            "sender": "SHOPABC"}


def test_a_wrong_token_is_retried_with_a_hint(speedsms, outgoing):
    with pytest.raises(TransientError, match="CLM_SPEEDSMS_TOKEN"):
        adapter(speedsms, token="other").send(outgoing())


def test_the_rate_limit_is_transient_and_says_when_it_resets(outgoing):
    with SpeedSmsFake("tok3n", limit_per_minute=1) as fake:
        adapter(fake).send(outgoing())
        with pytest.raises(TransientError) as caught:
            adapter(fake).send(outgoing())
    assert caught.value.code == 429 and "42 s" in caught.value.reason


@pytest.mark.parametrize("code", ["101", "105", "113"])
def test_refusals_of_the_message_are_permanent(speedsms, outgoing, code):
    speedsms.code = code
    with pytest.raises(PermanentError) as caught:
        adapter(speedsms).send(outgoing())
    assert caught.value.code == code


@pytest.mark.parametrize("code", ["007", "300", "500"])
def test_account_problems_are_transient(speedsms, outgoing, code):
    speedsms.code = code
    with pytest.raises(TransientError):
        adapter(speedsms).send(outgoing())


def test_a_brandname_type_without_a_sender_is_a_configuration_error():
    with pytest.raises(ValueError, match="CLM_SPEEDSMS_SENDER"):
        SpeedSmsAdapter(token="t", sender="", sms_type=3)


def test_customer_care_from_a_random_number_needs_no_sender(speedsms, outgoing):
    adapter(speedsms, sms_type=2, sender="").send(outgoing())
    assert speedsms.violations == [] and speedsms.requests[0].json["sms_type"] == 2


def test_5xx_and_timeouts_are_transient(speedsms, outgoing):
    speedsms.fail_with = 503
    with pytest.raises(TransientError):
        adapter(speedsms).send(outgoing())
    speedsms.fail_with, speedsms.hang = None, True
    with pytest.raises(TransientError, match="did not answer"):
        adapter(speedsms, timeout=0.2).send(outgoing())


def test_a_landline_or_foreign_number_is_refused_before_sending(speedsms, outgoing):
    with pytest.raises(PermanentError):
        adapter(speedsms).send(outgoing(to="+442079460000"))
    assert speedsms.requests == []
