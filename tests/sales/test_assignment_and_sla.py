"""Assignment rules (in turn, by province, source or product line, least load; each records why), the
first-contact SLA on the jobs queue, and the staff notifications they and task reminders make."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from clm.access.models import User
from clm.jobs.models import Job
from clm.jobs.runner import Registry, run_due
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError
from clm.outbox.models import OutboxEvent
from clm.sales import jobs as sales_jobs
from clm.sales.activities import ActivityIn, log_activity
from clm.sales.assignment import RuleIn, save_rule
from clm.sales.leads import LeadIn, capture_lead
from clm.sales.models import Lead, StaffNotification
from clm.sales.notifications import mark_read, unread
from clm.sales.tasks import TaskIn, create_task

_n = iter(range(10_000))


def staff(db, role: str = "sales", active: bool = True) -> User:
    user = User(email=f"staff{next(_n)}@shop.vn", name=f"Nhân viên {role}", role=role, password_hash="x",
                active=active, created_at=utcnow())
    db.add(user)
    db.flush()
    return user


def lead_of(db, phone: str, minutes: int = 0, **fields) -> Lead:
    return capture_lead(db, LeadIn(phone=phone, **fields), first_contact_minutes=minutes, score=False).lead


def run_jobs(session_factory, settings, now: datetime) -> int:
    registry = Registry()
    sales_jobs.register(registry, settings)
    return run_due(session_factory, registry, "test-worker", now=now)


def test_new_leads_go_to_the_rules_people_in_turn_and_each_assignment_says_why(db):
    an, binh, chi = staff(db), staff(db), staff(db)
    save_rule(db, RuleIn(name="Cả đội", user_ids=[an.id, binh.id, chi.id]))
    owners = [lead_of(db, f"090100000{i}").owner_id for i in range(5)]
    assert owners == [an.id, binh.id, chi.id, an.id, binh.id]
    lead = db.scalar(sa.select(Lead).order_by(Lead.id.desc()).limit(1))
    assert lead.assignment["rule"] == "Cả đội" and lead.assignment["method"] == "round_robin"
    assert "in turn, person 2 of 3" in lead.assignment["en"] and "lần lượt" in lead.assignment["vi"]


def test_the_first_matching_rule_wins_by_province_ignoring_diacritics_then_by_source(db):
    hanoi, zalo, rest = staff(db), staff(db), staff(db)
    save_rule(db, RuleIn(name="Hà Nội", provinces=["Hà Nội"], user_ids=[hanoi.id], position=1))
    save_rule(db, RuleIn(name="Zalo", sources=["zalo"], user_ids=[zalo.id], position=2))
    save_rule(db, RuleIn(name="Còn lại", user_ids=[rest.id], position=3))
    assert lead_of(db, "0902000001", city="ha noi", source="zalo").owner_id == hanoi.id
    assert lead_of(db, "0902000002", city="Đà Nẵng", source="zalo").owner_id == zalo.id
    assert lead_of(db, "0902000003", city="Huế").owner_id == rest.id
    assert "province ha noi" in db.scalar(sa.select(Lead.assignment).where(Lead.owner_id == hanoi.id))["en"]


def test_a_product_line_rule_reads_the_leads_details_and_a_given_owner_is_kept(db):
    sofa, other, chosen = staff(db), staff(db), staff(db)
    save_rule(db, RuleIn(name="Sofa", product_lines=["Sofa"], user_ids=[sofa.id]))
    assert lead_of(db, "0903000001", details={"product_line": "sofa"}).owner_id == sofa.id
    assert lead_of(db, "0903000002", details={"product_line": "bàn"}).owner_id is None
    given_lead = lead_of(db, "0903000003", owner_id=chosen.id, details={"product_line": "sofa"})
    assert given_lead.owner_id == chosen.id and given_lead.assignment["method"] == "given"
    assert other.id not in {lead.owner_id for lead in db.scalars(sa.select(Lead))}


def test_least_load_gives_the_lead_to_whoever_has_fewest_open_leads_and_skips_deactivated_people(db):
    busy, free, gone = staff(db), staff(db), staff(db, active=False)
    for i in range(2):
        lead_of(db, f"090400000{i}", owner_id=busy.id)
    save_rule(db, RuleIn(name="Ít việc nhất", method="least_load", user_ids=[gone.id, busy.id, free.id]))
    owners = [lead_of(db, f"090410000{i}").owner_id for i in range(3)]
    assert owners == [free.id, free.id, busy.id]  # 2-0, 2-1, then 2-2: the first listed of the tied
    assert "fewest open leads" in db.scalar(sa.select(Lead).order_by(Lead.id.desc()).limit(1)).assignment["en"]


def test_a_rule_naming_an_unknown_user_is_refused(db):
    with pytest.raises(FieldError) as err:
        save_rule(db, RuleIn(name="Sai", user_ids=[987654]))
    assert err.value.field == "user_ids"


@hsettings(max_examples=15, deadline=None)
@given(people=st.integers(1, 4), leads=st.integers(0, 12))
def test_round_robin_shares_leads_evenly_whatever_the_numbers(people, leads):
    """Property: with n people and k leads, everyone gets k // n or k // n + 1."""
    from clm.sales.assignment import assign
    from clm.sales.models import AssignmentRule

    class FakeSession:  # the rule's turn counter is all round robin reads; no database needed
        def __init__(self, rule):
            self.rule = rule

        def scalars(self, query):
            return list(range(1, people + 1))

        def get(self, model, key, with_for_update=False):
            return self.rule

        def flush(self):
            pass

    rule = AssignmentRule(id=1, name="r", method="round_robin", sources=[], provinces=[], product_lines=[],
                          user_ids=list(range(1, people + 1)), next_index=0, active=True, position=0)
    session = FakeSession(rule)
    counts = dict.fromkeys(range(1, people + 1), 0)
    import clm.sales.assignment as module

    original = module.list_rules
    module.list_rules = lambda s: [rule]
    try:
        for _ in range(leads):
            lead = Lead(source="manual", details={}, owner_id=None)
            counts[assign(session, lead, city=None)["user_id"]] += 1
    finally:
        module.list_rules = original
    assert set(counts.values()) <= {leads // people, leads // people + 1}
    assert sum(counts.values()) == leads


def test_a_lead_not_called_within_the_sla_is_recorded_and_its_owner_and_managers_are_notified_once(
        db, session_factory, settings):
    owner, manager = staff(db), staff(db, role="manager")
    lead = lead_of(db, "0905000001", minutes=15, owner_id=owner.id)
    db.commit()
    due = lead.first_contact_due_at
    assert due == lead.created_at + timedelta(minutes=15)
    assert run_jobs(session_factory, settings, due - timedelta(minutes=1)) == 0
    assert run_jobs(session_factory, settings, due + timedelta(seconds=1)) == 1
    db.expire_all()
    assert db.get(Lead, lead.id).first_contact_breached_at == due
    [event] = db.scalars(sa.select(OutboxEvent).where(OutboxEvent.topic == "lead.first_contact_breached")).all()
    assert event.payload["code"] == lead.code and event.payload["minutes"] == 15
    texts = {n.user_id: n.text["en"] for n in db.scalars(sa.select(StaffNotification))}
    assert texts == {owner.id: f"Lead {lead.code} was not contacted within 15 minutes",
                     manager.id: f"Lead {lead.code} was not contacted within 15 minutes"}
    from clm.sales.sla import check_first_contact

    assert check_first_contact(db, lead.id) is False  # again: nothing more
    assert db.scalar(sa.select(sa.func.count()).select_from(StaffNotification)) == 2


def test_a_lead_called_in_time_is_not_breached(db, session_factory, settings):
    lead = lead_of(db, "0905000002", minutes=15)
    log_activity(db, ActivityIn(kind="call", subject="Gọi lần đầu", lead_id=lead.id),
                 now=lead.created_at + timedelta(minutes=5))
    db.commit()
    assert run_jobs(session_factory, settings, lead.first_contact_due_at + timedelta(minutes=1)) == 1
    db.expire_all()
    assert db.get(Lead, lead.id).first_contact_breached_at is None
    assert db.scalar(sa.select(sa.func.count()).select_from(StaffNotification)) == 0


def test_an_imported_old_lead_starts_no_clock_and_zero_minutes_turns_the_sla_off(db):
    old = capture_lead(db, LeadIn(phone="0905000003", occurred_at=utcnow() - timedelta(days=30)),
                       first_contact_minutes=15, score=False).lead
    off = lead_of(db, "0905000004", minutes=0)
    assert old.first_contact_due_at is None and off.first_contact_due_at is None
    assert db.scalar(sa.select(sa.func.count()).select_from(Job).where(Job.kind == "sales.first_contact")) == 0


def test_a_task_reminder_notifies_its_assignee_in_the_dashboard_once(db, session_factory, settings):
    seller = staff(db)
    lead = lead_of(db, "0906000001")
    at = utcnow()
    create_task(db, TaskIn(subject="Gửi báo giá", due_at=at + timedelta(hours=2), remind_at=at + timedelta(hours=1),
                           assignee_id=seller.id, lead_id=lead.id), now=at)
    db.commit()
    assert run_jobs(session_factory, settings, at + timedelta(hours=1, seconds=1)) == 1
    db.expire_all()
    [note] = unread(db, seller.id)
    assert note.kind == "task_reminder" and note.text["vi"].startswith("Nhắc việc: Gửi báo giá")
    assert note.link == f"/sales/leads/{lead.id}"
    assert mark_read(db, seller.id) == 1 and unread(db, seller.id) == []
