"""Bulk actions on the lead list: the ticked leads' owner, status or priority change together, with the CSRF
token, and one refusal leaves every lead as it was (one transaction)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from clm.lib.errors import FieldError
from clm.outbox.models import OutboxEvent
from clm.sales.bulk import MAX_BULK, bulk_update
from clm.sales.errors import SalesConflict
from clm.sales.leads import LeadIn, LeadUpdate, capture_lead
from clm.sales.models import Lead
from clm.sales.opportunities import convert_lead
from tests.dashboard.conftest import token_of

_phones = iter(range(10_000, 99_999))


def leads(db, n: int) -> list[Lead]:
    out = [capture_lead(db, LeadIn(phone=f"09140{next(_phones)}", name=f"Khách {i}"), score=False,
                        first_contact_minutes=0).lead for i in range(n)]
    db.commit()
    return out


def state(db, rows: list[Lead]) -> list[tuple]:
    db.expire_all()
    return [(lead.status, lead.owner_id, lead.priority) for lead in (db.get(Lead, r.id) for r in rows)]


def test_bulk_assigning_gives_every_lead_the_owner(db, seller):
    rows = leads(db, 3)
    bulk_update(db, [r.id for r in rows], LeadUpdate(owner_id=seller.id))
    assert [s[1] for s in state(db, rows)] == [seller.id] * 3


def test_a_bulk_status_change_announces_each_leads_change_once(db):
    rows = leads(db, 2)
    bulk_update(db, [rows[0].id, rows[1].id, rows[0].id], LeadUpdate(status="contacted"))
    assert [s[0] for s in state(db, rows)] == ["contacted", "contacted"]
    events = db.scalar(sa.select(sa.func.count()).select_from(OutboxEvent).where(OutboxEvent.topic == "lead.status_changed"))
    assert events == 2


def test_one_refused_lead_leaves_every_lead_unchanged_and_names_it(db):
    rows = leads(db, 3)
    convert_lead(db, rows[1].id)
    db.commit()
    before = state(db, rows)
    with pytest.raises(SalesConflict) as refused:
        bulk_update(db, [r.id for r in rows], LeadUpdate(status="qualified"))
    db.rollback()
    assert rows[1].code in refused.value.message and refused.value.field == "status"
    assert state(db, rows) == before


@pytest.mark.parametrize("ids,changes,field", [
    ([], LeadUpdate(owner_id=None), "lead_ids"),
    (list(range(1, MAX_BULK + 2)), LeadUpdate(priority="high"), "lead_ids"),
    ([1], LeadUpdate(), "action"),
    ([1], LeadUpdate(campaign="x"), "action"),
])
def test_a_bulk_change_without_leads_or_without_a_change_is_refused(db, ids, changes, field):
    with pytest.raises(FieldError) as refused:
        bulk_update(db, ids, changes)
    assert refused.value.field == field


def test_unqualifying_in_bulk_needs_the_reason(db):
    rows = leads(db, 2)
    with pytest.raises(FieldError) as refused:
        bulk_update(db, [r.id for r in rows], LeadUpdate(status="unqualified"))
    assert refused.value.field == "unqualified_reason" and rows[0].code in refused.value.message


def test_the_lead_list_changes_the_ticked_leads_and_says_how_many(db, as_role, user_factory):
    rows = leads(db, 3)
    rep = user_factory("sales", email="bulk-rep@shop.vn")
    client = as_role("sales")
    page = client.get("/sales/leads").text
    assert f'name="lead_ids" value="{rows[0].id}" form="bulk"' in page and 'action="/sales/leads/bulk"' in page
    r = client.post("/sales/leads/bulk", data={"csrf_token": token_of(client), "action": "owner", "owner_id": str(rep.id),
                                               "lead_ids": [str(rows[0].id), str(rows[2].id)],
                                               "next": "/sales/leads?status=open"})
    assert r.status_code == 303 and r.headers["location"] == "/sales/leads?status=open&updated=2"
    assert [s[1] for s in state(db, rows)] == [rep.id, None, rep.id]
    assert "2 leads changed." in client.get(r.headers["location"]).text


def test_a_refused_bulk_change_is_shown_on_the_list_and_changes_nothing(db, as_role):
    rows = leads(db, 2)
    client = as_role("sales")
    before = state(db, rows)
    r = client.post("/sales/leads/bulk", data={"csrf_token": token_of(client), "action": "status", "status": "unqualified",
                                               "lead_ids": [str(r.id) for r in rows]})
    assert r.status_code == 422 and "Nothing was changed: unqualified_reason:" in r.text
    assert state(db, rows) == before
    r = client.post("/sales/leads/bulk", data={"csrf_token": token_of(client), "action": "priority", "priority": "huge",
                                               "lead_ids": [str(rows[0].id)]})
    assert r.status_code == 422 and "priority" in r.text
    r = client.post("/sales/leads/bulk", data={"csrf_token": token_of(client), "action": "owner",
                                               "lead_ids": ["1; drop table leads"], "next": "https://evil.example/"})
    assert r.status_code == 422 and "lead_ids: not a lead id" in r.text
    assert state(db, rows) == before


def test_a_bulk_change_without_the_csrf_token_is_refused(db, as_role):
    rows = leads(db, 1)
    r = as_role("sales").post("/sales/leads/bulk", data={"action": "priority", "priority": "urgent",
                                                         "lead_ids": [str(rows[0].id)]})
    assert r.status_code == 403
    assert state(db, rows)[0][2] == "low"


def test_the_bulk_change_returns_only_to_the_lead_list(db, as_role):
    rows = leads(db, 1)
    client = as_role("sales")
    r = client.post("/sales/leads/bulk", data={"csrf_token": token_of(client), "action": "priority", "priority": "high",
                                               "lead_ids": [str(rows[0].id)], "next": "//evil.example/sales/leads"})
    assert r.status_code == 303 and r.headers["location"] == "/sales/leads?updated=1"
