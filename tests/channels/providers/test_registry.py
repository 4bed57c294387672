"""Which provider adapters the worker gets from settings."""

from __future__ import annotations

import pytest

from clm.channels.adapters.registry import build_adapters
from clm.config import Settings


def adapters(**values):
    return build_adapters(Settings(_env_file=None, **values))


def test_no_provider_settings_means_no_provider_adapters():
    assert set(adapters()) <= {"email"}


def test_each_provider_is_on_once_its_credentials_are_set():
    built = adapters(esms_api_key="k", esms_secret_key="s", esms_brandname="Shop", zalo_access_token="z",
                     messenger_page_token="p", webhook_signing_secret="w", provider_timeout_seconds=3)
    assert {name: a.provider for name, a in built.items() if name != "email"} == {
        "sms": "esms", "zalo": "zalo", "messenger": "messenger", "webhook": "webhook"}
    assert built["sms"].timeout == 3


def test_speedsms_sends_sms_when_chosen_or_alone():
    assert adapters(speedsms_token="t", speedsms_sender="SHOP")["sms"].provider == "speedsms"
    both = {"esms_api_key": "k", "esms_secret_key": "s", "esms_brandname": "Shop", "speedsms_token": "t",
            "speedsms_sender": "SHOP"}
    assert adapters(**both)["sms"].provider == "esms"
    assert adapters(**both, sms_provider="speedsms")["sms"].provider == "speedsms"


def test_esms_without_its_brandname_is_off():
    assert "sms" not in adapters(esms_api_key="k", esms_secret_key="s")


def test_an_unknown_sms_provider_is_a_clear_error():
    with pytest.raises(ValueError, match="CLM_SMS_PROVIDER"):
        adapters(sms_provider="twilio")


def test_esms_reports_come_back_to_the_public_url_with_the_hooks_token():
    esms = {"esms_api_key": "k", "esms_secret_key": "s", "esms_brandname": "Shop"}
    derived = adapters(**esms, hooks_token="t0k", public_url="https://shop.example.vn/")["sms"]
    explicit = adapters(**esms, hooks_token="t0k", esms_callback_url="https://other.example/cb")["sms"]
    assert derived.callback_url == "https://shop.example.vn/hooks/esms/t0k"
    assert explicit.callback_url == "https://other.example/cb"
    assert adapters(**esms)["sms"].callback_url is None
