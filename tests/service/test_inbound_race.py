"""A provider delivering the same message twice at once: the copy that loses the race answers 200, not 500.

Accepting is one INSERT ... ON CONFLICT DO NOTHING on (source, external_id) (clm.service.inbound), so the
loser inserts nothing and answers with the stored row; threads racing on PostgreSQL are in
test_inbound_queue.py."""

from __future__ import annotations

import sqlalchemy as sa

from clm.service import inbound
from clm.service.models import Inbound, Message


def test_the_copy_that_loses_the_race_for_an_external_id_answers_with_the_stored_message(
        client, db, shop, zalo, api_key_for):
    customer = shop.customer("Nguyễn Văn An")
    db.commit()
    body = {"inbox_id": zalo.id, "customer_id": customer.id, "body": "Chào shop", "external_id": "zalo-race-1"}
    first = client.post("/api/v1/service/messages", json=body, headers=api_key_for("service:write"))
    second = client.post("/api/v1/service/messages", json=body, headers=api_key_for("service:write"))
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json()["id"] == first.json()["id"] and second.json()["state"] == "queued"
    inbound.process(db)
    db.commit()
    assert db.scalar(sa.select(sa.func.count()).select_from(Inbound)) == 1
    assert db.scalar(sa.select(sa.func.count()).select_from(Message).where(
        Message.external_id == "zalo-race-1")) == 1
