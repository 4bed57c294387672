import itertools

import pytest

from clm.access.models import User
from clm.lib.clock import utcnow
from tests.customers.shop import T0, Shop

_seq = itertools.count(1)


@pytest.fixture
def shop(db) -> Shop:
    return Shop(db)


@pytest.fixture
def seller(db) -> User:
    """A sales rep (no password hashing: these tests never log in)."""
    user = User(email=f"sales{next(_seq)}@shop.vn", name="Lê Văn Bán", role="sales", password_hash="x",
                active=True, created_at=utcnow())
    db.add(user)
    db.flush()
    return user


__all__ = ["T0"]


# The dashboard's personas (a logged-in browser per role) for the sales pages' tests.
from tests.dashboard.conftest import as_role, browser, cheap_hashing, user_factory  # noqa: E402, F401
