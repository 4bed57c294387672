"""The mail API's endpoints for tests/web/test_api_access.py: a quarantined mail to list and release, a stored
mail's attachment to download."""

from __future__ import annotations

from clm.config import Settings
from clm.service.mail.inbound import accept
from clm.service.models import Message
from tests.service.mail.conftest import sample

ENDPOINTS = [
    ("POST", "/api/v1/service/mail", "service:write"),
    ("GET", "/api/v1/service/mail/quarantine", "service:read"),
    ("POST", "/api/v1/service/mail/quarantine/{id}/release", "service:manage"),
    ("GET", "/api/v1/service/attachments/{id}", "service:read"),
]
BODIES: dict = {}  # the JSON body the access test sends is no mail: it is quarantined (202)


def mail_target(shop) -> dict:
    settings = Settings(database_url="sqlite://", _env_file=None)
    held = accept(shop.db, sample("x_autoreply_vacation.eml"), source="test", settings=settings)
    stored = accept(shop.db, sample("gmail_utf8_attachment.eml"), source="test", settings=settings)
    shop.db.commit()
    [attachment] = shop.db.get(Message, stored.message_id).attachments
    return {"/quarantine/": held.quarantine_id, "/attachments/": attachment["id"]}
