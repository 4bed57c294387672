"""Rule trees to SQLAlchemy expressions: one boolean over `customers` (outer-joined to `customer_stats`
and, when a tree uses scores, `customer_scores`), the same on SQLite and PostgreSQL.

Nothing from a rule tree is pasted into SQL: values travel as bound parameters, strings match literally
(`instr` on SQLite; LIKE with escaped wildcards on PostgreSQL, both case-sensitive), and JSON traits are
compared only when their JSON type fits the comparison. Windowed event counts read the `event_daily`
rollups; a property filter needs the raw `events`, which are then read by name and time window (and by
customer, through the (customer_id, timestamp) index, when a few customers are re-checked).

Every positive comparison yields true or false, never NULL, so `not` and the negative operators (`ne`,
`not_in`, ...) are exact complements: a missing value is "not equal". `evaluate.py` is the same
semantics in plain Python; tests hold the two together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from clm.analytics.models import CustomerScore
from clm.commerce.models import Order, OrderItem, Product
from clm.customers.models import Consent, Customer
from clm.db.base import UTCDateTime
from clm.lifecycle.models import CustomerStats, StageHistory
from clm.loyalty.models import Lot, Member
from clm.segments import rules as r
from clm.segments.models import SegmentMember
from clm.tracking.models import Event, EventDaily

_c = Customer.__table__
_s = CustomerStats.__table__
_d = EventDaily.__table__
_e = Event.__table__
_h = StageHistory.__table__
_o = Order.__table__
_i = OrderItem.__table__
_p = Product.__table__
_consents = Consent.__table__
_m = SegmentMember.__table__
_lm = Member.__table__
_lots = Lot.__table__
_LOYALTY_COLUMNS = {"tier": _lm.c.tier, "available": _lm.c.available, "lifetime": _lm.c.earned}
SCORES = CustomerScore.__table__
_ORDER_COLUMNS = {"count": _s.c.orders_count, "revenue": _s.c.revenue, "first_order_at": _s.c.first_order_at,
                  "last_order_at": _s.c.last_order_at}
_FALSE = sa.false()


class CycleError(ValueError):
    pass


@dataclass
class Context:
    """What compiling (and evaluating) a tree needs besides the tree: the database, the clock, the business
    time zone, how to find a referenced segment, and (optionally) the few customers being re-checked."""

    dialect: str
    now: datetime
    timezone: str = "Asia/Ho_Chi_Minh"
    # segment id -> (kind, rule tree or None for a static list); None: no such segment
    segment: Callable[[int], tuple[str, Any] | None] = lambda _id: None
    scope_ids: Sequence[int] | None = None
    # or, instead of the list itself, a function giving "column is one of the re-checked customers" (the
    # list bound once as a parameter, however many conditions read it)
    scope: Callable[[sa.ColumnElement], sa.ColumnElement[bool]] | None = None
    _stack: list[int] = field(default_factory=list)

    @property
    def today(self) -> date:
        """Today in the business time zone (birthdays, dates typed by people)."""
        return self.now.astimezone(ZoneInfo(self.timezone)).date()

    def day_start(self, day: date) -> datetime:
        """The UTC instant at which `day` begins in the business time zone."""
        return datetime.combine(day, time(0), ZoneInfo(self.timezone)).astimezone(UTC)


# -- windows, shared with evaluate.py ----------------------------------------------------------------------

def window_days(window: r.Window | None, now: datetime) -> tuple[date | None, date | None]:
    """The first and last UTC day a window covers (None: open). Event rollups are UTC days."""
    if window is None:
        return None, None
    if window.last_days:
        today = now.astimezone(UTC).date()
        return today - timedelta(days=window.last_days - 1), None
    return window.since, window.until


def utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


def anniversary_days(today: date, days: int) -> list[str]:
    """The "MM-DD" of today and the next `days` days; 29 February joins 1 March in common years."""
    out = []
    for k in range(min(days, 366) + 1):
        d = today + timedelta(days=k)
        out.append(d.strftime("%m-%d"))
        if d.month == 3 and d.day == 1 and not _leap(d.year):
            out.append("02-29")
    return sorted(set(out))


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def instant_bounds(op: str, value: Any, ctx: Context) -> tuple[datetime | None, datetime | None]:
    """[low, high) in UTC for a datetime comparison (None: open); dates are whole local days."""
    if op in ("on", "before", "after"):
        start = ctx.day_start(r.as_date(value))
        end = ctx.day_start(r.as_date(value) + timedelta(days=1))
        return {"on": (start, end), "before": (None, start), "after": (end, None)}[op]
    if op == "between":
        return ctx.day_start(r.as_date(value[0])), ctx.day_start(r.as_date(value[1]) + timedelta(days=1))
    if op == "within_last_days":
        return ctx.now - timedelta(days=value), ctx.now + timedelta(microseconds=1)
    if op == "more_than_days_ago":
        return None, ctx.now - timedelta(days=value)
    if op == "within_next_days":
        return ctx.now, ctx.now + timedelta(days=value, microseconds=1)
    raise ValueError(op)


def date_bounds(op: str, value: Any, ctx: Context) -> tuple[date | None, date | None]:
    """[low, high] inclusive for a calendar-date comparison (None: open)."""
    today = ctx.today
    if op == "on":
        return r.as_date(value), r.as_date(value)
    if op == "before":
        return None, r.as_date(value) - timedelta(days=1)
    if op == "after":
        return r.as_date(value) + timedelta(days=1), None
    if op == "between":
        return r.as_date(value[0]), r.as_date(value[1])
    if op == "within_last_days":
        return today - timedelta(days=value), today
    if op == "more_than_days_ago":
        return None, today - timedelta(days=value + 1)
    if op == "within_next_days":
        return today, today + timedelta(days=value)
    raise ValueError(op)


# -- the compiler ------------------------------------------------------------------------------------------

def uses_scores(node: Any, ctx: Context) -> bool:
    return any(isinstance(c, r.ScoreCondition) for c in expand(node, ctx))


def expand(node: Any, ctx: Context):
    """Every condition of the tree, with referenced dynamic segments' conditions included."""
    for c in r.conditions(node):
        if isinstance(c, r.SegmentCondition):
            found = ctx.segment(c.segment_id)
            if found and found[0] == "dynamic":
                if c.segment_id in ctx._stack:
                    raise CycleError(c.segment_id)
                ctx._stack.append(c.segment_id)
                try:
                    yield from expand(found[1], ctx)
                finally:
                    ctx._stack.pop()
                continue
        yield c


def compile_rules(node: Any, ctx: Context) -> sa.ColumnElement[bool]:
    """The tree as a boolean over customers (`_c`), customer_stats and (if used) customer_scores."""
    if isinstance(node, r.All):
        return sa.and_(*(compile_rules(c, ctx) for c in node.all))
    if isinstance(node, r.AnyOf):
        return sa.or_(*(compile_rules(c, ctx) for c in node.any))
    if isinstance(node, r.Not):
        return sa.not_(compile_rules(node.not_, ctx))
    return _condition(node, ctx)


def members_query(node: Any, ctx: Context, where: sa.ColumnElement | None = None) -> sa.Select:
    """SELECT the ids of live customers the tree matches (within `where`, e.g. an id range)."""
    source = _c.outerjoin(_s, _s.c.customer_id == _c.c.id)
    if uses_scores(node, ctx):
        source = source.outerjoin(SCORES, SCORES.c.customer_id == _c.c.id)
    query = sa.select(_c.c.id).select_from(source).where(_c.c.merged_into_id.is_(None), compile_rules(node, ctx))
    if ctx.scope_ids is not None:
        query = query.where(_c.c.id.in_(list(ctx.scope_ids)))
    return query.where(where) if where is not None else query


def _scoped(query: sa.Select, column: sa.ColumnElement, ctx: Context) -> sa.Select:
    if ctx.scope is not None:
        return query.where(ctx.scope(column))
    return query.where(column.in_(list(ctx.scope_ids))) if ctx.scope_ids is not None else query


def _condition(c: Any, ctx: Context) -> sa.ColumnElement[bool]:
    if isinstance(c, r.ProfileCondition):
        if c.field.startswith("traits."):
            return _json(_c.c.traits, c.field[7:], c, ctx)
        return _compare(_c.c[c.field], c, r.field_type(c), ctx)
    if isinstance(c, r.StageCondition):
        positive = sa.and_(_c.c.lifecycle_stage.is_not(None), _c.c.lifecycle_stage.in_(c.stages))
        return positive if c.op == "in" else sa.not_(positive)
    if isinstance(c, r.StageEnteredCondition):
        q = sa.select(_h.c.customer_id).where(_h.c.to_stage == c.stage,
                                              _h.c.changed_at >= _t(ctx.now - timedelta(days=c.within_days)))
        return _c.c.id.in_(_scoped(q, _h.c.customer_id, ctx))
    if isinstance(c, r.EventCondition):
        return _event(c, ctx)
    if isinstance(c, r.OrdersCondition):
        return _orders(c, ctx)
    if isinstance(c, r.BoughtCondition):
        items = _i.join(_o, _o.c.id == _i.c.order_id)
        if c.sku is not None:
            q = sa.select(_i.c.customer_id).select_from(items).where(_i.c.sku == c.sku)
        else:
            q = sa.select(_i.c.customer_id).select_from(items.join(_p, _p.c.id == _i.c.product_id)).where(
                _p.c.category == c.category)
        q = q.where(_o.c.status != "refunded")
        first, last = window_days(c.window, ctx.now)
        if first:
            q = q.where(_o.c.placed_at >= _t(utc_midnight(first)))
        if last:
            q = q.where(_o.c.placed_at < _t(utc_midnight(last + timedelta(days=1))))
        return _c.c.id.in_(_scoped(q, _i.c.customer_id, ctx))
    if isinstance(c, r.ScoreCondition):
        return _compare(SCORES.c[c.field], c, r.field_type(c), ctx)
    if isinstance(c, r.LoyaltyCondition):
        return _loyalty(c, ctx)
    if isinstance(c, r.ConsentCondition):
        newer = _consents.alias("newer")
        q = sa.select(_consents.c.customer_id).where(
            _consents.c.channel == c.channel, _consents.c.purpose == c.purpose, _consents.c.granted.is_(True),
            ~sa.exists().where(newer.c.customer_id == _consents.c.customer_id, newer.c.channel == c.channel,
                               newer.c.purpose == c.purpose,
                               sa.or_(newer.c.recorded_at > _consents.c.recorded_at,
                                      sa.and_(newer.c.recorded_at == _consents.c.recorded_at,
                                              newer.c.id > _consents.c.id))))
        return _c.c.id.in_(_scoped(q, _consents.c.customer_id, ctx))
    if isinstance(c, r.SegmentCondition):
        found = ctx.segment(c.segment_id)
        if found is None:
            return _FALSE
        if found[0] == "dynamic":
            if c.segment_id in ctx._stack:
                raise CycleError(c.segment_id)
            ctx._stack.append(c.segment_id)
            try:
                return compile_rules(found[1], ctx)
            finally:
                ctx._stack.pop()
        q = sa.select(_m.c.customer_id).where(_m.c.segment_id == c.segment_id, _m.c.exited_at.is_(None))
        return _c.c.id.in_(_scoped(q, _m.c.customer_id, ctx))
    raise TypeError(c)


def _t(value: datetime) -> sa.BindParameter:
    return sa.bindparam(None, value, type_=UTCDateTime)


def _orders(c: r.OrdersCondition, ctx: Context) -> sa.ColumnElement[bool]:
    if c.metric != "average_order_value":
        column = _ORDER_COLUMNS[c.metric]
        if c.metric in ("count", "revenue") and _zero_satisfies(c):
            # without stats a customer has 0 orders; only when 0 can match does that need saying (a plain
            # column lets the database filter customer_stats first instead of outer-joining all of it)
            column = sa.func.coalesce(column, 0)
        return _compare(column, c, r.field_type(c), ctx)
    # AOV = revenue / orders, compared as revenue against value × orders: no division, the same floats
    # as the Python evaluator, and customers without orders have none.
    count, revenue = _s.c.orders_count, _s.c.revenue
    has = sa.and_(count.is_not(None), count > 0)
    if c.op in r.NEGATIVE_OPS:
        return sa.not_(_orders(c.model_copy(update={"op": r.NEGATIVE_OPS[c.op]}), ctx))
    if c.op == "exists":
        return has

    def times(v):
        return sa.literal(float(v), sa.Float) * count

    positive = {
        "eq": lambda: revenue == times(c.value), "gt": lambda: revenue > times(c.value),
        "gte": lambda: revenue >= times(c.value), "lt": lambda: revenue < times(c.value),
        "lte": lambda: revenue <= times(c.value),
        "between": lambda: sa.and_(revenue >= times(c.value[0]), revenue <= times(c.value[1])),
        "in": lambda: sa.or_(*(revenue == times(v) for v in c.value)),
    }[c.op]()
    return sa.and_(has, positive)


def expiring_window(c: r.LoyaltyCondition, ctx: Context) -> tuple[datetime, datetime]:
    """(after, until]: the lots expiring in the next `within_days` days, as `ledger.expiring` counts them."""
    return ctx.now, ctx.now + timedelta(days=c.within_days or 0)


def _loyalty(c: r.LoyaltyCondition, ctx: Context) -> sa.ColumnElement[bool]:
    """A member figure read by a correlated sub-query (one index lookup per customer, by primary key or the
    open-lots index); outside the program a customer has no tier and 0 points."""
    if c.field == "expiring":
        after, until = expiring_window(c, ctx)
        value = sa.select(sa.func.coalesce(sa.func.sum(_lots.c.remaining), 0)).where(
            _lots.c.customer_id == _c.c.id, _lots.c.remaining > 0, _lots.c.expires_at.is_not(None),
            _lots.c.expires_at > _t(after), _lots.c.expires_at <= _t(until)).correlate(_c).scalar_subquery()
    else:
        value = sa.select(_LOYALTY_COLUMNS[c.field]).where(_lm.c.customer_id == _c.c.id).correlate(
            _c).scalar_subquery()
        if c.field != "tier":
            value = sa.func.coalesce(value, 0)
    return _compare(value, c, r.field_type(c), ctx)


def _zero_satisfies(c: r.Comparison) -> bool:
    """Whether 0 passes the positive form of a number comparison (a negative one is its complement)."""
    op, v = r.NEGATIVE_OPS.get(c.op, c.op), c.value
    return {"exists": lambda: True, "eq": lambda: v == 0, "gt": lambda: 0 > v, "gte": lambda: 0 >= v,
            "lt": lambda: 0 < v, "lte": lambda: 0 <= v, "between": lambda: v[0] <= 0 <= v[1],
            "in": lambda: 0 in v}[op]()


def _event(c: r.EventCondition, ctx: Context) -> sa.ColumnElement[bool]:
    first, last = window_days(c.window, ctx.now)
    if c.where and ctx.dialect == "sqlite":
        return _event_per_customer(c, first, last, ctx)
    if c.where:
        name = sa.or_(_e.c.name == c.name, sa.and_(_e.c.name.is_(None), _e.c.type == c.name))
        q = sa.select(_e.c.customer_id).where(name, *(_json(_e.c.properties, f.property, f, ctx) for f in c.where))
        if first:
            q = q.where(_e.c.timestamp >= _t(utc_midnight(first)))
        if last:
            q = q.where(_e.c.timestamp < _t(utc_midnight(last + timedelta(days=1))))
        q, customer, total = _scoped(q, _e.c.customer_id, ctx), _e.c.customer_id, sa.func.count()
    else:
        q = sa.select(_d.c.customer_id).where(_d.c.name == c.name)
        if first:
            q = q.where(_d.c.day >= first)
        if last:
            q = q.where(_d.c.day <= last)
        q, customer, total = _scoped(q, _d.c.customer_id, ctx), _d.c.customer_id, sa.func.sum(_d.c.count)
    n = c.count
    if c.op == "at_least":
        if n == 0:
            return sa.true()
        return _c.c.id.in_(q if n == 1 else q.group_by(customer).having(total >= n))
    if c.op == "at_most":
        return _c.c.id.not_in(q.group_by(customer).having(total > n))
    if n == 0:
        return _c.c.id.not_in(q)
    return _c.c.id.in_(q.group_by(customer).having(total == n))


def _event_per_customer(c: r.EventCondition, first: date | None, last: date | None,
                        ctx: Context) -> sa.ColumnElement[bool]:
    """An event count with property filters, read customer by customer (a correlated sub-query) through the
    (customer_id, timestamp) index. SQLite would otherwise run `id IN (SELECT ...)` by reading every event
    of that name in the window (no index covers name and time, and the properties are in the row): at a
    million customers, most of the events table. PostgreSQL plans the IN form as a semi-join itself."""
    name = sa.or_(_e.c.name == c.name, sa.and_(_e.c.name.is_(None), _e.c.type == c.name))
    where = [_e.c.customer_id == _c.c.id, name, *(_json(_e.c.properties, f.property, f, ctx) for f in c.where)]
    if first:
        where.append(_e.c.timestamp >= _t(utc_midnight(first)))
    if last:
        where.append(_e.c.timestamp < _t(utc_midnight(last + timedelta(days=1))))
    n = c.count
    if c.op == "at_least" and n == 0:
        return sa.true()
    if (c.op == "at_least" and n == 1) or (c.op == "exactly" and n == 0):
        found = sa.exists(sa.select(sa.literal(1)).where(*where).correlate(_c))
        return found if c.op == "at_least" else sa.not_(found)
    # count only up to n + 1 rows: enough to compare with n, and a busy customer's history is not read whole
    capped = sa.select(sa.literal(1).label("one")).where(*where).correlate(_c).limit(n + 1).subquery()
    total = sa.select(sa.func.count()).select_from(capped).scalar_subquery()
    return {"at_least": lambda: total >= n, "at_most": lambda: total <= n, "exactly": lambda: total == n}[c.op]()


def _compare(col: sa.ColumnElement, c: r.Comparison, kind: str, ctx: Context) -> sa.ColumnElement[bool]:
    """A typed comparison on a plain column; negative operators are exact complements."""
    if c.op in r.NEGATIVE_OPS:
        return sa.not_(_compare(col, c.model_copy(update={"op": r.NEGATIVE_OPS[c.op]}), kind, ctx))
    present = col.is_not(None)
    if c.op == "exists":
        return present
    return sa.and_(present, _positive(col, c, kind, ctx))


def _positive(col, c: r.Comparison, kind: str, ctx: Context) -> sa.ColumnElement[bool]:
    op, v = c.op, c.value
    if kind == "string":
        return _string(col, op, v, ctx)
    if kind == "number":
        n = _number
        return {"eq": lambda: col == n(v), "gt": lambda: col > n(v), "gte": lambda: col >= n(v),
                "lt": lambda: col < n(v), "lte": lambda: col <= n(v),
                "between": lambda: sa.and_(col >= n(v[0]), col <= n(v[1])),
                "in": lambda: col.in_([n(x) for x in v])}[op]()
    if kind == "date":
        if op == "anniversary_within_days":
            fmt = (sa.func.strftime("%m-%d", col) if ctx.dialect == "sqlite" else sa.func.to_char(col, "MM-DD"))
            return fmt.in_(anniversary_days(ctx.today, v))
        low, high = date_bounds(op, v, ctx)
        return sa.and_(*([col >= low] if low else []), *([col <= high] if high else []), sa.true())
    low_t, high_t = instant_bounds(op, v, ctx)
    return sa.and_(*([col >= _t(low_t)] if low_t else []), *([col < _t(high_t)] if high_t else []), sa.true())


def _number(v: int | float) -> sa.BindParameter:
    """A number bound with its own type, not the column's: 250000 compared with a SMALLINT score must not
    be cast to SMALLINT (PostgreSQL would refuse it as out of range)."""
    return sa.bindparam(None, v, type_=sa.BigInteger() if isinstance(v, int) else sa.Float())


def _string(col, op: str, v: Any, ctx: Context) -> sa.ColumnElement[bool]:
    if op == "eq":
        return col == v
    if op == "in":
        return col.in_(v)
    sqlite = ctx.dialect == "sqlite"
    if op == "contains":  # SQLite's LIKE ignores ASCII case; instr is exact, as on PostgreSQL
        return sa.func.instr(col, v) > 0 if sqlite else col.contains(v, autoescape=True)
    if op == "starts_with":
        return sa.func.substr(col, 1, len(v)) == v if sqlite else col.startswith(v, autoescape=True)
    if op == "ends_with":
        return sa.and_(sa.func.length(col) >= len(v), sa.func.substr(col, -len(v)) == v) if sqlite else (
            col.endswith(v, autoescape=True))
    raise ValueError(op)


def _json(doc: sa.ColumnElement, key: str, c: r.Comparison, ctx: Context) -> sa.ColumnElement[bool]:
    """A comparison on one key of a JSON object column (traits, event properties), made only when the JSON
    value's type fits: a number never equals a string, "5" is not greater than 4."""
    if c.op in r.NEGATIVE_OPS:
        return sa.not_(_json(doc, key, c.model_copy(update={"op": r.NEGATIVE_OPS[c.op]}), ctx))
    kind = r.field_type(c)
    if ctx.dialect == "sqlite":
        path = sa.bindparam(None, '$."' + key + '"', type_=sa.String)
        jtype = sa.func.coalesce(sa.func.json_type(doc, path), "")
        types = {"string": ("text",), "number": ("integer", "real"), "bool": ("true", "false")}
        text_value = sa.func.json_extract(doc, path)
        number_value = sa.cast(sa.func.json_extract(doc, path), sa.Float)
        is_true = jtype == "true"
    else:
        k = sa.bindparam(None, key, type_=sa.String)
        jtype = sa.func.coalesce(sa.func.jsonb_typeof(doc.op("->")(k)), "")
        types = {"string": ("string",), "number": ("number",), "bool": ("boolean",)}
        text_value = doc.op("->>", return_type=sa.Text)(k)
        number_value = sa.cast(text_value, sa.Float)
        is_true = sa.and_(jtype == "boolean", text_value == "true")
    if c.op == "exists":
        return sa.and_(jtype != "", jtype != "null")
    if c.op in ("is_true", "is_false"):
        return is_true if c.op == "is_true" else sa.and_(jtype.in_(types["bool"]), sa.not_(is_true))
    type_ok = jtype.in_(types[kind])
    value = text_value if kind == "string" else number_value
    # CASE, not AND: PostgreSQL may evaluate either side of an AND first, and a cast of "abc" fails.
    return sa.case((type_ok, _positive(value, c, kind, ctx)), else_=_FALSE)
