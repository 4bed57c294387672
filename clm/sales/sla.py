"""The first-contact SLA: a new lead must be called (a call or meeting logged, or its status moved on)
within `CLM_SALES_FIRST_CONTACT_MINUTES` of coming in.

Capturing a lead sets its deadline and queues one `sales.first_contact` job due then (unique per lead).
The job records a breach on the lead (`first_contact_breached_at` = the deadline), announces
`lead.first_contact_breached` on the outbox and notifies the owner and, as the escalation, the managers.
A lead contacted in time, closed, or already recorded is left alone, so running the job twice changes
nothing the second time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.jobs.queue import enqueue
from clm.lib.clock import utcnow
from clm.outbox.service import emit
from clm.sales.models import OPEN_LEAD_STATUSES, Lead
from clm.sales.notifications import notify

FIRST_CONTACT = "sales.first_contact"
ESCALATE_TO = ("manager", "admin")


def start_clock(session: Session, lead: Lead, minutes: int, now: datetime) -> None:
    """Set the lead's deadline and queue its check; a lead that came in too long ago (an import of old
    leads) starts no clock."""
    if minutes <= 0:
        return
    due = lead.created_at + timedelta(minutes=minutes)
    if due <= now:
        return
    lead.first_contact_due_at = due
    enqueue(session, FIRST_CONTACT, {"lead_id": lead.id}, run_at=due, unique_key=f"{FIRST_CONTACT}:{lead.id}",
            max_attempts=5)


def contacted_in_time(lead: Lead) -> bool:
    return lead.contacted_at is not None and lead.first_contact_due_at is not None \
        and lead.contacted_at <= lead.first_contact_due_at


def check_first_contact(session: Session, lead_id: int, now: datetime | None = None) -> bool:
    """The job, run when the deadline has come (the queue holds it till then): record and announce a
    breach once; True when it recorded one."""
    now = now or utcnow()
    lead = session.get(Lead, lead_id, with_for_update=True)
    if lead is None or lead.first_contact_due_at is None or lead.first_contact_breached_at is not None:
        return False
    if contacted_in_time(lead):
        return False
    if lead.contacted_at is None and lead.status not in OPEN_LEAD_STATUSES:
        return False  # closed without a call (unqualified by hand, converted): nothing to chase
    lead.first_contact_breached_at = lead.first_contact_due_at
    minutes = int((lead.first_contact_due_at - lead.created_at).total_seconds() // 60)
    emit(session, "lead.first_contact_breached", lead.customer_id, {
        "lead_id": lead.id, "code": lead.code, "owner_id": lead.owner_id,
        "due_at": lead.first_contact_due_at.isoformat(), "minutes": minutes})
    managers = list(session.scalars(sa.select(User.id).where(User.role.in_(ESCALATE_TO), User.active.is_(True))
                                    .order_by(User.id)))
    text = {"vi": f"Khách tiềm năng {lead.code} chưa được liên hệ trong {minutes} phút",
            "en": f"Lead {lead.code} was not contacted within {minutes} minutes"}
    people = ([lead.owner_id] if lead.owner_id else []) + managers
    notify(session, f"sla:{lead.id}", people, "first_contact_breached", text, f"/sales/leads/{lead.id}", now)
    session.flush()
    return True


def breach_counts(session: Session, since: datetime) -> dict[str, int]:
    """Leads with a deadline since `since`: how many were contacted in time, breached, still waiting."""
    rows = session.execute(sa.select(
        sa.func.count(),
        sa.func.count(Lead.first_contact_breached_at),
        sa.func.sum(sa.case((sa.and_(Lead.first_contact_breached_at.is_(None), Lead.contacted_at.is_(None)), 1),
                            else_=0)),
    ).where(Lead.first_contact_due_at >= since)).one()
    total, breached, waiting = int(rows[0]), int(rows[1]), int(rows[2] or 0)
    return {"total": total, "breached": breached, "waiting": waiting, "in_time": total - breached - waiting}
