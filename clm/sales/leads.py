"""Leads: capture from every source onto the customer profile, and the sales fields' changes.

A lead is a customer (clm.customers) plus a row of sales facts. Capture goes through the tracking
pipeline's `prepare`/`store` with the lead's own identities (email, phone, Zalo, Facebook, the web
visitor's anonymous id), so identity resolution joins a known phone or email to its profile instead
of making a duplicate, the name and city land on the profile as an identify call's would, and the
submission is an event in the customer's history ("Lead Form Submitted" moves them to consideration
under the default lifecycle rules). A customer has at most one open lead: a second submission while
one is open adds to the history and returns the open lead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.customers.identity import IdentityResolver, Key
from clm.customers.models import Customer
from clm.customers.profile import normalize_email, phone_e164
from clm.lib.clock import as_utc, utcnow
from clm.lib.errors import FieldError, NotFound
from clm.outbox.service import emit
from clm.sales.assignment import assign
from clm.sales.codes import next_codes
from clm.sales.errors import SalesConflict
from clm.sales.models import (
    CLASSIFICATIONS,
    LEAD_STATUSES,
    MAX_ID,
    OPEN_LEAD_STATUSES,
    PRIORITIES,
    SOURCES,
    Lead,
)
from clm.sales.sla import start_clock
from clm.tracking.ingest import prepare, store
from clm.tracking.models import Event

FORM_SOURCES = ("web_form", "facebook_lead_ads", "zalo")
FORM_EVENT = "Lead Form Submitted"  # the default lifecycle rules read it as consideration
CREATED_EVENT = "Lead Created"
UTM_KEYS = ("source", "medium", "campaign", "term", "content")
# Which status may follow which. "converted" is reached only by converting the lead to an opportunity.
TRANSITIONS = {
    "new": {"contacted", "qualified", "unqualified"},
    "contacted": {"new", "qualified", "unqualified"},
    "qualified": {"contacted", "unqualified"},
    "unqualified": {"new", "contacted", "qualified"},
    "converted": set(),
}

Source = Literal[SOURCES]  # type: ignore[valid-type]
Priority = Literal[PRIORITIES]  # type: ignore[valid-type]
Status = Literal[LEAD_STATUSES]  # type: ignore[valid-type]
Classification = Literal[CLASSIFICATIONS]  # type: ignore[valid-type]


class LeadIn(BaseModel):
    """A lead as any source hands it in. Phone or email (or a Zalo/Facebook id) says who it is."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=255)
    phone: str | None = Field(None, max_length=64)
    email: str | None = Field(None, max_length=320)
    city: str | None = Field(None, max_length=128)
    message: str | None = Field(None, max_length=5000)
    source: Source = "manual"
    campaign: str | None = Field(None, max_length=255, description="Else utm.campaign, else the customer's "
                                 "latest tracked context.campaign.")
    utm: dict[str, str] = Field(default_factory=dict, description="source, medium, campaign, term, content")
    anonymous_id: str | None = Field(None, max_length=255, description="The web visitor's analytics.js "
                                     "anonymousId: their earlier visits join the lead's customer.")
    zalo_id: str | None = Field(None, max_length=255)
    facebook_id: str | None = Field(None, max_length=255)
    external_id: str | None = Field(None, max_length=255, description="The source's id of this submission: "
                                    "sending it again finds the same lead.")
    owner_id: int | None = Field(None, ge=1, le=MAX_ID)
    priority: Priority = "low"
    details: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime | None = None


class LeadUpdate(BaseModel):
    """Fields sent are changed; `classification: null` hands the classification back to the score."""

    model_config = ConfigDict(extra="forbid")
    status: Status | None = None
    unqualified_reason: str | None = Field(None, max_length=255)
    owner_id: int | None = Field(None, ge=1, le=MAX_ID)
    priority: Priority | None = None
    classification: Classification | None = None
    campaign: str | None = Field(None, max_length=255)


@dataclass
class Captured:
    lead: Lead
    created: bool  # False: an earlier submission's lead (same external id, or the customer's open lead)


def _identities(data: LeadIn, region: str) -> tuple[str | None, str | None, list[Key]]:
    email = normalize_email(data.email, "email") if data.email and data.email.strip() else None
    phone = phone_e164(data.phone, region, "phone") if data.phone and data.phone.strip() else None
    keys = [Key(kind, value) for kind, value in (("email", email), ("phone", phone), ("zalo", data.zalo_id),
                                                  ("facebook", data.facebook_id),
                                                  ("anonymous_id", data.anonymous_id)) if value]
    if not (email or phone or data.zalo_id or data.facebook_id):
        raise FieldError("phone", "give a phone number or an email address so the lead can be contacted")
    return email, phone, keys


def _check_owner(session: Session, owner_id: int | None) -> None:
    if owner_id is not None and session.get(User, owner_id) is None:
        raise FieldError("owner_id", f"no staff user has id {owner_id}")


def _messages(data: LeadIn, email: str | None, phone: str | None, at: datetime) -> list[dict[str, Any]]:
    """The identify (profile fields) and track (the submission) calls that put the lead on the profile."""
    base = f"lead:{data.source}:{data.external_id}" if data.external_id else f"lead:{uuid.uuid4()}"
    # The pipeline wants a user or anonymous id; the keys are replaced by the lead's identities anyway.
    anonymous = data.anonymous_id or base
    traits = {k: v for k, v in (("name", data.name), ("email", email), ("phone", phone), ("city", data.city)) if v}
    context: dict[str, Any] = {}
    utm = {k: v for k, v in data.utm.items() if k in UTM_KEYS and v}
    if data.campaign and "campaign" not in utm:
        utm["campaign"] = data.campaign
    if utm:
        context["campaign"] = {"name" if k == "campaign" else k: v for k, v in utm.items()}
    if isinstance(data.details.get("page_url"), str):
        context["page"] = {"url": data.details["page_url"][:2000]}
    properties = {"source": data.source}
    for key in ("form_id", "ad_id", "form"):
        if data.details.get(key) is not None:
            properties[key] = str(data.details[key])
    messages = [{"type": "track", "anonymousId": anonymous, "messageId": f"{base}:track",
                 "event": FORM_EVENT if data.source in FORM_SOURCES else CREATED_EVENT,
                 "properties": properties, "context": context, "timestamp": at.isoformat()}]
    if traits:
        messages.insert(0, {"type": "identify", "anonymousId": anonymous, "messageId": f"{base}:identify",
                            "traits": traits, "context": context, "timestamp": at.isoformat()})
    return messages


def _customer_of(session: Session, data: LeadIn, email: str | None, phone: str | None, keys: list[Key],
                 at: datetime, region: str) -> int:
    items, rejected = prepare(_messages(data, email, phone, at), received_at=utcnow(), region=region)
    if rejected:
        field = (rejected[0].field or "").removeprefix("traits.").removeprefix("properties.") or None
        raise FieldError(field, rejected[0].message)
    for item in items:
        item.keys = keys
    fresh = store(session, items, source="sales")
    if fresh:
        return fresh[0].customer_id
    resolver = IdentityResolver(session, "sales")  # a repeated submission: its events are stored already
    customer_id = resolver.resolve(keys, at)
    resolver.flush()
    return resolver.current(customer_id)


def campaign_of(session: Session, customer_id: int, before: datetime | None = None) -> dict[str, Any] | None:
    """The UTM campaign (Segment's `context.campaign`) of the customer's latest tracked visit that had one."""
    query = sa.select(Event.context).where(Event.customer_id == customer_id)
    if before is not None:
        query = query.where(Event.timestamp <= before)
    for (context,) in session.execute(query.order_by(Event.timestamp.desc(), Event.id.desc()).limit(100)):
        campaign = context.get("campaign") if isinstance(context, dict) else None
        if isinstance(campaign, dict) and campaign.get("name"):
            return campaign
    return None


def open_lead_of(session: Session, customer_id: int) -> Lead | None:
    return session.scalar(sa.select(Lead).where(Lead.customer_id == customer_id,
                                                Lead.status.in_(OPEN_LEAD_STATUSES)).order_by(Lead.id).limit(1))


def capture_lead(session: Session, data: LeadIn, *, region: str = "VN", now: datetime | None = None,
                 score: bool = True, first_contact_minutes: int | None = None) -> Captured:
    """Record a lead from any source in the caller's transaction (the caller commits).

    Raises FieldError naming the field for bad contact details or an unknown owner; nothing is written then.
    Two submissions of a new person at once (PostgreSQL) both try to create the profile: the one that
    loses the race to the unique identity retries and finds the other's customer and lead.
    A new lead without an owner goes through the assignment rules (clm.sales.assignment) and starts its
    first-contact clock (clm.sales.sla; `first_contact_minutes` None: CLM_SALES_FIRST_CONTACT_MINUTES).
    """
    if first_contact_minutes is None:
        from clm.config import get_settings

        first_contact_minutes = get_settings().sales_first_contact_minutes
    for attempt in range(3):
        try:
            with session.begin_nested():
                return _capture(session, data, region, now or utcnow(), score, first_contact_minutes)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _capture(session: Session, data: LeadIn, region: str, now: datetime, score: bool,
             first_contact_minutes: int) -> Captured:
    at = as_utc(data.occurred_at) if data.occurred_at else now
    email, phone, keys = _identities(data, region)
    _check_owner(session, data.owner_id)
    if data.external_id:
        known = session.scalar(sa.select(Lead).where(Lead.source == data.source, Lead.external_id == data.external_id))
        if known is not None:
            return Captured(known, False)
    customer_id = _customer_of(session, data, email, phone, keys, at, region)
    # The customer's row lock makes two submissions of one person at once take turns: one lead, not two.
    session.execute(sa.select(Customer.id).where(Customer.id == customer_id).with_for_update())
    campaign = data.campaign or data.utm.get("campaign")
    utm = {k: v for k, v in data.utm.items() if k in UTM_KEYS and v}
    if not campaign:
        tracked = campaign_of(session, customer_id, before=at)
        if tracked:
            campaign = str(tracked["name"])[:255]
            utm = {("campaign" if k == "name" else k): str(v)[:255] for k, v in tracked.items()
                   if ("campaign" if k == "name" else k) in UTM_KEYS and v}
    existing = open_lead_of(session, customer_id)
    if existing is not None:
        existing.details = {**(existing.details or {}), "submissions": int((existing.details or {}).get(
            "submissions", 1)) + 1}
        if existing.campaign is None and campaign:
            existing.campaign, existing.utm = campaign[:255], utm
        existing.updated_at = now
        session.flush()
        return Captured(existing, False)
    details = {k: v for k, v in data.details.items() if v is not None}
    lead = Lead(code=next_codes(session, "lead")[0], customer_id=customer_id, source=data.source,
                external_id=data.external_id, campaign=campaign[:255] if campaign else None, utm=utm,
                status="new", owner_id=data.owner_id, priority=data.priority, classification=None,
                classification_manual=False, score_detail={}, message=data.message, details=details,
                status_changed_at=now, created_at=at, updated_at=now)
    session.add(lead)
    session.flush()
    _assign(session, lead, data, now)
    start_clock(session, lead, first_contact_minutes, now)
    emit(session, "lead.created", customer_id, {"lead_id": lead.id, "code": lead.code, "source": lead.source,
                                                 "campaign": lead.campaign})
    if score:
        from clm.sales.scoring.service import score_leads

        score_leads(session, [lead], now=now)
    return Captured(lead, True)


def _assign(session: Session, lead: Lead, data: LeadIn, now: datetime) -> None:
    if lead.owner_id is not None:
        lead.assignment = {"method": "given", "user_id": lead.owner_id, "at": now.isoformat(),
                           "vi": "Người phụ trách được chỉ định cùng khách tiềm năng",
                           "en": "The owner was given with the lead"}
        return
    city = data.city or session.scalar(sa.select(Customer.city).where(Customer.id == lead.customer_id))
    assign(session, lead, city=city, now=now)


def get_lead(session: Session, lead_id: int, *, for_update: bool = False) -> Lead:
    lead = session.get(Lead, lead_id, with_for_update=for_update)
    if lead is None:
        raise NotFound("lead", lead_id)
    return lead


def find_lead(session: Session, key: str) -> Lead:
    """A lead by id ("42") or code ("LD-000042")."""
    if key.isdigit():
        return get_lead(session, int(key))
    lead = session.scalar(sa.select(Lead).where(Lead.code == key.upper()))
    if lead is None:
        raise NotFound("lead", key)
    return lead


def set_status(session: Session, lead: Lead, status: str, *, reason: str | None = None,
               now: datetime | None = None) -> bool:
    """Move the lead to `status` if the flow allows it; True when it changed."""
    now = now or utcnow()
    if status == lead.status:
        if status == "unqualified" and reason and reason != lead.unqualified_reason:
            lead.unqualified_reason = reason
        return False
    if status == "converted":
        raise SalesConflict("convert_instead", "a lead becomes converted by converting it to an opportunity "
                            "(POST /api/v1/leads/{id}/convert)", "status")
    if status not in TRANSITIONS[lead.status]:
        raise SalesConflict("bad_transition", f"lead {lead.code} is {lead.status}; it cannot become {status}", "status")
    if status == "unqualified" and not (reason and reason.strip()):
        raise FieldError("unqualified_reason", "say why the lead is unqualified")
    before = lead.status
    lead.status = status
    lead.unqualified_reason = reason.strip()[:255] if status == "unqualified" and reason else None
    lead.status_changed_at = now
    if status in ("contacted", "qualified") and lead.contacted_at is None:
        lead.contacted_at = now
    emit(session, "lead.status_changed", lead.customer_id,
         {"lead_id": lead.id, "code": lead.code, "from": before, "to": status})
    return True


def update_lead(session: Session, lead_id: int, changes: LeadUpdate, now: datetime | None = None) -> Lead:
    """Apply the sent fields of `changes`; all or nothing (the caller rolls back on an error)."""
    now = now or utcnow()
    lead = get_lead(session, lead_id, for_update=True)
    sent = changes.model_fields_set
    if "status" in sent and changes.status is not None:
        set_status(session, lead, changes.status, reason=changes.unqualified_reason, now=now)
    elif "unqualified_reason" in sent and lead.status == "unqualified" and changes.unqualified_reason:
        lead.unqualified_reason = changes.unqualified_reason
    if "owner_id" in sent:
        _check_owner(session, changes.owner_id)
        lead.owner_id = changes.owner_id
    if "priority" in sent:
        if changes.priority is None:
            raise FieldError("priority", f"must be one of {', '.join(PRIORITIES)}")
        lead.priority = changes.priority
    if "classification" in sent:
        lead.classification_manual = changes.classification is not None
        if changes.classification is not None:
            lead.classification = changes.classification
        else:
            from clm.sales.scoring.service import classify

            lead.classification = classify(lead.score)
    if "campaign" in sent:
        lead.campaign = changes.campaign
    lead.updated_at = now
    session.flush()
    return lead


def list_leads(session: Session, *, status: str | None = None, owner_id: int | None = None,
               source: str | None = None, campaign: str | None = None, classification: str | None = None,
               priority: str | None = None, customer_id: int | None = None, open_only: bool = False,
               q: str | None = None, order: str = "newest", after: str | None = None,
               limit: int = 50) -> tuple[list[Lead], str | None]:
    """Leads matching every filter, newest first (`order="score"`: best score first), and the next cursor.
    `q` searches the lead's code and its customer's name, email and phone, ignoring diacritics and case."""
    from clm.lib import cursor
    from clm.lib.text import search_terms

    query = sa.select(Lead)
    terms = search_terms(q or "")
    if terms:
        query = query.join(Customer, Customer.id == Lead.customer_id)
        for term in terms:
            escaped = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(sa.or_(Customer.search_text.like(escaped, escape="\\"),
                                       sa.func.lower(Lead.code).like(escaped, escape="\\")))
    for column, value in ((Lead.status, status), (Lead.owner_id, owner_id), (Lead.source, source),
                          (Lead.campaign, campaign), (Lead.classification, classification),
                          (Lead.priority, priority), (Lead.customer_id, customer_id)):
        if value is not None:
            query = query.where(column == value)
    if open_only:
        query = query.where(Lead.status.in_(OPEN_LEAD_STATUSES))
    if order == "score":
        # Unscored leads sort as 0; the cursor holds (the score's exact repr, id).
        key = sa.func.coalesce(Lead.score, 0.0)
        position = cursor.read(after, str, int)
        if position:
            try:
                at = float(position[0])
            except ValueError:
                raise FieldError("cursor", "does not belong to this listing") from None
            query = query.where(sa.or_(key < at, sa.and_(key == at, Lead.id < position[1])))
        rows = list(session.scalars(query.order_by(key.desc(), Lead.id.desc()).limit(limit + 1)))
        if len(rows) <= limit:
            return rows, None
        last = rows[limit - 1]
        return rows[:limit], cursor.encode(repr(float(last.score or 0.0)), last.id)
    if order != "newest":
        raise FieldError("order", "must be newest or score")
    position = cursor.read(after, int)
    if position:
        query = query.where(Lead.id < position[0])
    rows = list(session.scalars(query.order_by(Lead.id.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], cursor.encode(rows[limit - 1].id)
