"""Identity resolution: which customer an incoming set of identities belongs to.

Rules, in the order they apply:
1. The identities are looked up; the customer of the strongest one (user id, then verified email or
   phone, then Zalo, Facebook, email, phone, anonymous id) is the one the data joins.
2. Another customer found only through an anonymous id that carries no user id of its own is the same
   person before they logged in: it is merged into the first (Segment's identify semantics).
3. Another customer found through an email or phone that both sides hold verified is merged too.
4. Any other conflict (two different user ids, unverified shared email) leaves both profiles alone;
   the identity stays with the customer that already had it.
5. Identities not yet known are attached to the resolved customer; none known creates a customer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.merge import merge_customers
from clm.customers.models import Customer, Identity
from clm.lib.clock import utcnow
from clm.outbox.service import emit

PRIORITY = {"user_id": 0, "email": 3, "phone": 4, "zalo": 5, "facebook": 6, "anonymous_id": 9}


@dataclass(frozen=True)
class Key:
    kind: str
    value: str
    verified: bool = False

    @property
    def rank(self) -> int:
        # Verified contact points are nearly as strong as a user id.
        return 1 if self.verified and self.kind in ("email", "phone") else PRIORITY[self.kind]


@dataclass
class _Known:
    customer_id: int
    verified: bool


class IdentityResolver:
    """Resolves identities within one transaction, caching what it has seen."""

    def __init__(self, session: Session, source: str = "api"):
        self.session = session
        self.source = source
        self.known: dict[tuple[str, str], _Known | None] = {}
        self.created: list[int] = []
        self.merged: list[tuple[int, int]] = []

    def prefetch(self, keys: Iterable[Key]) -> None:
        """Load many identities in a few queries (one per kind) before resolving them one by one."""
        by_kind: dict[str, set[str]] = {}
        for key in keys:
            if (key.kind, key.value) not in self.known:
                by_kind.setdefault(key.kind, set()).add(key.value)
        for kind, values in by_kind.items():
            for value in values:
                self.known[(kind, value)] = None
            rows = self.session.execute(
                sa.select(Identity.value, Identity.customer_id, Identity.verified).where(
                    Identity.kind == kind, Identity.value.in_(values)
                )
            )
            for value, customer_id, verified in rows:
                self.known[(kind, value)] = _Known(customer_id, verified)

    def resolve(self, keys: list[Key], seen_at: datetime | None = None) -> int:
        """The customer these identities belong to, creating or merging profiles by the rules above."""
        if not keys:
            raise ValueError("at least one identity is needed")
        self.prefetch(keys)
        keys = sorted(keys, key=lambda k: k.rank)
        found = [(k, self.known[(k.kind, k.value)]) for k in keys if self.known[(k.kind, k.value)]]
        if not found:
            customer_id = self._create(seen_at)
        else:
            customer_id = found[0][1].customer_id
            for key, known in found[1:]:
                if known.customer_id != customer_id and self._should_merge(key, known, customer_id):
                    self._merge(customer_id, known.customer_id, f"shared {key.kind}")
        new = [k for k in keys if self.known[(k.kind, k.value)] is None]
        if new:
            self._attach(customer_id, new)
        upgrade = [k for k in keys if k.verified and (known := self.known[(k.kind, k.value)])
                   and known.customer_id == customer_id and not known.verified]
        for key in upgrade:
            self.session.execute(
                sa.update(Identity).where(Identity.kind == key.kind, Identity.value == key.value).values(verified=True)
            )
            self.known[(key.kind, key.value)] = _Known(customer_id, True)
        return customer_id

    def alias(self, previous_id: str, user_id: str, seen_at: datetime | None = None) -> int:
        """Segment `alias`: `previous_id` (a user id or anonymous id) and `user_id` are one person."""
        self.prefetch([Key("user_id", previous_id), Key("anonymous_id", previous_id), Key("user_id", user_id)])
        kind = "user_id" if self.known[("user_id", previous_id)] else "anonymous_id"
        previous, user = Key(kind, previous_id), Key("user_id", user_id)
        old, new = self.known[(previous.kind, previous.value)], self.known[(user.kind, user.value)]
        if old and new and old.customer_id != new.customer_id:
            self._merge(new.customer_id, old.customer_id, "alias")
            return new.customer_id
        return self.resolve([user, previous], seen_at)

    def current(self, customer_id: int) -> int:
        """Where `customer_id` lives now, following merges made in this transaction."""
        merged = dict((loser, winner) for winner, loser in self.merged)
        while customer_id in merged:
            customer_id = merged[customer_id]
        return customer_id

    def _should_merge(self, key: Key, known: _Known, winner_id: int) -> bool:
        if key.kind == "anonymous_id":
            has_user = self.session.scalar(
                sa.select(sa.func.count()).select_from(Identity).where(
                    Identity.customer_id == known.customer_id, Identity.kind == "user_id"
                )
            )
            return not has_user
        return key.kind in ("email", "phone") and key.verified and known.verified

    def _create(self, seen_at: datetime | None) -> int:
        now = utcnow()
        customer_id = self.session.execute(
            sa.insert(Customer).values(
                traits={}, search_text="", created_at=now, updated_at=now,
                first_seen_at=seen_at or now, last_seen_at=seen_at or now,
            ).returning(Customer.id)
        ).scalar_one()
        self.created.append(customer_id)
        emit(self.session, "customer.created", customer_id, {"source": self.source})
        return customer_id

    def _attach(self, customer_id: int, keys: list[Key]) -> None:
        now = utcnow()
        self.session.execute(
            sa.insert(Identity),
            [{"customer_id": customer_id, "kind": k.kind, "value": k.value, "verified": k.verified,
              "created_at": now} for k in keys],
        )
        for k in keys:
            self.known[(k.kind, k.value)] = _Known(customer_id, k.verified)

    def _merge(self, winner_id: int, loser_id: int, reason: str) -> None:
        merge_customers(self.session, winner_id, loser_id, reason)
        self.merged.append((winner_id, loser_id))
        for key, known in self.known.items():
            if known and known.customer_id == loser_id:
                self.known[key] = _Known(winner_id, known.verified)
