"""Reasons staff read in Vietnamese: every reason clm writes has a translation, provider words are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clm.channels import guardrails, sending
from clm.channels.adapters import esms, messenger, speedsms, zalo
from clm.channels.adapters.base import SendError
from clm.channels.adapters.email import _error as smtp_error
from clm.channels.adapters.registry import SETTING_HINTS
from clm.channels.reasons import in_language, vietnamese

CODE_TABLES = [*esms._ACCOUNT_CODES.values(), *esms._MESSAGE_CODES.values(), *speedsms._ACCOUNT_CODES.values(),
               *speedsms._MESSAGE_CODES.values(), *zalo._ACCOUNT_CODES.values(), *zalo._MESSAGE_CODES.values()]


def stored(error: SendError) -> str:
    """The reason as the outbox stores it (clm.channels.sending.record_outcome)."""
    return f"[{error.code}] {error.reason}" if error.code is not None else error.reason


def raised(call) -> SendError:
    with pytest.raises(SendError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize("english", CODE_TABLES)
def test_every_provider_code_clm_explains_has_a_vietnamese_text(english):
    assert vietnamese(english) not in (None, english)


@pytest.mark.parametrize("channel", ["email", "sms", "zalo", "messenger", "webhook"])
def test_the_missing_address_reason_of_every_channel_reads_in_vietnamese(channel):
    english = f"the customer has no {guardrails.NEEDS[channel]} for {channel}"
    assert vietnamese(english).startswith("khách hàng chưa có") or "thiếu URL webhook" in vietnamese(english)


def test_an_esms_account_error_is_translated_and_keeps_the_providers_own_words():
    error = raised(lambda: esms.read_answer({"CodeResult": "103", "ErrorMessage": "Balance not enough"}))
    text = in_language(stored(error), "vi")
    assert text == "[103] số dư eSMS không đủ: hãy nạp thêm tiền vào tài khoản (eSMS 103: Balance not enough)"


def test_a_retry_wraps_the_providers_reason_and_both_parts_are_translated():
    error = raised(lambda: zalo.read_answer({"error": -118, "message": "Zalo account not existed"}))
    reason = f"attempt 2 failed, retrying: {stored(error)}"
    assert in_language(reason, "vi") == ("lần thử 2 thất bại, sẽ thử lại: [-118] số điện thoại không có tài khoản Zalo "
                                         "(Zalo -118: Zalo account not existed)")


def test_a_closed_messenger_window_says_how_long_ago_in_vietnamese():
    now = datetime(2026, 3, 2, tzinfo=UTC)
    error = raised(lambda: messenger.delivery_mode(now - timedelta(days=3), now, tag=None))
    assert in_language(error.reason, "vi").startswith(
        "không gửi: khách hàng nhắn tin cho Trang lần cuối cách đây 3 ngày; ngoài khung 24 giờ Messenger cần")


def test_an_smtp_hard_bounce_keeps_the_servers_text():
    error = smtp_error(550, b"5.1.1 <x@example.vn>: mailbox does not exist", recipient=True)
    assert in_language(stored(error), "vi") == "[550] máy chủ thư trả lời 550: 5.1.1 <x@example.vn>: mailbox does not exist"


@pytest.mark.parametrize("channel", sorted(SETTING_HINTS))
def test_a_channel_without_a_provider_names_the_setting_in_vietnamese(channel):
    english = f"no {channel} provider is configured: {SETTING_HINTS[channel]}"
    assert vietnamese(english).startswith(f"chưa cấu hình nhà cung cấp cho kênh {channel}: đặt CLM_")


def test_an_interrupted_send_is_explained_in_vietnamese():
    english = sending.INTERRUPTED.format(provider="smtp")
    assert vietnamese(english).startswith("bị gián đoạn: worker dừng khi đang chuyển tin cho smtp")


def test_a_template_error_names_the_part_and_the_variable():
    english = "template welcome v2: vi.subject: 'order' is undefined"
    assert vietnamese(english) == "mẫu welcome phiên bản 2: vi.subject: biến 'order' chưa được định nghĩa"


def test_english_readers_see_the_reason_as_stored():
    english = "the eSMS balance is too low: top up the account"
    assert in_language(english, "en") == english


@given(st.text(st.characters(blacklist_characters=":()[]"), min_size=1, max_size=80))
def test_text_clm_did_not_write_is_shown_unchanged(words):
    text = f"zz-{words}"  # starts like no reason clm writes, and has none of the separators of composed ones
    assert in_language(text, "vi") == text


@pytest.mark.parametrize(("purpose", "words"), [("transactional", "giao dịch"), ("marketing", "tiếp thị")])
def test_a_refusal_names_the_purpose_in_vietnamese_words(purpose, words):
    english = guardrails._consent_reason("sms", purpose, False) if purpose == "transactional" else (
        f"the customer refused sms {purpose} messages")
    assert vietnamese(english) == f"khách hàng từ chối tin {words} qua sms"
    assert in_language(english, "en") == english


def test_every_fixed_reason_clm_writes_outside_the_adapters_reads_in_vietnamese():
    from clm.channels import broadcasts

    for english in ("demo: the carrier did not deliver", broadcasts.CANCELLED_REASON, "cancelled",
                    "the segment was deleted before the broadcast was sent", "read on zalo"):
        assert vietnamese(english) not in (None, english), english
