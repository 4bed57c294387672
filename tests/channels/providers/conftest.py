"""Builders shared by the provider adapter tests."""

from __future__ import annotations

import pytest

from clm.channels.adapters.base import Outgoing


@pytest.fixture
def outgoing():
    """An Outgoing with sensible defaults; keyword arguments override them."""

    def make(**overrides) -> Outgoing:
        values = {"message_id": 1, "idempotency_key": "msg-1", "channel": "sms", "to": "+84912345678",
                  "text": "Ma xac minh cua ban la 1234"}
        values.update(overrides)
        return Outgoing(**values)

    return make
