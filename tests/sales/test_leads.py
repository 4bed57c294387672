"""Leads: captured onto the customer profile, one open lead per person, codes, campaign, status flow."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from clm.customers.models import Customer, Identity
from clm.lib.errors import FieldError
from clm.outbox.models import OutboxEvent
from clm.sales.errors import SalesConflict
from clm.sales.leads import LeadIn, LeadUpdate, capture_lead, list_leads, update_lead
from clm.sales.models import Lead
from clm.tracking.models import Event
from tests.customers.shop import T0


def test_a_lead_for_a_known_phone_joins_the_existing_customer(db, shop):
    known = shop.customer("Nguyễn Thị Hoa", phone="0912 345 678")
    captured = capture_lead(db, LeadIn(name="Hoa Nguyễn", phone="+84912345678", email="hoa@example.vn",
                                       source="web_form"), now=T0 + timedelta(days=1))
    assert captured.created
    assert captured.lead.customer_id == known.id
    assert db.scalar(sa.select(sa.func.count()).select_from(Customer)) == 1
    assert db.scalar(sa.select(Identity.customer_id).where(Identity.kind == "email",
                                                           Identity.value == "hoa@example.vn")) == known.id


def test_a_lead_from_a_new_person_creates_a_customer_with_the_form_in_its_history(db):
    lead = capture_lead(db, LeadIn(name="Trần Văn Nam", phone="0987654321", source="web_form",
                                   message="Cần báo giá 20 bộ")).lead
    customer = db.get(Customer, lead.customer_id)
    assert customer.full_name == "Trần Văn Nam" and customer.phone == "+84987654321"
    names = db.scalars(sa.select(Event.name).where(Event.customer_id == customer.id, Event.type == "track")).all()
    assert names == ["Lead Form Submitted"]
    assert lead.code.startswith("LD-") and lead.status == "new" and lead.message == "Cần báo giá 20 bộ"
    topics = db.scalars(sa.select(OutboxEvent.topic).where(OutboxEvent.customer_id == customer.id)).all()
    assert "lead.created" in topics


def test_lead_codes_are_readable_unique_and_increasing(db):
    codes = [capture_lead(db, LeadIn(phone=f"09123450{i:02d}")).lead.code for i in range(3)]
    numbers = [int(c.removeprefix("LD-")) for c in codes]
    assert all(len(c) == 9 for c in codes)
    assert numbers == sorted(numbers) and len(set(numbers)) == 3 and numbers[1] == numbers[0] + 1


def test_a_second_submission_while_a_lead_is_open_returns_that_lead(db):
    first = capture_lead(db, LeadIn(phone="0912000111", source="web_form")).lead
    again = capture_lead(db, LeadIn(phone="0912000111", email="x@example.vn", source="zalo"))
    assert not again.created and again.lead.id == first.id
    assert db.scalar(sa.select(sa.func.count()).select_from(Lead)) == 1
    assert again.lead.details["submissions"] == 2


def test_the_same_external_id_twice_creates_nothing_twice(db):
    data = LeadIn(phone="0912000222", source="facebook_lead_ads", external_id="leadgen-1")
    first = capture_lead(db, data)
    second = capture_lead(db, data)
    assert first.created and not second.created and second.lead.id == first.lead.id
    events = db.scalar(sa.select(sa.func.count()).select_from(Event).where(
        Event.customer_id == first.lead.customer_id, Event.type == "track"))
    assert events == 1


@pytest.mark.parametrize("fields,field", [
    ({"phone": "12"}, "phone"),
    ({"email": "not-an-email"}, "email"),
    ({"name": "Only a name"}, "phone"),
])
def test_bad_contact_details_are_refused_naming_the_field_and_nothing_is_written(db, fields, field):
    with pytest.raises(FieldError) as exc:
        capture_lead(db, LeadIn(**fields))
    assert exc.value.field == field
    assert db.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0


def test_an_unknown_owner_is_refused(db):
    with pytest.raises(FieldError) as exc:
        capture_lead(db, LeadIn(phone="0912000333", owner_id=999_999))
    assert exc.value.field == "owner_id"


def test_the_campaign_comes_from_the_visitors_tracked_utm_context(db, shop):
    visitor = "anon-42"
    shop._ingest([{"type": "page", "anonymousId": visitor, "name": "Khuyến mãi",
                   "context": {"campaign": {"name": "tet-2025", "source": "facebook", "medium": "cpc"}}}], T0)
    lead = capture_lead(db, LeadIn(phone="0912000444", anonymous_id=visitor, source="web_form"),
                        now=T0 + timedelta(hours=1)).lead
    visitor_customer = db.scalar(sa.select(Identity.customer_id).where(Identity.value == visitor))
    assert lead.customer_id == visitor_customer  # the visits before the form are the lead's history
    assert lead.campaign == "tet-2025" and lead.utm == {"campaign": "tet-2025", "source": "facebook", "medium": "cpc"}


def test_a_campaign_given_with_the_lead_wins_over_the_tracked_one(db):
    lead = capture_lead(db, LeadIn(phone="0912000555", utm={"campaign": "zalo-oa", "source": "zalo"})).lead
    assert lead.campaign == "zalo-oa"


def test_the_status_flow_records_first_contact_and_asks_why_a_lead_is_unqualified(db):
    lead = capture_lead(db, LeadIn(phone="0912000666")).lead
    update_lead(db, lead.id, LeadUpdate(status="contacted"), now=T0)
    assert lead.status == "contacted" and lead.contacted_at == T0
    with pytest.raises(FieldError) as exc:
        update_lead(db, lead.id, LeadUpdate(status="unqualified"))
    assert exc.value.field == "unqualified_reason"
    update_lead(db, lead.id, LeadUpdate(status="unqualified", unqualified_reason="Không có nhu cầu"))
    assert lead.status == "unqualified" and lead.unqualified_reason == "Không có nhu cầu"
    with pytest.raises(SalesConflict) as conflict:
        update_lead(db, lead.id, LeadUpdate(status="converted"))
    assert conflict.value.code == "convert_instead"


def test_a_classification_set_by_hand_stays_until_handed_back_to_the_score(db):
    lead = capture_lead(db, LeadIn(phone="0912000777")).lead
    automatic = lead.classification
    update_lead(db, lead.id, LeadUpdate(classification="target"))
    assert lead.classification == "target" and lead.classification_manual
    update_lead(db, lead.id, LeadUpdate(classification=None))
    assert lead.classification == automatic and not lead.classification_manual


def test_leads_list_by_score_pages_through_every_lead_once(db):
    for i in range(5):
        capture_lead(db, LeadIn(phone=f"09120010{i:02d}", email=f"l{i}@example.vn" if i % 2 else None))
    seen, after = [], None
    while True:
        page, after = list_leads(db, order="score", limit=2, after=after)
        seen += page
        if after is None:
            break
    assert len({lead.id for lead in seen}) == 5
    scores = [lead.score for lead in seen]
    assert scores == sorted(scores, reverse=True)
