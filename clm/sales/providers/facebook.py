"""Facebook Lead Ads: the Page's `leadgen` webhook names a lead; the Graph API gives its answers.

Webhook (object "page"): ``entry[].changes[]`` with ``field == "leadgen"`` and ``value`` holding
``leadgen_id``, ``form_id``, ``ad_id``, ``page_id`` and ``created_time`` (Unix seconds). The answers
are read with ``GET /<leadgen_id>?access_token=<page token>``, which returns ``created_time``,
``field_data: [{"name": "email", "values": ["..."]}, ...]`` and the ids. Standard questions are named
``full_name``, ``first_name``, ``last_name``, ``email``, ``phone_number``, ``city``; custom questions
keep the names the advertiser gave them and are kept with the lead as answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clm.channels.adapters.base import PermanentError, TransientError
from clm.channels.adapters.http import ProviderClient, json_body
from clm.channels.adapters.messenger import error_for
from clm.customers.profile import normalize_email, phone_e164
from clm.lib.errors import FieldError
from clm.sales.leads import LeadIn

_NAME_FIELDS = {"full_name": "full", "first_name": "given", "last_name": "family"}


@dataclass(frozen=True)
class LeadgenChange:
    leadgen_id: str
    form_id: str | None
    ad_id: str | None
    page_id: str | None


def leadgen_changes(body: Any) -> list[LeadgenChange]:
    """The leads a webhook delivery announces (anything else in it is ignored)."""
    if not isinstance(body, dict) or body.get("object") != "page":
        return []
    out = []
    for entry in body.get("entry") or []:
        for change in (entry.get("changes") or []) if isinstance(entry, dict) else []:
            value = change.get("value") if isinstance(change, dict) else None
            if change.get("field") == "leadgen" and isinstance(value, dict) and value.get("leadgen_id"):
                out.append(LeadgenChange(str(value["leadgen_id"]), _str(value.get("form_id")), _str(value.get("ad_id")),
                                         _str(value.get("page_id"))))
    return out


def _str(value: Any) -> str | None:
    return None if value in (None, "", 0, "0") else str(value)


@dataclass
class LeadsClient:
    """Reads leads from the Graph API with a Page access token (leads_retrieval permission)."""

    page_token: str
    graph_url: str = "https://graph.facebook.com/v25.0"
    timeout: float = 10.0

    def __post_init__(self) -> None:
        self.http = ProviderClient("Facebook Graph API", self.timeout)

    def fetch(self, leadgen_id: str) -> dict[str, Any]:
        """The lead's Graph object; TransientError (retry) or PermanentError (give up) otherwise."""
        if not leadgen_id.isdigit():
            raise PermanentError(f"{leadgen_id!r} is not a leadgen id", code="bad_id")
        response = self.http.request("GET", f"{self.graph_url.rstrip('/')}/{leadgen_id}",
                                     params={"access_token": self.page_token,
                                             "fields": "id,created_time,ad_id,form_id,field_data"})
        answer = json_body(response) or {}
        if response.status_code < 300 and isinstance(answer.get("field_data"), list):
            return answer
        raise error_for(answer, response.status_code)


def lead_in(lead: dict[str, Any], change: LeadgenChange | None = None, region: str = "VN") -> LeadIn:
    """A Graph lead as a LeadIn. A malformed phone or email is left out (kept with the answers) when the
    other one is usable, so a typo on Facebook's form does not lose the lead."""
    answers: dict[str, str] = {}
    for item in lead.get("field_data") or []:
        if isinstance(item, dict) and item.get("name"):
            values = [str(v) for v in item.get("values") or [] if v not in (None, "")]
            if values:
                answers[str(item["name"])] = ", ".join(values)
    names = {_NAME_FIELDS[k]: v for k, v in answers.items() if k in _NAME_FIELDS}
    name = names.get("full") or " ".join(p for p in (names.get("family"), names.get("given")) if p) or None
    phone = next((v for k, v in answers.items() if k == "phone_number" or k.startswith("phone")), None)
    email = next((v for k, v in answers.items() if k == "email" or k.endswith("email")), None)
    phone, email = _usable(phone, email, region)
    if not (phone or email):
        raise PermanentError("the lead has neither a usable phone number nor an email address", code="no_contact")
    rest = {k: v for k, v in answers.items()
            if k not in _NAME_FIELDS and k != "city" and not k.startswith("phone") and not k.endswith("email")}
    details: dict[str, Any] = {"answers": rest} if rest else {}
    for key, value in (("form_id", lead.get("form_id") or (change and change.form_id)),
                       ("ad_id", lead.get("ad_id") or (change and change.ad_id)),
                       ("page_id", change and change.page_id)):
        if value:
            details[key] = str(value)
    return LeadIn(name=name[:255] if name else None, phone=phone, email=email, city=answers.get("city"),
                  source="facebook_lead_ads", external_id=str(lead.get("id") or (change and change.leadgen_id)),
                  details=details, occurred_at=_time(lead.get("created_time")))


def _usable(phone: str | None, email: str | None, region: str) -> tuple[str | None, str | None]:
    try:
        phone = phone_e164(phone, region) if phone else None
    except FieldError:
        phone = None
    try:
        email = normalize_email(email) if email else None
    except FieldError:
        email = None
    return phone, email


def _time(value: Any) -> datetime | None:
    """Graph's "2025-03-01T09:00:00+0000" (or Unix seconds) as an aware time."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)
    except ValueError:
        return None


__all__ = ["LeadgenChange", "LeadsClient", "PermanentError", "TransientError", "lead_in", "leadgen_changes"]
