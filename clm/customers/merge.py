"""Folding one customer profile into another, recording what moved."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.models import Customer, CustomerMerge, Identity
from clm.customers.profile import search_text
from clm.db.base import Base
from clm.lib.clock import utcnow
from clm.outbox.service import emit

_PROFILE_FIELDS = ("external_id", "email", "phone", "full_name", "given_name", "family_name", "birthday",
                   "gender", "city", "owner_id", "lifecycle_stage")


def _customer_tables() -> list[tuple[sa.Table, type | None]]:
    """Every table with a customer_id, and its mapped class (which may know how to merge its rows)."""
    classes = {m.local_table: m.class_ for m in Base.registry.mappers}
    out = []
    for table in Base.metadata.sorted_tables:
        if table.name in ("customers", "customer_merges") or "customer_id" not in table.c:
            continue
        out.append((table, classes.get(table)))
    return out


def merge_customers(session: Session, winner_id: int, loser_id: int, reason: str) -> CustomerMerge:
    """Move everything of `loser` onto `winner`; the loser stays as a tombstone pointing at the winner.

    Tables whose rows are keyed by customer (rollups) define `merge_customer(session, winner, loser)`;
    every other table with a customer_id is re-pointed with one UPDATE.
    """
    if winner_id == loser_id:
        raise ValueError("cannot merge a customer into itself")
    winner = session.get(Customer, winner_id, with_for_update=True)
    loser = session.get(Customer, loser_id, with_for_update=True)
    if winner is None or loser is None:
        raise LookupError(f"customer {winner_id if winner is None else loser_id} does not exist")
    session.flush()
    moved: dict[str, Any] = {
        "identities": [
            {"kind": k, "value": v}
            for k, v in session.execute(
                sa.select(Identity.kind, Identity.value).where(Identity.customer_id == loser_id)
            )
        ],
        "rows": {},
        "fields": [],
    }
    for table, cls in _customer_tables():
        if cls is not None and hasattr(cls, "merge_customer"):
            count = cls.merge_customer(session, winner_id, loser_id)
        else:
            count = session.execute(
                sa.update(table).where(table.c.customer_id == loser_id).values(customer_id=winner_id)
            ).rowcount
        if count:
            moved["rows"][table.name] = count
    external_id = loser.external_id
    loser.external_id = None
    session.flush()
    for field in _PROFILE_FIELDS:
        value = external_id if field == "external_id" else getattr(loser, field)
        if getattr(winner, field) in (None, "") and value not in (None, ""):
            setattr(winner, field, value)
            moved["fields"].append(field)
    if loser.traits:
        winner.traits = {**loser.traits, **(winner.traits or {})}
    for attr, pick in (("first_seen_at", min), ("last_seen_at", max)):
        values = [v for v in (getattr(winner, attr), getattr(loser, attr)) if v is not None]
        if values:
            setattr(winner, attr, pick(values))
    winner.search_text = search_text(winner)
    loser.merged_into_id = winner_id
    loser.email = loser.phone = None
    loser.search_text = ""
    # Earlier tombstones of the loser now point straight at the winner.
    session.execute(
        sa.update(Customer).where(Customer.merged_into_id == loser_id).values(merged_into_id=winner_id)
    )
    record = CustomerMerge(winner_id=winner_id, loser_id=loser_id, reason=reason, moved=moved, created_at=utcnow())
    session.add(record)
    emit(session, "customer.merged", winner_id, {"winner_id": winner_id, "loser_id": loser_id, "reason": reason})
    session.flush()
    return record
