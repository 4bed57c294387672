import pytest

from tests.lifecycle.life import Life


@pytest.fixture
def life(db) -> Life:
    return Life(db)
