"""Importing customers: each row is validated like an identify call's traits, resolved to a profile
through its identities (external id, email, phone, Zalo, Facebook) and applied to it.

Idempotent: a row whose identities are all known and whose values the profile already has changes
nothing and counts as unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.identity import IdentityResolver, Key
from clm.customers.models import Customer
from clm.customers.profile import apply_profile, read_traits
from clm.imports.mapping import Mapping
from clm.imports.readers import Row
from clm.imports.report import Rejection
from clm.imports.service import Unit, Written, one_unit_per_row
from clm.lib.errors import FieldError
from clm.outbox.service import emit_many

_PROFILE_FIELDS = ("external_id", "email", "phone", "full_name", "given_name", "family_name", "birthday",
                   "gender", "city")
_EXTERNAL = {"zalo_id": "zalo", "facebook_id": "facebook"}


@dataclass(slots=True)
class CustomerRow:
    keys: list[Key]
    profile: dict[str, Any]


class CustomerImporter:
    kind = "customers"

    def __init__(self, mapping: Mapping, region: str = "VN", source: str = "import"):
        self.mapping = mapping
        self.region = region
        self.source = source

    def group_of(self, row: Row) -> None:
        return None

    def prepare(self, rows: list[Row]) -> tuple[list[Unit], list[Rejection]]:
        return one_unit_per_row(rows, self.parse, self._column)

    def parse(self, row: Row) -> CustomerRow:
        ours, extra = self.mapping.read(row.values)
        traits = {k: ours[k] if k != "external_id" else str(ours[k]) for k in _PROFILE_FIELDS if k in ours}
        profile = read_traits(traits, self.region, prefix="row")
        if extra:
            profile["traits"] = extra
        keys = []
        if profile.get("external_id"):
            keys.append(Key("user_id", profile["external_id"]))
        for kind in ("email", "phone"):
            if profile.get(kind):
                keys.append(Key(kind, profile[kind]))
        for ours_name, kind in _EXTERNAL.items():
            if ours.get(ours_name) not in (None, ""):
                keys.append(Key(kind, str(ours[ours_name])[:320]))
        if not keys:
            raise FieldError(None, "no external_id, email, phone, zalo_id or facebook_id: "
                                   "nothing says who this customer is")
        return CustomerRow(keys, profile)

    def _column(self, field: str | None) -> str | None:
        if not field:
            return None
        ours = field.removeprefix("row.")
        ours = {"name": "full_name"}.get(ours, ours)
        return self.mapping.column(ours)

    def write(self, session: Session, units: list[Unit]) -> Written:
        resolver = IdentityResolver(session, self.source)
        resolver.prefetch(k for u in units for k in u.data.keys)
        resolved = []
        for unit in units:
            keys = unit.data.keys
            all_known = all(resolver.known.get((k.kind, k.value)) for k in keys)
            resolved.append((unit, resolver.resolve(keys), all_known))
        resolver.flush()
        created = set(resolver.created)
        ids = {resolver.current(cid) for _, cid, _ in resolved}
        customers = {c.id: c for c in session.scalars(sa.select(Customer).where(Customer.id.in_(ids)))}
        wanted = {u.data.profile["external_id"] for u, _, _ in resolved if u.data.profile.get("external_id")}
        owners = dict(session.execute(
            sa.select(Customer.external_id, Customer.id).where(Customer.external_id.in_(wanted))
        ).all()) if wanted else {}

        out = Written()
        changes = []
        for unit, cid, all_known in resolved:
            cid = resolver.current(cid)
            profile = unit.data.profile
            external_id = profile.get("external_id")
            if external_id and owners.setdefault(external_id, cid) != cid:
                # Another profile carries this external id (unique): keep it there, import the rest.
                profile = {k: v for k, v in profile.items() if k != "external_id"}
            changed = apply_profile(customers[cid], profile)
            if changed:
                changes.append(("customer.updated", cid, {"fields": changed, "source": self.source}))
            if changed or not all_known or cid in created:
                out.imported += 1
            else:
                out.unchanged += 1
        session.flush()
        emit_many(session, changes)
        return out
