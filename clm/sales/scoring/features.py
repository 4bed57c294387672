"""Lead features from the customer's own data, as of a cut-off time (no peeking past it).

For a lead being scored the cut-off is now; for a closed deal used in training it is when the lead
came in (or the opportunity was opened), so the deal's own order and later visits never teach the
model. Features, all per customer:

- ``events:<name>:<w>d``: tracked events of that name in the `w` days up to the cut-off (the daily
  rollup, so no raw events are scanned), for the event names the spec lists;
- ``pages:30d``: pages viewed in the 30 days up to the cut-off;
- ``source:<source>``, ``campaign:<name>`` / ``campaign:other``: the lead's source and campaign;
- ``has_email``, ``has_phone``: contact points on the profile;
- ``orders``, ``revenue``: orders before the cut-off and their total less refunds;
- ``days_known``: days from first seen to the cut-off.

Counts and amounts enter the model as log(1 + x); reasons quote the raw value.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.commerce.models import Order
from clm.customers.models import Customer
from clm.db.idlist import list_value, one_of
from clm.sales.models import SOURCES
from clm.tracking.models import Event, EventDaily

WINDOWS = (7, 30, 90)
PAGE_WINDOW = 30
DEFAULT_EVENTS = ("Lead Form Submitted", "Product Viewed", "Product Added", "Checkout Started",
                  "Email Opened", "Email Clicked", "Message Received")
CHUNK = 5000  # customers per pass; their ids are ONE bound parameter (clm.db.idlist), not 5,000
_LOG_PREFIXES = ("events:", "pages:")
_LOG_NAMES = {"orders", "revenue", "days_known"}


@dataclass(frozen=True)
class Sample:
    customer_id: int
    cutoff: datetime
    source: str
    campaign: str | None


@dataclass
class FeatureSpec:
    events: list[str] = field(default_factory=lambda: list(DEFAULT_EVENTS))
    campaigns: list[str] = field(default_factory=list)

    def names(self) -> list[str]:
        return ([f"events:{e}:{w}d" for e in self.events for w in WINDOWS] + [f"pages:{PAGE_WINDOW}d"]
                + [f"source:{s}" for s in SOURCES] + [f"campaign:{c}" for c in self.campaigns]
                + ["campaign:other", "has_email", "has_phone", "orders", "revenue", "days_known"])

    def to_params(self) -> dict:
        return {"events": self.events, "campaigns": self.campaigns}

    @classmethod
    def from_params(cls, params: dict) -> FeatureSpec:
        return cls(list(params.get("events", DEFAULT_EVENTS)), list(params.get("campaigns", [])))


def build_spec(session: Session, samples: list[Sample], max_events: int = 12, max_campaigns: int = 10,
               min_campaign: int = 5) -> FeatureSpec:
    """The event names most customers of `samples` have (in the 90 days to their cut-off), and the
    campaigns at least `min_campaign` samples came from."""
    reach: Counter[str] = Counter()
    ed = EventDaily.__table__
    dialect = _dialect(session)
    for part in _chunks(samples):
        ids = sorted({s.customer_id for s in part})
        lo = min(s.cutoff for s in part).date() - timedelta(days=max(WINDOWS))
        hi = max(s.cutoff for s in part).date()
        reach.update(name for (name,) in session.execute(
            sa.select(ed.c.name).where(one_of(ed.c.customer_id, "ids", dialect), ed.c.day >= lo, ed.c.day <= hi)
            .group_by(ed.c.customer_id, ed.c.name), {"ids": list_value(ids, dialect)}))
    events = [name for name, _ in reach.most_common(max_events)]
    campaigns = Counter(s.campaign for s in samples if s.campaign)
    return FeatureSpec(events, [c for c, n in campaigns.most_common(max_campaigns) if n >= min_campaign])


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _in(session: Session, column, ids: list[int]) -> tuple[sa.ColumnElement[bool], dict]:
    """`column` is one of `ids`, as one bound parameter: `= ANY(:ids)` on PostgreSQL, json_each on SQLite.
    (An IN list of 5,000 placeholders cost more to compile, send and parse than the query itself.)"""
    dialect = _dialect(session)
    return one_of(column, "ids", dialect), {"ids": list_value(ids, dialect)}


def _chunks(samples: list[Sample]):
    for start in range(0, len(samples), CHUNK):
        yield samples[start:start + CHUNK]


def raw_matrix(session: Session, samples: list[Sample], spec: FeatureSpec) -> np.ndarray:
    """The raw feature values, one row per sample in `spec.names()` order."""
    names = spec.names()
    col = {n: i for i, n in enumerate(names)}
    R = np.zeros((len(samples), len(names)))
    event_cols = {e: [(w, col[f"events:{e}:{w}d"]) for w in WINDOWS] for e in spec.events}
    campaigns = set(spec.campaigns)
    for offset in range(0, len(samples), CHUNK):
        part = samples[offset:offset + CHUNK]
        by_customer: dict[int, list[tuple[int, Sample]]] = defaultdict(list)
        for i, s in enumerate(part, start=offset):
            by_customer[s.customer_id].append((i, s))
            j = col.get(f"source:{s.source}")
            if j is not None:
                R[i, j] = 1.0
            if s.campaign:
                R[i, col[f"campaign:{s.campaign}" if s.campaign in campaigns else "campaign:other"]] = 1.0
        ids = sorted(by_customer)
        lo = min(s.cutoff for s in part)
        hi = max(s.cutoff for s in part)
        _events(session, R, by_customer, ids, event_cols, lo, hi)
        _pages(session, R, by_customer, ids, col[f"pages:{PAGE_WINDOW}d"], lo, hi)
        _orders(session, R, by_customer, ids, col["orders"], col["revenue"], hi)
        _profiles(session, R, by_customer, ids, col)
    return R


def _events(session, R, by_customer, ids, event_cols, lo: datetime, hi: datetime) -> None:
    if not event_cols:
        return
    ed = EventDaily.__table__
    among, params = _in(session, ed.c.customer_id, ids)
    rows = session.execute(sa.select(ed.c.customer_id, ed.c.name, ed.c.day, ed.c.count).where(
        among, ed.c.name.in_(list(event_cols)),
        ed.c.day >= lo.date() - timedelta(days=max(WINDOWS)), ed.c.day <= hi.date()), params)
    for customer_id, name, day, count in rows:
        for i, s in by_customer[customer_id]:
            delta = (s.cutoff.date() - day).days
            if delta < 0:
                continue
            for w, j in event_cols[name]:
                if delta < w:
                    R[i, j] += count


def _pages(session, R, by_customer, ids, j: int, lo: datetime, hi: datetime) -> None:
    window = timedelta(days=PAGE_WINDOW)
    among, params = _in(session, Event.customer_id, ids)
    rows = session.execute(sa.select(Event.customer_id, Event.timestamp).where(
        among, Event.type == "page", Event.timestamp >= lo - window, Event.timestamp <= hi), params)
    for customer_id, at in rows:
        for i, s in by_customer[customer_id]:
            if s.cutoff - window <= at <= s.cutoff:
                R[i, j] += 1


def _orders(session, R, by_customer, ids, j_orders: int, j_revenue: int, hi: datetime) -> None:
    among, params = _in(session, Order.customer_id, ids)
    rows = session.execute(sa.select(Order.customer_id, Order.placed_at, Order.total - Order.refunded).where(
        among, Order.placed_at < hi), params)
    for customer_id, at, amount in rows:
        for i, s in by_customer[customer_id]:
            if at < s.cutoff:
                R[i, j_orders] += 1
                R[i, j_revenue] += max(0, amount or 0)


def _profiles(session, R, by_customer, ids, col) -> None:
    among, params = _in(session, Customer.id, ids)
    rows = session.execute(sa.select(Customer.id, Customer.email.is_not(None), Customer.phone.is_not(None),
                                     sa.func.coalesce(Customer.first_seen_at, Customer.created_at))
                           .where(among), params)
    for customer_id, has_email, has_phone, first in rows:
        for i, s in by_customer[customer_id]:
            R[i, col["has_email"]] = float(bool(has_email))
            R[i, col["has_phone"]] = float(bool(has_phone))
            if first is not None:
                R[i, col["days_known"]] = max(0.0, (s.cutoff - first).total_seconds() / 86400)


def transform(names: list[str], R: np.ndarray) -> np.ndarray:
    """What the model sees: log(1 + x) for counts, amounts and days; indicators as they are."""
    X = np.array(R, dtype=float, copy=True)
    logged = [i for i, n in enumerate(names) if n.startswith(_LOG_PREFIXES) or n in _LOG_NAMES]
    X[:, logged] = np.log1p(np.maximum(X[:, logged], 0.0))
    return X


_SOURCE_LABELS = {
    "web_form": ("biểu mẫu web", "web form"), "facebook_lead_ads": ("Facebook Lead Ads", "Facebook Lead Ads"),
    "zalo": ("Zalo", "Zalo"), "referral": ("giới thiệu", "referral"), "event": ("sự kiện", "event"),
    "import": ("nhập từ tệp", "import"), "manual": ("nhập tay", "manual entry"),
}


def describe(name: str, value: float) -> dict[str, str]:
    """The feature and its raw value in words, Vietnamese and English."""
    v = f"{value:,.0f}"
    if name.startswith("events:"):
        event, days = name[len("events:"):].rsplit(":", 1)
        days = days.removesuffix("d")
        return {"vi": f"{v} lần “{event}” trong {days} ngày qua", "en": f"{v} × “{event}” in the last {days} days"}
    if name.startswith("pages:"):
        return {"vi": f"đã xem {v} trang trong {PAGE_WINDOW} ngày qua",
                "en": f"{v} pages viewed in the last {PAGE_WINDOW} days"}
    if name.startswith("source:"):
        vi, en = _SOURCE_LABELS.get(name[len("source:"):], (name, name))
        return ({"vi": f"nguồn: {vi}", "en": f"source: {en}"} if value else
                {"vi": f"nguồn không phải {vi}", "en": f"source other than {en}"})
    if name == "campaign:other":
        return ({"vi": "từ một chiến dịch ít gặp", "en": "from an uncommon campaign"} if value else
                {"vi": "không từ chiến dịch ít gặp", "en": "not from an uncommon campaign"})
    if name.startswith("campaign:"):
        campaign = name[len("campaign:"):]
        return ({"vi": f"chiến dịch “{campaign}”", "en": f"campaign “{campaign}”"} if value else
                {"vi": f"không từ chiến dịch “{campaign}”", "en": f"not from campaign “{campaign}”"})
    if name in ("has_email", "has_phone"):
        what_vi, what_en = ("email", "an email address") if name == "has_email" else ("số điện thoại", "a phone number")
        return ({"vi": f"có {what_vi}", "en": f"has {what_en}"} if value else
                {"vi": f"không có {what_vi}", "en": f"no {what_en}"})
    if name == "orders":
        return {"vi": f"{v} đơn hàng trước đó", "en": f"{v} earlier orders"}
    if name == "revenue":
        return {"vi": f"đã mua {v} ₫ trước đó", "en": f"₫{v} bought before"}
    if name == "days_known":
        return {"vi": f"đã biết khách {v} ngày", "en": f"known for {v} days"}
    return {"vi": f"{name} = {v}", "en": f"{name} = {v}"}
