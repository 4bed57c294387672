import pytest

from tests.customers.shop import Shop
from tests.dashboard.conftest import as_role, browser, cheap_hashing, user_factory  # noqa: F401  (personas)


@pytest.fixture
def shop(db) -> Shop:
    return Shop(db)
