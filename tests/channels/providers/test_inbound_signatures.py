"""Webhook signatures: verified over the raw bytes, whatever the JSON looks like."""

from __future__ import annotations

import hashlib
import hmac
import json

from hypothesis import given
from hypothesis import strategies as st

from clm.channels.inbound.signatures import messenger_ok, token_ok, zalo_ok

texts = st.text(max_size=40)
payloads = st.dictionaries(st.sampled_from(["text", "mid", "x", "ý", "emoji"]), texts, max_size=4)


def meta_sign(raw: bytes, secret: str = "app-secret") -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def zalo_sign(raw: bytes, app_id: str, timestamp: str, key: str = "oa-secret") -> str:
    return "mac=" + hashlib.sha256(app_id.encode() + raw + timestamp.encode() + key.encode()).hexdigest()


@given(payloads, st.booleans(), st.sampled_from([None, 2]))
def test_messenger_verifies_any_serialisation_it_was_signed_over(payload, ascii_only, indent):
    # Meta escapes non-ASCII as \uXXXX; a re-serialisation would differ byte for byte.
    raw = json.dumps({"object": "page", "entry": [payload]}, ensure_ascii=ascii_only, indent=indent).encode()
    assert messenger_ok(raw, meta_sign(raw), "app-secret")


@given(payloads, st.binary(min_size=1, max_size=8))
def test_messenger_refuses_a_changed_body(payload, extra):
    raw = json.dumps(payload).encode()
    assert not messenger_ok(raw + extra, meta_sign(raw), "app-secret")


def test_messenger_refuses_other_secrets_missing_headers_and_the_old_sha1_header():
    raw = b'{"object":"page"}'
    assert not messenger_ok(raw, meta_sign(raw, "other"), "app-secret")
    assert not messenger_ok(raw, None, "app-secret")
    assert not messenger_ok(raw, "sha1=" + hmac.new(b"app-secret", raw, hashlib.sha1).hexdigest(), "app-secret")


@given(payloads, st.sampled_from([None, 1, 4]), st.booleans())
def test_zalo_verifies_the_exact_bytes_with_or_without_the_mac_prefix(payload, indent, prefix):
    body = {"event_name": "user_send_text", "app_id": "123", "timestamp": "1699003881354", "message": payload}
    raw = json.dumps(body, indent=indent, ensure_ascii=False).encode()
    mac = zalo_sign(raw, "123", "1699003881354")
    assert zalo_ok(raw, mac if prefix else mac[4:], "oa-secret")


def test_zalo_refuses_the_app_secret_a_changed_body_and_a_missing_header():
    raw = b'{"app_id":"123","timestamp":"1","message":{"text":"hi"}}'
    assert not zalo_ok(raw, zalo_sign(raw, "123", "1", key="app-secret"), "oa-secret")
    assert not zalo_ok(raw.replace(b"hi", b"ho"), zalo_sign(raw, "123", "1"), "oa-secret")
    assert not zalo_ok(raw, None, "oa-secret")
    assert not zalo_ok(b"not json", zalo_sign(b"not json", "", ""), "oa-secret")


def test_url_tokens_compare_whole():
    assert token_ok("abc", "abc")
    assert not token_ok("ab", "abc") and not token_ok("", "abc") and not token_ok(None, "abc")
