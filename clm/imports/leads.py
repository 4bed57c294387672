"""Importing leads (`clm import leads`): each row is captured like a lead from any other source, so a
phone or email of a known customer joins that profile and the row becomes part of their history.

Idempotent: a row with an `external_id` already imported, or for a customer whose lead is still open,
changes nothing and counts as unchanged. Owners are named by their staff email.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.customers.profile import normalize_email, phone_e164
from clm.imports.mapping import Mapping
from clm.imports.readers import Row
from clm.imports.report import Rejection
from clm.imports.service import Unit, Written, one_unit_per_row
from clm.imports.values import parse_time
from clm.lib.errors import FieldError
from clm.lib.text import fold
from clm.sales.leads import LeadIn, capture_lead
from clm.sales.models import PRIORITIES, SOURCES
from clm.sales.scoring.service import score_leads

# Priorities and sources as Vietnamese sales teams write them (folded: no diacritics, lower case).
_PRIORITY_WORDS = {"thap": "low", "cao": "high", "rat cao": "very_high", "khan cap": "urgent", "gap": "urgent",
                   "very high": "very_high"}
_SOURCE_WORDS = {"facebook": "facebook_lead_ads", "web": "web_form", "website": "web_form", "gioi thieu": "referral",
                 "su kien": "event", "nhap tay": "manual"}


class LeadImporter:
    kind = "leads"

    def __init__(self, mapping: Mapping, region: str = "VN", timezone=None):
        self.mapping = mapping
        self.region = region
        self.timezone = timezone

    def group_of(self, row: Row) -> None:
        return None

    def prepare(self, rows: list[Row]) -> tuple[list[Unit], list[Rejection]]:
        return one_unit_per_row(rows, self.parse, self.mapping.column)

    def parse(self, row: Row) -> tuple[LeadIn, str | None]:
        ours, extra = self.mapping.read(row.values)
        email = normalize_email(ours["email"], "email") if ours.get("email") else None
        phone = phone_e164(ours["phone"], self.region, "phone") if ours.get("phone") else None
        if not (email or phone):
            raise FieldError("phone", "no phone or email: nothing says how to reach this lead")
        values = {"name": ours.get("name"), "email": email, "phone": phone, "city": ours.get("city"),
                  "message": ours.get("message"), "campaign": ours.get("campaign"),
                  "external_id": str(ours["external_id"]) if ours.get("external_id") else None,
                  "source": _choice(ours.get("source"), SOURCES, _SOURCE_WORDS, "source", "import"),
                  "priority": _choice(ours.get("priority"), PRIORITIES, _PRIORITY_WORDS, "priority", "low"),
                  "details": {"import": extra} if extra else {}}
        if ours.get("created_at"):
            values["occurred_at"] = parse_time(ours["created_at"], "created_at", self.timezone)
        try:
            lead = LeadIn(**{k: v for k, v in values.items() if v is not None})
        except ValueError as exc:
            raise FieldError(None, str(exc).splitlines()[0]) from None
        owner = ours.get("owner_email")
        return lead, normalize_email(owner, "owner_email") if owner else None

    def write(self, session: Session, units: list[Unit]) -> Written:
        owners = {email: uid for email, uid in session.execute(sa.select(User.email, User.id).where(
            User.email.in_({u.data[1] for u in units if u.data[1]})))} if any(u.data[1] for u in units) else {}
        out = Written()
        created = []
        for unit in units:
            lead, owner = unit.data
            if owner and owner not in owners:
                raise FieldError("owner_email", f"no staff user has the email {owner}")
            if owner:
                lead = lead.model_copy(update={"owner_id": owners[owner]})
            captured = capture_lead(session, lead, region=self.region, score=False)
            if captured.created:
                out.imported += 1
                created.append(captured.lead)
            else:
                out.unchanged += 1
        score_leads(session, created)
        return out


def _choice(raw, allowed: tuple[str, ...], words: dict[str, str], field: str, default: str) -> str:
    if raw in (None, ""):
        return default
    text = fold(str(raw)).replace("_", " ").strip()
    key = text.replace(" ", "_")
    if key in allowed:
        return key
    if text in words:
        return words[text]
    raise FieldError(field, f"{raw!r} is not one of {', '.join(allowed)}")
