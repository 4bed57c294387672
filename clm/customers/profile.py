"""Reading profile fields from traits: normalised email and phone, names, birthday."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Any

from email_validator import EmailNotValidError, validate_email

from clm.customers.models import Customer
from clm.lib.errors import FieldError
from clm.lib.phones import InvalidPhone, normalize_phone
from clm.lib.text import fold

# Segment's reserved identify traits (and common spellings) -> our columns.
_NAME_KEYS = {
    "name": "full_name", "full_name": "full_name", "fullName": "full_name",
    "firstName": "given_name", "first_name": "given_name", "given_name": "given_name",
    "lastName": "family_name", "last_name": "family_name", "family_name": "family_name",
}
_PLAIN_KEYS = {"gender": "gender", "city": "city", "external_id": "external_id", "externalId": "external_id"}
RESERVED = set(_NAME_KEYS) | set(_PLAIN_KEYS) | {"email", "phone", "birthday", "address", "id"}
GENDERS = {"male": "male", "m": "male", "nam": "male", "female": "female", "f": "female", "nu": "female",
           "nữ": "female", "other": "other", "khac": "other", "khác": "other"}


def normalize_email(raw: Any, field: str = "email") -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise FieldError(field, "must be a non-empty string")
    try:
        return _valid_email(raw.strip())
    except EmailNotValidError as exc:
        raise FieldError(field, f"{raw!r} is not a valid email address: {exc}") from None


def phone_e164(raw: Any, region: str, field: str = "phone") -> str:
    try:
        return _valid_phone(str(raw), region)
    except InvalidPhone as exc:
        raise FieldError(field, str(exc)) from None


# The same customers identify again and again (every session, every app start): their addresses are
# checked once per process, not on every call. Failures are not cached (lru_cache keeps results only).
@lru_cache(maxsize=65_536)
def _valid_email(raw: str) -> str:
    return validate_email(raw, check_deliverability=False).normalized.lower()


@lru_cache(maxsize=65_536)
def _valid_phone(raw: str, region: str) -> str:
    return normalize_phone(raw, region)


def parse_birthday(raw: Any, field: str = "birthday") -> date:
    if isinstance(raw, date):
        return raw if not isinstance(raw, datetime) else raw.date()
    text = str(raw).strip()
    for parse in (date.fromisoformat, lambda t: datetime.fromisoformat(t.replace("Z", "+00:00")).date(),
                  lambda t: datetime.strptime(t, "%d/%m/%Y").date()):
        try:
            return parse(text)
        except ValueError:
            continue
    raise FieldError(field, f"{raw!r} is not a date (use YYYY-MM-DD or DD/MM/YYYY)")


def split_vietnamese_name(full: str) -> tuple[str | None, str | None]:
    """Vietnamese names are family name first: "Nguyễn Văn An" -> ("Nguyễn", "An")."""
    parts = full.split()
    if len(parts) < 2:
        return None, full or None
    return parts[0], parts[-1]


def read_traits(traits: dict[str, Any], region: str, prefix: str = "traits") -> dict[str, Any]:
    """Validate `traits` into column values plus the custom rest. Raises FieldError naming the trait."""
    if not isinstance(traits, dict):
        raise FieldError(prefix, "must be an object")
    out: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for key, value in traits.items():
        if value is None or value == "":
            continue
        if key == "email":
            out["email"] = normalize_email(value, f"{prefix}.email")
        elif key == "phone":
            out["phone"] = phone_e164(value, region, f"{prefix}.phone")
        elif key == "birthday":
            out["birthday"] = parse_birthday(value, f"{prefix}.birthday")
        elif key in _NAME_KEYS:
            out[_NAME_KEYS[key]] = str(value).strip()[:255]
        elif key == "gender":
            out["gender"] = GENDERS.get(fold(str(value)), GENDERS.get(str(value).lower(), "other"))
        elif key in _PLAIN_KEYS:
            out[_PLAIN_KEYS[key]] = str(value).strip()[:255]
        elif key == "address" and isinstance(value, dict):
            if value.get("city"):
                out.setdefault("city", str(value["city"]).strip()[:128])
            custom["address"] = value
        else:
            custom[key] = value
    if out.get("full_name") and not (out.get("given_name") or out.get("family_name")):
        family, given = split_vietnamese_name(out["full_name"])
        out["family_name"], out["given_name"] = family, given
    elif not out.get("full_name") and (out.get("given_name") or out.get("family_name")):
        # Vietnamese order: family name, then given name.
        out["full_name"] = " ".join(p for p in (out.get("family_name"), out.get("given_name")) if p)
    if custom:
        out["traits"] = custom
    return out


def apply_profile(customer: Customer, values: dict[str, Any]) -> list[str]:
    """Set `values` (from read_traits) on `customer`; returns the names of the fields that changed."""
    changed = []
    for key, value in values.items():
        if key == "traits":
            merged = {**(customer.traits or {}), **value}
            if merged != customer.traits:
                customer.traits = merged
                changed.append("traits")
        elif getattr(customer, key) != value:
            setattr(customer, key, value)
            changed.append(key)
    if changed:
        customer.search_text = search_text(customer)
    return changed


def search_text(customer: Customer) -> str:
    parts = [customer.full_name, customer.given_name, customer.family_name, customer.email,
             customer.phone, customer.phone and "0" + customer.phone[3:] if (customer.phone or "").startswith("+84") else None,
             customer.external_id]
    return fold(" ".join(p for p in parts if p))
