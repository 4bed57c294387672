"""The ingestion pipeline: validate, deduplicate, resolve identity, write facts and outbox rows.

The `events` table is itself the log of tracked events: its ids only grow and a row commits with
everything else, so reactions tail it by id exactly as they tail the outbox, and no `event.tracked`
row is written twice. The outbox carries the rarer domain events (customer.created, customer.updated,
customer.merged, order.completed, order.refunded).

One call handles one request's messages in the caller's transaction. Each message is validated on its
own before anything is written, so a bad one is reported and the others land. Everything written for
the accepted messages (events, rollups, profiles, orders, outbox rows) commits together or not at all.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import datetime
from types import SimpleNamespace
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.commerce.events import COMMERCE_EVENTS, OrderData, ProductData, RefundData, parse_commerce
from clm.commerce.service import record_orders, record_refund, upsert_products
from clm.customers.identity import IdentityResolver, Key
from clm.customers.models import Customer
from clm.customers.profile import apply_profile, normalize_email, phone_e164, read_traits
from clm.db.bulk import executemany, insert_prepared, insert_rows, json_text, sqlite_time, update_rows
from clm.db.idlist import list_value, one_of
from clm.lib.clock import as_utc, utcnow
from clm.lib.errors import FieldError
from clm.outbox.service import emit_many
from clm.tracking.models import Event, EventDaily
from clm.tracking.schemas import Message, parse_message

_events = Event.__table__
_daily = EventDaily.__table__
_EVENT_COLUMNS = ("message_id", "customer_id", "type", "name", "properties", "context", "timestamp",
                  "received_at", "source")
# One fixed statement per request, straight through the driver: it runs for most customers of a batch.
_SEEN_UPDATE = (
    "UPDATE customers SET"
    " last_seen_at = CASE WHEN last_seen_at IS NULL OR last_seen_at < ? THEN ? ELSE last_seen_at END,"
    " first_seen_at = CASE WHEN first_seen_at IS NULL OR first_seen_at > ? THEN ? ELSE first_seen_at END"
    " WHERE id = ?"
)
_DAILY_UPSERT = 'ON CONFLICT (customer_id, name, day) DO UPDATE SET count = event_daily.count + excluded.count'
_VERIFIED_FLAGS = {"email": ("email_verified", "emailVerified"), "phone": ("phone_verified", "phoneVerified")}
_TEXT_OR_NUMBER = (str, int)
_EXTERNAL_KINDS = {"zalo": "zalo", "zalo_id": "zalo", "facebook": "facebook", "facebook_id": "facebook",
                   "messenger": "facebook", "psid": "facebook"}


@dataclass
class Rejection:
    index: int
    message_id: str | None
    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "messageId": self.message_id, "field": self.field, "message": self.message}


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    customer_ids: list[int] = field(default_factory=list)


class _Sent(NamedTuple):
    """What the writer reads of a message (an item crosses to the writer process without the rest)."""

    messageId: str  # noqa: N815 (Segment's names, as on Message)
    type: str
    userId: str | None  # noqa: N815
    previousId: str | None  # noqa: N815


@dataclass
class _Item:
    index: int
    msg: Message
    timestamp: datetime
    keys: list[Key]
    profile: dict[str, Any] | None
    commerce: Any
    received_at: datetime
    name: str | None = None
    properties_json: str = "{}"  # the event row's JSON, serialised while validating (outside the writer)
    context_json: str = "{}"
    customer_id: int = 0
    timestamp_text: str = ""  # the timestamp as SQLite stores it (`sqlite_time`), made while validating

    def __reduce__(self):
        # What crosses to the writer process: plain tuples, which pickle and unpickle in C, and of the
        # message only what the writer reads. Rebuilding costs the writer process (the one that
        # limits ingestion on SQLite), so nothing is rebuilt through Python-level constructors.
        msg = self.msg
        return _rebuild, ((self.index, (msg.messageId, msg.type, msg.userId, msg.previousId), self.timestamp,
                           tuple(map(tuple, self.keys)), self.profile, _commerce_state(self.commerce),
                           self.received_at, self.name, self.properties_json, self.context_json, self.customer_id,
                           self.timestamp_text),)


_new_tuple = tuple.__new__
_PRODUCT_FIELDS = tuple(f.name for f in dataclass_fields(ProductData))


def _commerce_state(commerce: Any) -> Any:
    if isinstance(commerce, list):  # products of a product or cart event: the common case
        return tuple(tuple(getattr(p, f) for f in _PRODUCT_FIELDS) for p in commerce)
    return commerce


def _product(values: tuple) -> ProductData:
    product = object.__new__(ProductData)
    product.__dict__ = dict(zip(_PRODUCT_FIELDS, values, strict=True))
    return product


def _rebuild(state: tuple) -> _Item:
    index, sent, timestamp, keys, profile, commerce, received_at, name, pjson, cjson, customer_id, ttext = state
    if isinstance(commerce, tuple):
        commerce = [_product(values) for values in commerce]
    return _Item(index, _new_tuple(_Sent, sent), timestamp, [_new_tuple(Key, k) for k in keys], profile, commerce,
                 received_at, name, pjson, cjson, customer_id, ttext)


def event_timestamp(msg: Message, received_at: datetime, batch_sent_at: datetime | None) -> datetime:
    """Segment's clock-skew correction: timestamp = receivedAt - (sentAt - originalTimestamp)."""
    original = msg.timestamp or msg.originalTimestamp
    sent_at = msg.sentAt or batch_sent_at
    if original is None:
        return received_at
    original = as_utc(original)
    if sent_at is None:
        return original
    return received_at - (as_utc(sent_at) - original)


def identity_keys(msg: Message, profile: dict[str, Any] | None, region: str) -> list[Key]:
    keys: list[Key] = []
    if msg.userId:
        keys.append(Key("user_id", msg.userId))
    if msg.anonymousId:
        keys.append(Key("anonymous_id", msg.anonymousId))
    traits = msg.traits or (msg.context.get("traits") if isinstance(msg.context.get("traits"), dict) else {}) or {}
    if profile is not None:
        for kind in ("email", "phone"):
            if profile.get(kind):
                verified = any(traits.get(flag) is True for flag in _VERIFIED_FLAGS[kind])
                keys.append(Key(kind, profile[kind], verified))
    elif traits:  # context.traits on a track call: identities only, never rejected for their format
        for kind, reader in (("email", normalize_email), ("phone", lambda v: phone_e164(v, region))):
            if traits.get(kind):
                try:
                    keys.append(Key(kind, reader(traits[kind])))
                except FieldError:
                    pass
    if traits:
        for key, kind in _EXTERNAL_KINDS.items():
            value = traits.get(key)
            if isinstance(value, _TEXT_OR_NUMBER) and str(value):
                keys.append(Key(kind, str(value)))
    for ext in msg.context.get("externalIds") or ():
        if isinstance(ext, dict) and ext.get("type") in _EXTERNAL_KINDS and ext.get("id"):
            keys.append(Key(_EXTERNAL_KINDS[ext["type"]], str(ext["id"])))
    return list(dict.fromkeys(keys))


def _prepare_one(index: int, raw: Any, forced_type: str | None, received_at: datetime,
                 batch_sent_at: datetime | None, batch_context: dict | None, region: str, currency: str,
                 max_bytes: int) -> _Item:
    if max_bytes and len(orjson.dumps(raw)) > max_bytes:
        raise FieldError(None, f"message is larger than {max_bytes // 1024} KB", code="too_large")
    msg = parse_message(raw, forced_type)
    if batch_context and not msg.context:
        msg.context = batch_context
    if msg.messageId is None:
        msg.messageId = f"clm-{uuid.uuid4()}"
    profile = read_traits(msg.traits, region) if msg.type == "identify" and msg.traits else None
    commerce = None
    if msg.type == "track" and msg.event in COMMERCE_EVENTS:
        commerce = parse_commerce(msg.event, msg.properties, currency)
    timestamp = event_timestamp(msg, received_at, batch_sent_at)
    keys = [] if msg.type == "alias" else identity_keys(msg, profile, region)
    name, properties = _event_fields(msg)
    return _Item(index, msg, timestamp, keys, profile, commerce, received_at, name, json_text(properties),
                 json_text(msg.context), timestamp_text=sqlite_time(timestamp))


def prepare(raws: list[Any], *, received_at: datetime, forced_type: str | None = None,
            batch_sent_at: datetime | None = None, batch_context: dict | None = None, region: str = "VN",
            currency: str = "VND", max_event_bytes: int = 32 * 1024) -> tuple[list[_Item], list[Rejection]]:
    """Validate messages without touching the database: the accepted items and the rejections."""
    items: list[_Item] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(raws):
        try:
            items.append(_prepare_one(index, raw, forced_type, received_at, batch_sent_at, batch_context,
                                      region, currency, max_event_bytes))
        except FieldError as exc:
            mid = raw.get("messageId") if isinstance(raw, dict) else None
            rejected.append(Rejection(index, mid if isinstance(mid, str) else None, exc.field, exc.message))
    return items, rejected


def store(session: Session, items: list[_Item], source: str = "api") -> list[_Item]:
    """Write prepared items in the caller's transaction; returns the new ones (the rest were duplicates)."""
    if not items:
        return []
    # Deduplicate on messageId: against what is stored and within these items.
    ids = [it.msg.messageId for it in items]
    dialect = session.get_bind().dialect.name
    stored = set(session.scalars(_STORED_IDS[dialect], {"ids": list_value(ids, dialect)}))
    fresh: list[_Item] = []
    for it in items:
        if it.msg.messageId not in stored:
            stored.add(it.msg.messageId)
            fresh.append(it)
    if not fresh:
        return []

    resolver = IdentityResolver(session, source)
    resolver.prefetch(k for it in fresh for k in it.keys)
    for it in fresh:
        if it.msg.type == "alias":
            it.customer_id = resolver.alias(it.msg.previousId, it.msg.userId, it.timestamp)
        else:
            it.customer_id = resolver.resolve(it.keys, it.timestamp)
    resolver.flush()
    for it in fresh:  # placeholders become real ids; earlier items follow later merges
        it.customer_id = resolver.current(it.customer_id)

    _apply_profiles(session, fresh, set(resolver.created))
    _write_events(session, fresh, source)
    _apply_commerce(session, fresh)
    return fresh


def ingest(session: Session, raws: list[Any], *, received_at: datetime, forced_type: str | None = None,
           batch_sent_at: datetime | None = None, batch_context: dict | None = None, region: str = "VN",
           currency: str = "VND", source: str = "api", max_event_bytes: int = 32 * 1024) -> IngestResult:
    """Validate and store Segment messages in the caller's transaction; the caller commits."""
    items, rejected = prepare(raws, received_at=received_at, forced_type=forced_type, batch_sent_at=batch_sent_at,
                              batch_context=batch_context, region=region, currency=currency,
                              max_event_bytes=max_event_bytes)
    fresh = store(session, items, source)
    return IngestResult(accepted=len(fresh), duplicates=len(items) - len(fresh), rejected=rejected,
                        customer_ids=sorted({it.customer_id for it in fresh}))


_PROFILE_COLUMNS = ("external_id", "email", "phone", "full_name", "given_name", "family_name", "birthday", "gender",
                    "city", "traits")
_customers = Customer.__table__
# The hot reads, each with its list of keys bound as ONE parameter: a fixed statement, compiled and
# prepared once, instead of an IN list of a thousand placeholders expanded on every request.
_STORED_IDS = {d: sa.select(_events.c.message_id).where(one_of(_events.c.message_id, "ids", d, sa.String))
               for d in ("sqlite", "postgresql")}
_PROFILES = {d: sa.select(_customers.c.id, *(_customers.c[name] for name in _PROFILE_COLUMNS))
             .where(one_of(_customers.c.id, "ids", d)) for d in ("sqlite", "postgresql")}


def _apply_profiles(session: Session, items: list[_Item], created: set[int]) -> None:
    """Profile traits from identify calls; first/last seen of the customers that existed before.

    Written with one UPDATE per set of changed columns, through the driver: a request's identifies
    touch hundreds of profiles, and the ORM's unit of work cost more than the database's own work.
    """
    last_seen: dict[int, _Item] = {}  # customer -> its latest item in this request
    first_seen: dict[int, _Item] = {}
    changes = []
    wanted = {it.customer_id for it in items if it.profile}
    loaded: dict[int, SimpleNamespace] = {}
    if wanted:
        dialect = session.get_bind().dialect.name
        for row in session.execute(_PROFILES[dialect], {"ids": list_value(wanted, dialect)}).all():
            loaded[row.id] = SimpleNamespace(**row._mapping)
    changed_by_customer: dict[int, set[str]] = {}
    for it in items:
        cid = it.customer_id
        if cid not in created:  # new customers were written with their first and last seen
            last = last_seen.get(cid)
            if last is None or it.timestamp > last.timestamp:
                last_seen[cid] = it
            first = first_seen.get(cid)
            if first is None or it.timestamp < first.timestamp:
                first_seen[cid] = it
        if it.profile:
            customer = loaded[cid]
            if it.profile.get("external_id"):
                owner = session.scalar(sa.select(Customer.id).where(Customer.external_id == it.profile["external_id"]))
                if owner not in (None, cid):
                    it.profile = {k: v for k, v in it.profile.items() if k != "external_id"}
            changed = apply_profile(customer, it.profile)
            if changed:
                changes.append(("customer.updated", cid, {"fields": changed}))
                changed_by_customer.setdefault(cid, set()).update(changed)
    _write_profiles(session, loaded, changed_by_customer)
    # Rows in id order: concurrent writers (PostgreSQL) then lock customers in the same order, never in a cycle.
    seen = _item_time_text if session.get_bind().dialect.name == "sqlite" else _item_time
    rows = []
    for c in sorted(last_seen):
        last, first = seen(last_seen[c]), seen(first_seen[c])
        rows.append((last, last, first, first, c))
    executemany(session, _SEEN_UPDATE, rows)
    emit_many(session, changes)


def _item_time(it: _Item) -> datetime:
    return it.timestamp


def _item_time_text(it: _Item) -> str:
    return it.timestamp_text or sqlite_time(it.timestamp)


def _write_profiles(session: Session, loaded: dict[int, SimpleNamespace], changed: dict[int, set[str]]) -> None:
    if not changed:
        return
    now = utcnow()
    groups: dict[tuple[str, ...], list[tuple]] = {}
    for cid, fields in sorted(changed.items()):
        names = tuple(sorted(fields)) + ("search_text",)
        customer = loaded[cid]
        groups.setdefault(names, []).append((*(getattr(customer, n) for n in names), now, cid))
    for names, rows in groups.items():
        update_rows(session, _customers, (*names, "updated_at"), rows)
    # ORM objects of these customers loaded earlier in the transaction would now be stale.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Customer) and obj.id in changed:
            session.expire(obj)


def _event_fields(msg: Message) -> tuple[str | None, dict[str, Any]]:
    """The event row's name and properties for a message."""
    name = msg.event if msg.type == "track" else msg.name if msg.type in ("page", "screen") else None
    properties = msg.properties
    if msg.type in ("identify", "group"):
        properties = {"traits": msg.traits, **({"groupId": msg.groupId} if msg.groupId else {})}
    elif msg.type == "alias":
        properties = {"previousId": msg.previousId}
    if msg.category:
        properties = {**properties, "category": msg.category}
    return name, properties


def _write_events(session: Session, items: list[_Item], source: str) -> None:
    as_text = session.get_bind().dialect.name == "sqlite"
    rows = []
    daily: Counter[tuple[int, str, Any]] = Counter()
    received, received_value = None, None  # one request's items share their received_at
    for it in items:
        msg = it.msg
        if it.received_at is not received:
            received = it.received_at
            received_value = sqlite_time(received) if as_text else received
        rows.append((msg.messageId, it.customer_id, msg.type, it.name, it.properties_json, it.context_json,
                     _item_time_text(it) if as_text else it.timestamp, received_value, source))
        daily[(it.customer_id, it.name or msg.type, it.timestamp.date())] += 1
    insert_prepared(session, _events, _EVENT_COLUMNS, rows)
    insert_rows(session, _daily, ("customer_id", "name", "day", "count"),
                [(c, n, d, k) for (c, n, d), k in daily.items()], on_conflict=_DAILY_UPSERT)


def _apply_commerce(session: Session, items: list[_Item]) -> None:
    products: list[ProductData] = []
    orders = []
    for it in items:
        data = it.commerce
        if isinstance(data, OrderData):
            orders.append((it.customer_id, data, it.timestamp, {"message_id": it.msg.messageId}))
        elif isinstance(data, RefundData):
            record_orders(session, orders)  # a refund may follow its order in the same batch
            orders = []
            record_refund(session, data)
        elif isinstance(data, list):
            products.extend(data)
    record_orders(session, orders)
    upsert_products(session, products)
