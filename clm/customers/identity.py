"""Identity resolution: which customer an incoming set of identities belongs to.

Rules, in the order they apply:
1. The identities are looked up; the customer of the strongest one (user id, then verified email or
   phone, then email, phone, Zalo, Facebook, anonymous id) is the one the data joins.
2. Another customer found only through an anonymous id that carries no user id of its own is the same
   person before they logged in: it is merged into the first (Segment's identify semantics).
3. Another customer found through an email or phone that both sides hold verified is merged too.
4. Any other conflict (two different user ids, unverified shared email) leaves both profiles alone;
   the identity stays with the customer that already had it.
5. Identities not yet known are attached to the resolved customer; none known creates a customer.

New customers and identities are kept in memory (negative ids) and written in bulk by `flush()`,
so a request of a hundred events costs a few statements, not a few hundred.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.merge import merge_many
from clm.customers.models import Customer, Identity
from clm.db.bulk import allocate_ids, insert_rows
from clm.db.idlist import list_value, one_of
from clm.lib.clock import utcnow
from clm.outbox.service import emit_many

PRIORITY = {"user_id": 0, "email": 3, "phone": 4, "zalo": 5, "facebook": 6, "anonymous_id": 9}
_customers = Customer.__table__
_identities = Identity.__table__
# Identities of one kind among many values, the values bound as one parameter (a fixed statement).
_KNOWN = {d: sa.select(_identities.c.value, _identities.c.customer_id, _identities.c.verified).where(
    _identities.c.kind == sa.bindparam("kind"), one_of(_identities.c.value, "values", d, sa.String))
    for d in ("sqlite", "postgresql")}


class Key(NamedTuple):
    """One identity of a message. A tuple: hashed and compared in C on the hot path."""

    kind: str
    value: str
    verified: bool = False

    @property
    def rank(self) -> int:
        # Verified contact points are nearly as strong as a user id.
        return 1 if self.verified and self.kind in ("email", "phone") else PRIORITY[self.kind]


def _rank(key: Key) -> int:
    return key.rank


@dataclass
class _Known:
    customer_id: int  # negative: a customer created in this transaction, not yet written
    verified: bool


class IdentityResolver:
    """Resolves identities within one transaction, caching what it has seen. Call `flush()` at the end."""

    def __init__(self, session: Session, source: str = "api"):
        self.session = session
        self.source = source
        self.known: dict[tuple[str, str], _Known | None] = {}
        self.created: list[int] = []
        self.merged: list[tuple[int, int]] = []  # (winner, loser) applied by flush()
        self._merges: list[tuple[int, int, str]] = []  # decided, not yet applied
        self._placeholders = itertools.count(1)
        self._redirect: dict[int, int] = {}
        self._pending: dict[int, list[datetime | None]] = {}  # placeholder id -> [first seen, last seen]
        self._new_keys: list[tuple[int, Key]] = []
        self._verify: list[Key] = []
        self._user_holders: set[int] = set()  # customers (current ids) given a new user id in this transaction
        self._stored_user: dict[int, bool] = {}  # stored customer -> has a user id (as read in this transaction)

    def prefetch(self, keys: Iterable[Key]) -> None:
        """Load many identities in a few queries (one per kind) before resolving them one by one."""
        by_kind: dict[str, set[str]] = {}
        for key in keys:
            if (key.kind, key.value) not in self.known:
                by_kind.setdefault(key.kind, set()).add(key.value)
        for kind, values in by_kind.items():
            for value in values:
                self.known[(kind, value)] = None
            dialect = self.session.get_bind().dialect.name
            rows = self.session.execute(
                _KNOWN[dialect], {"kind": kind, "values": list_value(list(values), dialect)}
            ).all()  # fetched in one call, not row by row
            for value, customer_id, verified in rows:
                self.known[(kind, value)] = _Known(customer_id, verified)

    def resolve(self, keys: list[Key], seen_at: datetime | None = None) -> int:
        """The customer these identities belong to, creating or merging profiles by the rules above.

        The id may be a placeholder until `flush()`; pass it through `current()` after flushing.
        """
        if not keys:
            raise ValueError("at least one identity is needed")
        if len(keys) == 1:  # the common case: one identity, already known, nothing to verify
            key = keys[0]
            known = self.known.get((key.kind, key.value))
            if known is not None and (known.verified or not key.verified):
                customer_id = self.current(known.customer_id)
                seen = self._pending.get(customer_id)
                if seen is not None and seen_at is not None:
                    seen[0] = min(seen[0] or seen_at, seen_at)
                    seen[1] = max(seen[1] or seen_at, seen_at)
                return customer_id
        self.prefetch(keys)
        if len(keys) > 1:
            keys = sorted(keys, key=_rank)
        found = [(k, self.known[(k.kind, k.value)]) for k in keys if self.known[(k.kind, k.value)]]
        new_user = next((k for k in keys if k.kind == "user_id" and self.known[(k.kind, k.value)] is None), None)
        if found and not (new_user is not None and self._has_user_id(self.current(found[0][1].customer_id))):
            customer_id, others = self.current(found[0][1].customer_id), found[1:]
        else:
            # Nothing known, or a new user id on a profile that has another one (a shared device, an
            # anonymous id reused after logout): a different person with a profile of their own.
            customer_id, others = self._create(seen_at), found
        for key, known in others:
            other = self.current(known.customer_id)
            if other != customer_id and self._should_merge(key, known, other):
                customer_id = self._merge(customer_id, other, f"shared {key.kind}")
        for key in keys:
            known = self.known[(key.kind, key.value)]
            if known is None:
                if key.kind == "user_id" and key is not new_user:
                    continue  # one user id per profile: a second new one in the same call is ignored
                self._new_keys.append((customer_id, key))
                self.known[(key.kind, key.value)] = _Known(customer_id, key.verified)
                if key.kind == "user_id":
                    self._user_holders.add(customer_id)
            elif key.verified and not known.verified and self.current(known.customer_id) == customer_id:
                self._verify.append(key)
                known.verified = True
        seen = self._pending.get(customer_id)
        if seen is not None and seen_at is not None:
            seen[0] = min(seen[0] or seen_at, seen_at)
            seen[1] = max(seen[1] or seen_at, seen_at)
        return customer_id

    def alias(self, previous_id: str, user_id: str, seen_at: datetime | None = None) -> int:
        """Segment `alias`: `previous_id` (a user id or anonymous id) and `user_id` are one person."""
        self.prefetch([Key("user_id", previous_id), Key("anonymous_id", previous_id), Key("user_id", user_id)])
        kind = "user_id" if self.known[("user_id", previous_id)] else "anonymous_id"
        previous, user = Key(kind, previous_id), Key("user_id", user_id)
        old, new = self.known[(previous.kind, previous.value)], self.known[(user.kind, user.value)]
        if old and new:
            if self.current(old.customer_id) != self.current(new.customer_id):
                return self._merge(self.current(new.customer_id), self.current(old.customer_id), "alias")
            return self.current(new.customer_id)
        if old or new:  # the unknown one joins the known one's profile: alias says they are one person
            customer_id = self.current((old or new).customer_id)
            key = user if old else previous
            self._new_keys.append((customer_id, key))
            if key.kind == "user_id":
                self._user_holders.add(customer_id)
            self.known[(key.kind, key.value)] = _Known(customer_id, False)
            return customer_id
        return self.resolve([user, previous], seen_at)

    def current(self, customer_id: int) -> int:
        """Where `customer_id` lives now, following merges and writes made in this transaction."""
        while customer_id in self._redirect:
            customer_id = self._redirect[customer_id]
        return customer_id

    def flush(self) -> None:
        """Write the customers and identities created so far, in bulk."""
        if self._pending:
            now = utcnow()
            placeholders = list(self._pending)
            ids = allocate_ids(self.session, _customers, len(placeholders))
            insert_rows(self.session, _customers,
                        ("id", "traits", "search_text", "created_at", "updated_at", "first_seen_at", "last_seen_at"),
                        [(i, {}, "", now, now, self._pending[p][0] or now, self._pending[p][1] or now)
                         for i, p in zip(ids, placeholders, strict=True)])
            for placeholder, real in zip(placeholders, ids, strict=True):
                self._redirect[placeholder] = real
                if placeholder in self._user_holders:
                    self._user_holders.add(real)
            self.created.extend(ids)
            emit_many(self.session, [("customer.created", cid, {"source": self.source}) for cid in ids])
            self._pending.clear()
        if self._new_keys:
            now = utcnow()
            insert_rows(self.session, _identities, ("customer_id", "kind", "value", "verified", "created_at"),
                        [(self.current(cid), k.kind, k.value, k.verified, now) for cid, k in self._new_keys])
            for key, known in self.known.items():
                if known is not None and known.customer_id < 0:
                    self.known[key] = _Known(self.current(known.customer_id), known.verified)
            self._new_keys.clear()
        if self._merges:
            applied = [(self.current(w), lo, reason) for w, lo, reason in self._merges]
            merge_many(self.session, applied)
            self.merged.extend((w, lo) for w, lo, _ in applied)
            self._merges.clear()
        for key in self._verify:
            self.session.execute(
                sa.update(_identities).where(_identities.c.kind == key.kind, _identities.c.value == key.value)
                .values(verified=True)
            )
        self._verify.clear()

    def _has_user_id(self, customer_id: int) -> bool:
        """Whether the customer (with every profile merged into it in memory so far) has a user id."""
        if customer_id in self._user_holders:
            return True
        members = [customer_id] + [lo for _, lo, _ in self._merges if self.current(lo) == customer_id]
        unread = [m for m in members if m > 0 and m not in self._stored_user]
        if unread:
            holders = set(self.session.scalars(
                sa.select(_identities.c.customer_id).where(
                    _identities.c.customer_id.in_(unread), _identities.c.kind == "user_id"
                )
            ))
            for m in unread:
                self._stored_user[m] = m in holders
        return any(self._stored_user.get(m, False) for m in members)

    def _should_merge(self, key: Key, known: _Known, other: int) -> bool:
        if key.kind == "anonymous_id":
            return not self._has_user_id(other)
        return key.kind in ("email", "phone") and key.verified and known.verified

    def _create(self, seen_at: datetime | None) -> int:
        placeholder = -next(self._placeholders)
        self._pending[placeholder] = [seen_at, seen_at]
        return placeholder

    def _merge(self, winner: int, loser: int, reason: str) -> int:
        """Decide a merge; stored rows move when `flush()` applies all merges in bulk."""
        self._redirect[loser] = winner
        if loser in self._user_holders:
            self._user_holders.add(winner)
        if loser in self._pending:  # created in this transaction: nothing stored to move
            self._pending.pop(loser)
        else:
            self._merges.append((winner, loser, reason))
        for key, known in self.known.items():
            if known is not None and known.customer_id == loser:
                self.known[key] = _Known(winner, known.verified)
        return winner
