import itertools

import pytest

from clm.access.models import User
from clm.lib.clock import utcnow
from clm.service.agents import AgentIn, save_agent
from clm.service.conversations import InboxIn, save_inbox
from tests.customers.shop import T0, Shop

_seq = itertools.count(1)


@pytest.fixture
def shop(db) -> Shop:
    return Shop(db)


@pytest.fixture
def make_agent(db):
    """A staff user who is an agent: online with capacity 8 unless told otherwise."""

    def make(name: str = "Lan", *, availability: str = "online", capacity: int = 8, role: str = "agent") -> User:
        user = User(email=f"{name.lower()}{next(_seq)}@shop.vn", name=name, role=role, password_hash="x",
                    active=True, created_at=utcnow())
        db.add(user)
        db.flush()
        save_agent(db, user.id, AgentIn(availability=availability, capacity=capacity), now=T0)
        return user

    return make


@pytest.fixture
def zalo(db):
    return save_inbox(db, InboxIn(name="Zalo OA", channel="zalo", language="vi"))


__all__ = ["T0"]
