import pytest

from tests.customers.shop import Shop


@pytest.fixture
def shop(db) -> Shop:
    return Shop(db)
