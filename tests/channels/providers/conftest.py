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


HOOKS = {"hooks_token": "hook-t0ken", "esms_mo_cpid": "CP123", "esms_mo_private_key": "17417a0d20114d36",
         "zalo_oa_secret_key": "oa-secret", "zalo_app_id": "2553928453557884079",
         "messenger_app_secret": "app-secret", "messenger_verify_token": "verify-me"}


@pytest.fixture
def settings():
    from clm.config import Settings

    return Settings(database_url="sqlite://", dashboard_warm_up=False, _env_file=None, **HOOKS)


@pytest.fixture
def sent(db):
    """A message already handed to a provider, for a (new or given) customer."""
    import itertools
    from datetime import timedelta

    from clm.channels.models import Message
    from clm.customers.models import Customer, Identity
    from clm.lib.clock import utcnow

    counter = itertools.count(1)

    def make(channel: str, provider_id: str | None, *, customer: Customer | None = None,
             identity: tuple[str, str] | None = None, status: str = "sent", minutes_ago: int = 10,
             key: str | None = None) -> Message:
        if customer is None:
            customer = Customer(full_name="Trần Thị Bình")
            db.add(customer)
            db.flush()
        if identity:
            db.add(Identity(customer_id=customer.id, kind=identity[0], value=identity[1]))
        n = next(counter)
        at = utcnow() - timedelta(minutes=minutes_ago)
        message = Message(customer_id=customer.id, channel=channel, purpose="transactional", template_key="t",
                          text="Đơn hàng đã giao", idempotency_key=key or f"key-{n}", status=status,
                          provider_id=provider_id, sent_at=at, created_at=at, updated_at=at)
        db.add(message)
        db.flush()
        return message

    return make
