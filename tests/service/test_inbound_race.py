"""A provider delivering the same message twice at once: the copy that loses the race answers 200, not 500."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from clm.service import conversations
from clm.service.models import Message


def test_the_copy_that_loses_the_race_for_an_external_id_answers_with_the_stored_message(
        client, db, shop, zalo, api_key_for, monkeypatch):
    customer = shop.customer("Nguyễn Văn An")
    db.commit()
    body = {"inbox_id": zalo.id, "customer_id": customer.id, "body": "Chào shop", "external_id": "zalo-race-1"}
    real = conversations.receive
    calls = []

    def racing(session, data, *args, **kwargs):
        calls.append(data.external_id)
        if len(calls) == 1:  # the other delivery commits between our check and our insert
            real(db, conversations.InboundIn(**body))
            db.commit()
            raise IntegrityError("INSERT INTO service_messages", {}, Exception("duplicate external_id"))
        return real(session, data, *args, **kwargs)

    monkeypatch.setattr(conversations, "receive", racing)
    r = client.post("/api/v1/service/messages", json=body, headers=api_key_for("service:write"))
    # (Here both "transactions" share the test's connection, so the winner's row is rolled back with the
    # loser's attempt and the retry stores it: what matters is a 2xx, the retry, and one row.)
    assert r.status_code in (200, 201) and len(calls) == 2
    assert db.scalar(sa.select(sa.func.count()).select_from(Message).where(
        Message.external_id == "zalo-race-1")) == 1
