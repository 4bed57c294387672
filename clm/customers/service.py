"""Customer operations for the API, the dashboard and the CLI: find, read, create, change, delete.

Plain functions over a session; the caller owns the transaction. Profile input is read by
`clm.customers.profile.read_traits`, the same reader as identify calls, so both validate alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.access.models import User
from clm.commerce.events import ORDER_COMPLETED
from clm.commerce.models import Order
from clm.customers.models import Customer, CustomerMerge, Identity
from clm.customers.profile import apply_profile, read_traits, search_text
from clm.db.base import Base
from clm.lib import cursor
from clm.lib.clock import as_utc, utcnow
from clm.lib.errors import FieldError, NotFound
from clm.lib.text import search_terms
from clm.outbox.service import emit
from clm.tracking.models import Event

_IDENTITY_FIELDS = ("email", "phone")
_FULL_NAME_KEYS = ("name", "full_name", "fullName")


class Merged(LookupError):
    """The customer was merged into another; `winner_id` holds their data now."""

    def __init__(self, customer_id: int, winner_id: int):
        super().__init__(f"customer {customer_id} was merged into customer {winner_id}")
        self.customer_id, self.winner_id = customer_id, winner_id


class Conflict(ValueError):
    """A unique value (email, phone, user id, external id) already belongs to another customer."""

    def __init__(self, field: str, owner_id: int):
        super().__init__(f"{field}: already belongs to customer {owner_id}")
        self.field, self.owner_id = field, owner_id


def _like_any(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_customers(
    session: Session, *, q: str | None = None, stage: str | None = None, city: str | None = None,
    email: str | None = None, phone: str | None = None, has_orders: bool | None = None,
    created_since: datetime | None = None, created_until: datetime | None = None,
    seen_since: datetime | None = None, seen_until: datetime | None = None,
    after: str | None = None, limit: int = 50, region: str = "VN",
) -> tuple[list[Customer], str | None]:
    """Live (not merged) customers matching every filter, newest first, and the next page's cursor.

    `q` matches name, email, phone and external id ignoring case and Vietnamese diacritics; every word
    must match. `email` and `phone` are normalised first, so "0912 345 678" finds "+84912345678".
    Ranges are `since` inclusive, `until` exclusive.
    """
    query = sa.select(Customer).where(Customer.merged_into_id.is_(None))
    for term in search_terms(q or ""):
        query = query.where(Customer.search_text.like(_like_any(term), escape="\\"))
    if email is not None:
        query = query.where(Customer.email == _read_one("email", email, region))
    if phone is not None:
        query = query.where(Customer.phone == _read_one("phone", phone, region))
    if stage is not None:
        query = query.where(Customer.lifecycle_stage == stage)
    if city is not None:
        query = query.where(Customer.city == city)
    if has_orders is not None:
        exists = sa.exists().where(Order.customer_id == Customer.id)
        query = query.where(exists if has_orders else ~exists)
    for column, since, until in ((Customer.created_at, created_since, created_until),
                                 (Customer.last_seen_at, seen_since, seen_until)):
        if since is not None:
            query = query.where(column >= as_utc(since))
        if until is not None:
            query = query.where(column < as_utc(until))
    position = cursor.read(after, int)
    if position:
        query = query.where(Customer.id < position[0])
    rows = list(session.scalars(query.order_by(Customer.id.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], cursor.encode(rows[limit - 1].id)


def _read_one(field: str, value: str, region: str) -> Any:
    if not value.strip():
        raise FieldError(field, "must not be empty")
    try:
        return read_traits({field: value}, region, "_")[field]
    except FieldError as exc:
        raise FieldError(field, exc.message, exc.code) from None


def get_customer(session: Session, customer_id: int, *, for_update: bool = False) -> Customer:
    """The live customer; NotFound when unknown, Merged when folded into another."""
    customer = session.get(Customer, customer_id, with_for_update=for_update)
    if customer is None:
        raise NotFound("customer", customer_id)
    if customer.merged_into_id is not None:
        raise Merged(customer_id, customer.merged_into_id)
    return customer


def identities_of(session: Session, customer_id: int) -> list[Identity]:
    return list(session.scalars(
        sa.select(Identity).where(Identity.customer_id == customer_id).order_by(Identity.kind, Identity.id)
    ))


def _reject_nul(value: Any, field: str) -> None:
    # PostgreSQL cannot store NUL in text or JSON; say so instead of failing at the database.
    if isinstance(value, str) and "\x00" in value:
        raise FieldError(field, "must not contain NUL characters")
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_nul(key, field)
            _reject_nul(item, f"{field}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _reject_nul(item, f"{field}[{i}]")


def read_profile(changes: dict[str, Any], region: str) -> tuple[dict[str, Any], list[str], list[str]]:
    """Body fields -> (values for apply_profile, fields to clear, custom traits to remove).

    Fields sent as null or "" are cleared; reserved keys inside `traits` (email, name...) are read as
    the profile fields they are, as identify calls do, and the top-level fields win over them.
    """
    for key, value in changes.items():
        _reject_nul(value, key)
    values: dict[str, Any] = {}
    removed: list[str] = []
    traits = changes.get("traits")
    if traits:
        removed = [k for k, v in traits.items() if v is None]
        values = read_traits({k: v for k, v in traits.items() if v is not None}, region, "traits")
    plain = {k: v for k, v in changes.items() if k not in ("traits", "owner_id", "user_id")}
    cleared = [k for k, v in plain.items() if v is None or (isinstance(v, str) and not v.strip())]
    present = {k: v for k, v in plain.items() if k not in cleared}
    try:
        top = read_traits(present, region, "_")
    except FieldError as exc:
        raise FieldError((exc.field or "").removeprefix("_.") or None, exc.message, exc.code) from None
    custom = {**values.pop("traits", {}), **top.pop("traits", {})}
    values.update(top)
    if custom:
        values["traits"] = custom
    if "owner_id" in changes:
        if changes["owner_id"] is None:
            cleared.append("owner_id")
        else:
            values["owner_id"] = changes["owner_id"]
    for key in cleared:
        values.pop(key, None)
    return values, cleared, removed


def _check_unique(session: Session, customer_id: int | None, values: dict[str, Any], user_id: str | None) -> None:
    wanted = [(kind, values.get(kind)) for kind in _IDENTITY_FIELDS] + [("user_id", user_id)]
    for kind, value in wanted:
        if value is None:
            continue
        owner = session.scalar(sa.select(Identity.customer_id).where(Identity.kind == kind, Identity.value == value))
        if owner is not None and owner != customer_id:
            raise Conflict(kind, owner)
    if values.get("external_id"):
        owner = session.scalar(sa.select(Customer.id).where(Customer.external_id == values["external_id"]))
        if owner is not None and owner != customer_id:
            raise Conflict("external_id", owner)
    if values.get("owner_id") is not None and session.get(User, values["owner_id"]) is None:
        raise FieldError("owner_id", f"no staff user has id {values['owner_id']}")


def _attach(session: Session, customer_id: int, pairs: list[tuple[str, str | None]]) -> None:
    for kind, value in pairs:
        if value is None:
            continue
        known = session.scalar(sa.select(Identity.id).where(Identity.kind == kind, Identity.value == value))
        if known is None:
            session.add(Identity(customer_id=customer_id, kind=kind, value=value, verified=False,
                                 created_at=utcnow()))


def create_customer(session: Session, fields: dict[str, Any], region: str = "VN") -> Customer:
    """Create a customer from profile fields and an optional `user_id`; Conflict when one is taken."""
    values, _, _ = read_profile(fields, region)
    user_id = fields.get("user_id")
    if not (user_id or values.get("email") or values.get("phone") or values.get("external_id")):
        raise FieldError(None, "give at least one of user_id, email, phone or external_id to recognise the customer")
    _check_unique(session, None, values, user_id)
    now = utcnow()
    customer = Customer(traits={}, search_text="", created_at=now, updated_at=now)
    session.add(customer)
    session.flush()
    apply_profile(customer, values)
    customer.search_text = search_text(customer)
    _attach(session, customer.id, [("user_id", user_id), *((k, values.get(k)) for k in _IDENTITY_FIELDS)])
    emit(session, "customer.created", customer.id, {"source": "api"})
    session.flush()
    return customer


def _renamed(customer: Customer, values: dict[str, Any]) -> str | None:
    """The stored full name ("Cao Thị Lan") with a new family or given name put in its place."""
    parts = (customer.full_name or "").split()
    if not ({"given_name", "family_name"} & set(values)) or len(parts) < 2:
        return None
    if parts[0] != customer.family_name or parts[-1] != customer.given_name:
        return None  # a name of another shape: leave it as it is
    family = values.get("family_name", customer.family_name)
    given = values.get("given_name", customer.given_name)
    return " ".join([family, *parts[1:-1], given])


def update_customer(session: Session, customer_id: int, changes: dict[str, Any], region: str = "VN") -> Customer:
    """Apply the sent fields (null clears one) and announce `customer.updated` with the changed names."""
    customer = get_customer(session, customer_id, for_update=True)
    values, cleared, removed = read_profile(changes, region)
    sent_full_name = "full_name" in changes or any(k in (changes.get("traits") or {}) for k in _FULL_NAME_KEYS)
    if not sent_full_name and customer.full_name:
        # read_traits composes a full name from a lone given or family name, which would drop the
        # middle names: swap the changed part inside the stored full name instead.
        values.pop("full_name", None)
        renamed = _renamed(customer, values)
        if renamed:
            values["full_name"] = renamed
    _check_unique(session, customer.id, values, None)
    changed = apply_profile(customer, values)
    for key in cleared:
        if getattr(customer, key) is not None:
            setattr(customer, key, None)
            changed.append(key)
    if removed and any(k in (customer.traits or {}) for k in removed):
        customer.traits = {k: v for k, v in customer.traits.items() if k not in removed}
        if "traits" not in changed:
            changed.append("traits")
    if changed:
        customer.search_text = search_text(customer)
        customer.updated_at = utcnow()
        _attach(session, customer.id, [(k, values.get(k)) for k in _IDENTITY_FIELDS if k in changed])
        emit(session, "customer.updated", customer.id, {"fields": changed, "source": "api"})
    session.flush()
    return customer


def _tables_with_customer_id() -> list[sa.Table]:
    """Every table holding a customer_id, children before parents (order items before orders)."""
    return [t for t in reversed(Base.metadata.sorted_tables) if "customer_id" in t.c and t.name != "customers"]


def delete_customer(session: Session, customer_id: int) -> dict[str, int]:
    """Erase the customer and everything about them (Decree 13's right to erasure); returns rows per table.

    Profiles merged into this one go too (they are the same person), as do the merge records, whose
    `moved` column lists identities. The `customer.deleted` outbox row carries ids and counts only.
    """
    customer = get_customer(session, customer_id, for_update=True)
    session.flush()
    session.expunge(customer)
    ids = [customer_id, *session.scalars(sa.select(Customer.id).where(Customer.merged_into_id == customer_id))]
    deleted: dict[str, int] = {}
    for table in _tables_with_customer_id():
        count = session.execute(sa.delete(table).where(table.c.customer_id.in_(ids))).rowcount
        if count:
            deleted[table.name] = count
    merges = CustomerMerge.__table__
    count = session.execute(
        sa.delete(merges).where(sa.or_(merges.c.winner_id.in_(ids), merges.c.loser_id.in_(ids)))
    ).rowcount
    if count:
        deleted["customer_merges"] = count
    session.execute(sa.delete(Customer.__table__).where(Customer.__table__.c.id.in_(ids)))
    deleted["customers"] = len(ids)
    emit(session, "customer.deleted", customer_id, {"customer_id": customer_id, "rows": deleted})
    session.flush()
    return deleted


def timeline(session: Session, customer_id: int, *, after: str | None = None,
             limit: int = 50) -> tuple[list[tuple[str, datetime, Event | Order]], str | None]:
    """The customer's events and orders in one list, newest first: (kind, at, row) and the next cursor.

    An order stands for the "Order Completed" event that recorded it, so that event is left out.
    """
    get_customer(session, customer_id)
    position = cursor.read(after, datetime, str, int)
    sources = (("event", Event, Event.timestamp,
                sa.and_(Event.customer_id == customer_id,
                        sa.or_(Event.type != "track", Event.name.is_(None), Event.name != ORDER_COMPLETED))),
               ("order", Order, Order.placed_at, Order.customer_id == customer_id))
    entries: list[tuple[str, datetime, Any]] = []
    for kind, model, at, where in sources:
        query = sa.select(model).where(where)
        if position:
            t, k, i = position
            # Rows sort by (time, kind, id) descending; a source's kind is fixed, so compare in Python.
            if kind < k:
                query = query.where(at <= t)
            elif kind == k:
                query = query.where(cursor.newest_first(at, model.id, t, i))
            else:
                query = query.where(at < t)
        rows = session.scalars(query.order_by(at.desc(), model.id.desc()).limit(limit + 1))
        entries.extend((kind, getattr(row, at.key), row) for row in rows)
    entries.sort(key=lambda e: (e[1], e[0], e[2].id), reverse=True)
    if len(entries) <= limit:
        return entries, None
    kind, at, row = entries[limit - 1]
    return entries[:limit], cursor.encode(at, kind, row.id)
