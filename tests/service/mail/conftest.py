from pathlib import Path

import pytest

from clm.config import Settings
from clm.service.conversations import InboxIn, save_inbox
from tests.service.conftest import T0, make_agent, shop  # noqa: F401  (fixtures of the service tests)

SAMPLES = Path(__file__).parent / "samples"
SHOP_ADDRESS = "hotro@shop.example.vn"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@pytest.fixture
def mail_settings() -> Settings:
    return Settings(database_url="sqlite://", dashboard_warm_up=False, email_from=f"CSKH Shop <{SHOP_ADDRESS}>",
                    secret_key="test-secret-for-mail", mail_max_attachment_bytes=100_000, _env_file=None)


@pytest.fixture
def mailbox(db):
    return save_inbox(db, InboxIn(name="Hỗ trợ", channel="email", address=SHOP_ADDRESS, language="vi"))


__all__ = ["T0", "sample"]
