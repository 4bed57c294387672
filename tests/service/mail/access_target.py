"""The mail API's endpoints for tests/web/test_api_access.py: a quarantined mail to list and release."""

from __future__ import annotations

from clm.config import Settings
from clm.service.mail.inbound import accept
from tests.service.mail.conftest import sample

ENDPOINTS = [
    ("POST", "/api/v1/service/mail", "service:write"),
    ("GET", "/api/v1/service/mail/quarantine", "service:read"),
    ("POST", "/api/v1/service/mail/quarantine/{id}/release", "service:manage"),
]
BODIES: dict = {}  # the JSON body the access test sends is no mail: it is quarantined (202)


def mail_target(shop) -> dict:
    held = accept(shop.db, sample("x_autoreply_vacation.eml"), source="test",
                  settings=Settings(database_url="sqlite://", _env_file=None))
    shop.db.commit()
    return {"/quarantine/": held.quarantine_id}
