"""Importing orders: one row per order, or one row per order line where rows sharing an order id form
one order (a JSON Lines record may carry a `products` list instead).

This is the bulk path: per chunk, one lookup of the orders already stored, one prefetch of the
customers' identities, then executemany INSERTs of orders, items and outbox rows. The rows mean the
same as an `Order Completed` event (`clm.commerce.events.parse_order` reads them) and write the same
facts and `order.completed` events as `clm.commerce.service.record_order`, without its per-order round
trips. Idempotent by order id: an order already stored counts as unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.commerce.events import OrderData, RefundData, parse_order
from clm.commerce.models import Order
from clm.commerce.service import record_orders, record_refund
from clm.customers.identity import IdentityResolver, Key
from clm.customers.models import Customer
from clm.customers.profile import normalize_email, phone_e164, search_text
from clm.imports.mapping import Mapping
from clm.imports.readers import Row
from clm.imports.report import Rejection
from clm.imports.service import Unit, Written, rejection
from clm.imports.values import amount_text, parse_time, whole_number
from clm.lib.errors import FieldError
from clm.lib.money import InvalidMoney, to_minor
from clm.lib.text import fold

STATUSES = {
    "completed": "completed", "complete": "completed", "paid": "completed", "delivered": "completed",
    "success": "completed", "fulfilled": "completed", "hoan thanh": "completed", "da giao": "completed",
    "da thanh toan": "completed",
    "refunded": "refunded", "returned": "refunded", "hoan tien": "refunded", "da hoan tien": "refunded",
    "partially refunded": "partially_refunded",
    "cancelled": "cancelled", "canceled": "cancelled", "huy": "cancelled", "da huy": "cancelled",
}
_ORDER_MONEY = ("total", "subtotal", "discount", "shipping", "tax")
_ITEM_FIELDS = ("sku", "product_name", "quantity", "price")


@lru_cache(maxsize=1024)
def _status(raw: str) -> str | None:
    return STATUSES.get(fold(raw).replace("_", " "))


@dataclass(slots=True)
class OrderRow:
    order: OrderData
    keys: list[Key]
    placed_at: datetime
    refunded: int | None  # None: not refunded; 0: refunded in full; else the amount refunded
    properties: dict[str, Any]


class _Contacts:
    """Email and phone normalisation, memoised: the same customer's contact recurs on many rows,
    and validating it is the slowest step of a row. Bounded, so memory stays constant."""

    def __init__(self, region: str):
        self.email = lru_cache(maxsize=200_000)(self._email)
        self.phone = lru_cache(maxsize=200_000)(lambda raw: self._guard(phone_e164, raw, region))

    @staticmethod
    def _guard(fn, *args) -> str | FieldError:
        try:
            return fn(*args)
        except FieldError as exc:
            return exc

    def _email(self, raw: str) -> str | FieldError:
        return self._guard(normalize_email, raw)


class OrderImporter:
    kind = "orders"

    def __init__(self, mapping: Mapping, *, region: str = "VN", currency: str = "VND",
                 timezone: tzinfo, source: str = "import"):
        self.mapping = mapping
        self.region = region
        self.currency = currency
        self.timezone = timezone
        self.source = source
        self.contacts = _Contacts(region)
        self._order_column = mapping.columns.get("order_id")

    def group_of(self, row: Row) -> Any:
        value = row.values.get(self._order_column) if self._order_column else None
        return value.strip() if isinstance(value, str) else value

    # -- validation (no database) -------------------------------------------------------------

    def prepare(self, rows: list[Row]) -> tuple[list[Unit], list[Rejection]]:
        groups: dict[Any, list[Row]] = {}
        rejected = []
        for row in rows:
            key = self.group_of(row)
            if key is None or key == "":
                reason = row.error or "is required"
                rejected.append(rejection(row, None if row.error else self.mapping.column("order_id"), reason))
            else:
                groups.setdefault(key, []).append(row)
        units = []
        for group in groups.values():
            try:
                units.append(Unit(group, self.parse(group)))
            except _RowError as exc:
                bad = exc.row
                rejected.append(rejection(bad, exc.column, exc.reason))
                for other in group:
                    if other is not bad:
                        rejected.append(rejection(other, None, f"another line of this order (line {bad.line}) "
                                                               "was rejected, so the whole order was"))
        return units, rejected

    def parse(self, rows: list[Row]) -> OrderRow:
        first = rows[0]
        for row in rows:
            if row.error:
                raise _RowError(row, None, row.error)
        ours, extra = self.mapping.read(first.values)
        column = self.mapping.column
        try:
            keys = self._keys(ours)
            if "placed_at" not in ours:
                raise FieldError("placed_at", "is required")
            placed_at = parse_time(ours["placed_at"], "placed_at", self.timezone)
            status = _status(str(ours.get("status", "completed")))
            if status is None:
                raise FieldError("status", f"{ours['status']!r} is not an order status; use completed, "
                                           "refunded, partially_refunded or cancelled")
            if status == "cancelled":
                raise FieldError("status", "the order was cancelled: only completed (or since refunded) "
                                           "orders are imported")
            props: dict[str, Any] = {"order_id": str(ours["order_id"]), "currency": ours.get("currency")}
            for name in ("coupon", "channel"):
                if name in ours:
                    props[name] = ours[name]
            for name in _ORDER_MONEY:
                if name in ours:
                    props[name] = amount_text(ours[name])
        except FieldError as exc:
            raise _RowError(first, column(exc.field or "") if exc.field else None, exc.message) from None
        products, product_rows = self._products(rows, ours)
        props["products"] = products
        try:
            order = parse_order(props, self.currency, prefix="order")
            refunded = self._refunded(status, ours, order.currency)
        except FieldError as exc:
            raise self._order_error(exc, rows, product_rows) from None
        return OrderRow(order, keys, placed_at, refunded, extra)

    def _refunded(self, status: str, ours: dict[str, Any], currency: str) -> int | None:
        amount = None
        if "refunded" in ours:
            try:
                amount = to_minor(amount_text(ours["refunded"]), currency)
            except InvalidMoney as exc:
                raise FieldError("order.refunded", str(exc)) from None
            if amount < 0:
                raise FieldError("order.refunded", "must not be negative")
        if status == "refunded":
            return amount or 0
        if status == "partially_refunded" and not amount:
            raise FieldError("order.refunded", "is required for a partially refunded order (the amount refunded)")
        return amount or None

    def _keys(self, ours: dict[str, Any]) -> list[Key]:
        keys = []
        for name in ("external_id", "user_id"):
            if name in ours:
                keys.append(Key("user_id", str(ours[name])[:255]))
        if "email" in ours:
            email = self.contacts.email(str(ours["email"]))
            if isinstance(email, FieldError):
                raise FieldError("email", email.message)
            keys.append(Key("email", email))
        if "phone" in ours:
            phone = self.contacts.phone(str(ours["phone"]))
            if isinstance(phone, FieldError):
                raise FieldError("phone", phone.message)
            keys.append(Key("phone", phone))
        if not keys:
            raise FieldError(None, "no customer: give external_id, user_id, email or phone")
        return list(dict.fromkeys(keys))

    def _products(self, rows: list[Row], first: dict[str, Any]) -> tuple[list[Any], list[Row]]:
        """Items as Segment `products` dicts, and the row each came from (for error reports)."""
        if "products" in first:  # JSON Lines: a list on the record
            products = first["products"]
            return products, [rows[0]] * (len(products) if isinstance(products, list) else 0)
        products, origin = [], []
        mapping = self.mapping
        for row in rows:
            ours = mapping.read(row.values)[0] if row is not rows[0] else first
            if not any(name in ours for name in _ITEM_FIELDS):
                continue
            item: dict[str, Any] = {"sku": ours.get("sku"), "name": ours.get("product_name")}
            try:
                if "quantity" in ours:
                    item["quantity"] = whole_number(ours["quantity"], "quantity")
            except FieldError as exc:
                raise _RowError(row, mapping.column("quantity"), exc.message) from None
            if "price" in ours:
                item["price"] = amount_text(ours["price"])
            products.append(item)
            origin.append(row)
        return products, origin

    def _order_error(self, exc: FieldError, rows: list[Row], product_rows: list[Row]) -> _RowError:
        field = (exc.field or "").removeprefix("order.")
        if field.startswith("products["):
            index = int(field[len("products["):field.index("]")])
            name = field[field.index("]") + 2:]
            name = {"product_id": "sku", "name": "product_name"}.get(name, name)
            if "products" in self.mapping.columns or not product_rows or "products" in rows[0].values:
                return _RowError(rows[0], self.mapping.column("products"), f"{field}: {exc.message}")
            return _RowError(product_rows[index], self.mapping.column(name), exc.message)
        return _RowError(rows[0], self.mapping.column(field) if field else None, exc.message)

    # -- writing ------------------------------------------------------------------------------

    def write(self, session: Session, units: list[Unit]) -> Written:
        out = Written()
        ids = [u.data.order.order_id for u in units]
        stored = set(session.scalars(sa.select(Order.external_id).where(Order.external_id.in_(ids))))
        fresh = []
        for unit in units:
            if unit.data.order.order_id in stored:
                out.unchanged += len(unit.rows)
            else:
                fresh.append(unit)
        if not fresh:
            return out

        resolver = IdentityResolver(session, self.source)
        resolver.prefetch(k for u in fresh for k in u.data.keys)
        owners = [resolver.resolve(u.data.keys, u.data.placed_at) for u in fresh]
        resolver.flush()
        owners = [resolver.current(cid) for cid in owners]
        self._fill_new_profiles(session, resolver, fresh, owners)
        record_orders(session, [(cid, u.data.order, u.data.placed_at, u.data.properties)
                                for u, cid in zip(fresh, owners, strict=True)])
        for unit in fresh:
            data: OrderRow = unit.data
            if data.refunded is not None:
                record_refund(session, RefundData(data.order.order_id, None, data.refunded or None))
            out.imported += len(unit.rows)
        return out

    def _fill_new_profiles(self, session: Session, resolver: IdentityResolver, units: list[Unit],
                           owners: list[int]) -> None:
        """Profiles created for these orders get the contact columns the order named (one UPDATE)."""
        created = set(resolver.created)
        if not created:
            return
        values: dict[int, dict[str, Any]] = {}
        for unit, cid in zip(units, owners, strict=True):
            if cid in created and cid not in values:
                keys = {k.kind: k.value for k in reversed(unit.data.keys)}
                values[cid] = {"external_id": keys.get("user_id"), "email": keys.get("email"),
                               "phone": keys.get("phone")}
        wanted = [v["external_id"] for v in values.values() if v["external_id"]]
        taken = set(session.scalars(sa.select(Customer.external_id).where(Customer.external_id.in_(wanted))))
        table = Customer.__table__
        params = []
        for cid, v in values.items():
            if v["external_id"] in taken:
                v["external_id"] = None
            v["search"] = search_text(Customer(**v))
            params.append({"cid": cid, **v})
        session.execute(
            sa.update(table).where(table.c.id == sa.bindparam("cid")).values(
                external_id=sa.bindparam("external_id"), email=sa.bindparam("email"),
                phone=sa.bindparam("phone"), search_text=sa.bindparam("search"),
            ),
            params,
        )


class _RowError(Exception):
    def __init__(self, row: Row, column: str | None, reason: str):
        super().__init__(reason)
        self.row, self.column, self.reason = row, column, reason

