"""The customer 360's sales card: the customer's leads and deals with stage, value, owner and links; a
customer without any shows none to people outside sales."""

from __future__ import annotations

from datetime import date

from clm.sales.leads import LeadIn, capture_lead
from clm.sales.opportunities import DealIn, convert_lead, move_stage
from clm.sales.profile import sales_of


def test_the_360_lists_the_customers_deal_and_lead_with_stage_value_owner_and_links(db, as_role, user_factory):
    client = as_role("sales")
    rep = user_factory("manager", email="owner-360@shop.vn")
    lead = capture_lead(db, LeadIn(phone="0915111222", name="Ngô Bảo Châu", source="zalo", campaign="tet-2026",
                                   owner_id=rep.id), score=False, first_contact_minutes=0).lead
    deal = convert_lead(db, lead.id, DealIn(title="Sofa góc", value=18_500_000, expected_close_date=date(2031, 5, 2)))
    move_stage(db, deal.id, "proposal")
    db.commit()
    html = client.get(f"/customers/{lead.customer_id}").text
    card = html.split('<section class="card" id="sales">')[1].split("</section>")[0]
    deal_row = card.split(f'data-deal="{deal.id}"')[1].split("</tr>")[0]
    assert f'href="/sales/opportunities/{deal.id}">{deal.code}</a>' in deal_row  # the deal's own page
    assert "Sofa góc" in deal_row and "₫18,500,000" in deal_row and "50%" in deal_row
    assert "Proposal sent" in deal_row and rep.name in deal_row  # the stage in the reader's language
    lead_row = card.split(f'data-lead="{lead.id}"')[1].split("</tr>")[0]
    assert f'href="/sales/leads/{lead.id}">{lead.code}</a>' in lead_row
    assert "Converted" in lead_row and "Zalo" in lead_row and "tet-2026" in lead_row and rep.name in lead_row


def test_people_outside_sales_see_the_deals_without_links_and_no_card_when_there_are_none(db, as_role, shop):
    client = as_role("marketer")
    lead = capture_lead(db, LeadIn(phone="0915111333", name="Lý Mai"), score=False, first_contact_minutes=0).lead
    db.commit()
    html = client.get(f"/customers/{lead.customer_id}").text
    assert lead.code in html and f'href="/sales/leads/{lead.id}"' not in html
    other = shop.customer("Không Mua", phone="0915111444")
    db.commit()
    assert 'id="sales"' not in client.get(f"/customers/{other.id}").text


def test_a_customers_sales_record_is_newest_first_and_only_theirs(db, seller):
    first = capture_lead(db, LeadIn(phone="0915111555"), score=False, first_contact_minutes=0).lead
    convert_lead(db, first.id, DealIn(value=1_000_000))
    again = capture_lead(db, LeadIn(phone="0915111555"), score=False, first_contact_minutes=0).lead
    capture_lead(db, LeadIn(phone="0915111666"), score=False, first_contact_minutes=0)
    record = sales_of(db, first.customer_id)
    assert [r["id"] for r in record["leads"]] == [again.id, first.id]
    assert [r["lead_id"] for r in record["opportunities"]] == [first.id]
