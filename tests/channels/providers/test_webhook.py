"""Outgoing webhooks against a local receiver that verifies the signature on its own."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clm.channels.adapters.base import PermanentError, TransientError
from clm.channels.adapters.webhook import WebhookAdapter, sign, verify

from .fakes import WebhookReceiver


@pytest.fixture
def receiver():
    with WebhookReceiver("whsec") as fake:
        yield fake


def hook(outgoing, url, **overrides):
    values = {"channel": "webhook", "to": url, "text": "", "idempotency_key": "msg-5",
              "data": {"body": {"event": "order.completed", "order": "DH12", "total": 150000}}}
    values.update(overrides)
    return outgoing(**values)


def test_it_posts_signed_json_with_timestamp_and_idempotency_key(receiver, outgoing):
    result = WebhookAdapter("whsec", timeout=0.5).send(hook(outgoing, receiver.url + "/in"))

    assert result.status == "delivered"
    assert receiver.violations == []
    assert receiver.seen == [{"event": "order.completed", "order": "DH12", "total": 150000}]
    headers = receiver.requests[0].headers
    assert headers["x-clm-idempotency-key"] == "msg-5"
    assert abs(int(headers["x-clm-timestamp"]) - time.time()) < 3600


def test_a_receiver_with_another_secret_refuses_it_and_that_is_permanent(receiver, outgoing):
    with pytest.raises(PermanentError) as caught:
        WebhookAdapter("not-the-secret", timeout=0.5).send(hook(outgoing, receiver.url))
    assert caught.value.code == 401 and receiver.violations == ["signature"]


@pytest.mark.parametrize("status", [400, 404, 410, 422])
def test_4xx_is_permanent(outgoing, status):
    with WebhookReceiver("whsec", status=status) as fake, pytest.raises(PermanentError):
        WebhookAdapter("whsec", timeout=0.5).send(hook(outgoing, fake.url))


@pytest.mark.parametrize("status", [408, 429])
def test_408_and_429_are_transient(outgoing, status):
    with WebhookReceiver("whsec", status=status) as fake, pytest.raises(TransientError):
        WebhookAdapter("whsec", timeout=0.5).send(hook(outgoing, fake.url))


def test_5xx_timeouts_and_refused_connections_are_transient(receiver, outgoing):
    receiver.fail_with = 503
    with pytest.raises(TransientError):
        WebhookAdapter("whsec", timeout=0.5).send(hook(outgoing, receiver.url))
    receiver.fail_with, receiver.hang = None, True
    with pytest.raises(TransientError, match="did not answer"):
        WebhookAdapter("whsec", timeout=0.2).send(hook(outgoing, receiver.url))
    with pytest.raises(TransientError):
        WebhookAdapter("whsec", timeout=0.5).send(hook(outgoing, "http://127.0.0.1:9/"))


def test_a_redirect_is_not_followed(outgoing):
    with WebhookReceiver("whsec", status=301) as fake, pytest.raises(PermanentError, match="redirects"):
        WebhookAdapter("whsec", timeout=0.5).send(hook(outgoing, fake.url))


def test_a_url_that_is_not_http_is_refused(outgoing):
    with pytest.raises(PermanentError):
        WebhookAdapter("whsec").send(hook(outgoing, "file:///etc/passwd"))


def test_without_a_body_the_message_itself_is_posted(receiver, outgoing):
    WebhookAdapter("whsec", timeout=0.5).send(hook(outgoing, receiver.url, text="hi", data={"x": 1}))
    assert receiver.seen[0]["text"] == "hi" and receiver.seen[0]["data"] == {"x": 1}
    assert receiver.seen[0]["id"] == "msg-5"


@given(st.binary(max_size=200), st.integers(0, 2**33), st.binary(min_size=1, max_size=200))
def test_verify_accepts_exactly_the_signed_body(body, timestamp, other):
    signature = sign("s", timestamp, body)
    assert verify("s", str(timestamp), body, signature, now=timestamp)
    assert verify("s", str(timestamp), body + other, signature, now=timestamp) is False
    assert verify("t", str(timestamp), body, signature, now=timestamp) is False


def test_verify_refuses_old_timestamps():
    signature = sign("s", 1000, b"{}")
    assert verify("s", "1000", b"{}", signature, now=1000 + 300)
    assert not verify("s", "1000", b"{}", signature, now=1000 + 301)
