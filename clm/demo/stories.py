"""One customer's history as the Segment messages a shop's website, app and till would have sent.

A story: the first visit (anonymous page views and product views, then a sign-up that identifies the
visitor; or a Facebook lead form; or a walk-in at the till), then browsing sessions, abandoned carts,
orders with coupons and payment methods, the odd refund, and, from loyal customers, reviews and
referrals. Messages are plain dicts with the times in them; the loader sends them through ingestion.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from clm.demo.behaviour import DAY, Arrivals, purchase_times
from clm.demo.catalogue import Catalogue, Product
from clm.demo.people import People

_MEDIUM = {"facebook": "paid_social", "zalo": "zalo_oa", "google": "cpc", "referral": "referral",
           "walk-in": "offline", "direct": "none", "email": "email"}
# Where a returning customer's visit comes from.
_RETURN_SOURCES = ("direct", "zalo", "facebook", "google", "email")
_RETURN_CDF = np.cumsum([0.42, 0.28, 0.15, 0.10, 0.05])
_PAGES = (("Trang chủ", "/"), ("Danh mục", "/danh-muc"), ("Tìm kiếm", "/tim-kiem"), ("Khuyến mãi", "/khuyen-mai"))
_PAY_ONLINE = (("cod", 0.5), ("bank_transfer", 0.65), ("momo", 0.8), ("zalopay", 0.9), ("vnpay", 0.95), ("card", 1.0))
_PAY_STORE = (("cash", 0.6), ("card", 0.8), ("momo", 0.9), ("vnpay", 1.0))
_ITEMS_CDF = (0.55, 0.82, 0.94, 1.0)
_RATING_CDF = ((1, 0.03), (2, 0.07), (3, 0.17), (4, 0.47), (5, 1.0))
_REVIEWS = {1: "Hàng không giống hình, thất vọng.", 2: "Giao chậm, chất lượng tạm.", 3: "Tạm ổn so với giá.",
            4: "Hàng đẹp, giao nhanh.", 5: "Rất hài lòng, sẽ ủng hộ shop tiếp!"}
_SIGNUP = {"facebook": "facebook", "zalo": "zalo", "google": "google", "referral": "phone"}
_STORES = ("Cửa hàng Quận 1", "Cửa hàng Cầu Giấy", "Cửa hàng Hải Châu")


@dataclass(frozen=True)
class Window:
    """The history's span (POSIX seconds) and how busy each day in it is."""

    start: float
    end: float
    multipliers: np.ndarray

    @property
    def peak(self) -> float:
        return float(self.multipliers.max())


def _pick(cdf, u: float):
    for value, edge in cdf:
        if u < edge:
            return value
    return cdf[-1][0]


class Storyteller:
    """Builds stories for the customers of one chunk; `rnd` drives every per-event choice."""

    def __init__(self, catalogue: Catalogue, window: Window, seed: int, rnd: random.Random, *, browsing: bool = True):
        self.catalogue = catalogue
        self.window = window
        self.seed = seed
        self.rnd = rnd
        self.browsing = browsing
        self._contexts: dict[tuple[str, int, str], dict] = {}

    # -- building blocks ------------------------------------------------------------------------
    def _context(self, source: str, t: float, device: str) -> dict:
        month = datetime.fromtimestamp(t, UTC).strftime("%Y-%m")
        key = (source, hash(month), device)
        ctx = self._contexts.get(key)
        if ctx is None:
            campaign = {"source": source, "medium": _MEDIUM[source]}
            if source not in ("direct", "walk-in"):
                campaign["name"] = f"{source}-{month}"
            ctx = {"campaign": campaign, "locale": "vi-VN", "channel": device,
                   "library": {"name": "clm-demo", "version": "1"}}
            self._contexts[key] = ctx
        return ctx

    def _add(self, out: list, t: float, msg: dict[str, Any]) -> None:
        out.append((t, len(out), msg))

    def _session_pages(self, out, t, who: dict, ctx: dict, views: int, favourite: int) -> tuple[float, list[Product]]:
        rnd = self.rnd
        title, path = _PAGES[int(rnd.random() * len(_PAGES))]
        self._add(out, t, {"type": "page", **who, "name": title, "context": ctx,
                           "properties": {"path": path, "url": f"https://shop.example.vn{path}", "title": title}})
        seen = []
        for _ in range(views):
            t += rnd.uniform(20, 180)
            product = self.catalogue.pick(rnd.random(), rnd.random(), favourite)
            seen.append(product)
            self._add(out, t, {"type": "track", **who, "event": "Product Viewed", "context": ctx,
                               "properties": product.properties()})
        return t, seen

    def _order(self, out, t, who, ctx, oid: str, favourite: int, first: bool, in_store: bool) -> tuple[float, dict]:
        rnd = self.rnd
        n = 1 + sum(rnd.random() >= edge for edge in _ITEMS_CDF[:-1])
        lines: dict[str, tuple[Product, int]] = {}
        for _ in range(n):
            product = self.catalogue.pick(rnd.random(), rnd.random(), favourite)
            quantity = 1 if rnd.random() < 0.85 else (2 if rnd.random() < 0.8 else 3)
            lines[product.sku] = (product, quantity)
        items = [p.properties(q) for p, q in lines.values()]
        subtotal = sum(p.price * q for p, q in lines.values())
        if not in_store:
            for item in items:
                t += rnd.uniform(15, 120)
                self._add(out, t, {"type": "track", **who, "event": "Product Added", "context": ctx,
                                   "properties": item})
            t += rnd.uniform(30, 300)
            self._add(out, t, {"type": "track", **who, "event": "Checkout Started", "context": ctx,
                               "properties": {"products": items, "value": subtotal, "currency": "VND"}})
        coupon, discount = self._coupon(t, subtotal, first)
        discount = discount // 1000 * 1000  # shops round discounts to 1.000 ₫
        shipping = 0 if in_store or subtotal >= 499_000 or coupon == "FREESHIP" else rnd.choice((15_000, 25_000, 30_000))
        total = subtotal - discount + shipping
        t += rnd.uniform(60, 600)
        props = {"order_id": oid, "total": total, "subtotal": subtotal, "discount": discount, "shipping": shipping,
                 "currency": "VND", "products": items,
                 "payment_method": _pick(_PAY_STORE if in_store else _PAY_ONLINE, rnd.random()),
                 "affiliation": rnd.choice(_STORES) if in_store else ("Ứng dụng" if ctx["channel"] == "mobile" else "Website")}
        if coupon:
            props["coupon"] = coupon
        self._add(out, t, {"type": "track", **who, "event": "Order Completed", "context": ctx, "properties": props})
        return t, props

    def _coupon(self, t: float, subtotal: int, first: bool) -> tuple[str | None, int]:
        rnd = self.rnd
        when = datetime.fromtimestamp(t + 7 * 3600, UTC)  # the local date
        if first and rnd.random() < 0.25:
            return "WELCOME10", min(50_000, subtotal // 10 // 1000 * 1000)
        if (when.month, when.day) == (11, 11) and rnd.random() < 0.6:
            return "SALE1111", min(subtotal // 2, 111_000)
        if (when.month, when.day) == (12, 12) and rnd.random() < 0.6:
            return "SALE1212", min(subtotal // 2, 121_000)
        if rnd.random() < 0.10:
            return "FREESHIP", 0
        if rnd.random() < 0.04:
            return "GIAM50K", min(50_000, subtotal // 2)
        return None, 0

    def _source(self) -> str:
        return _RETURN_SOURCES[int(np.searchsorted(_RETURN_CDF, self.rnd.random()))]

    # -- the story ------------------------------------------------------------------------------
    def story(self, people: People, arrivals: Arrivals, k: int) -> list[dict]:
        """Every message of customer k of the chunk, in time order, with their message ids."""
        rnd, w = self.rnd, self.window
        index, uid = int(people.index[k]), people.user_id[k]
        channel, t0 = str(arrivals.channel[k]), float(arrivals.acquired[k])
        favourite, lam, p = int(arrivals.favourite[k]), float(arrivals.lam[k]), float(arrivals.p[k])
        walk_in = channel == "walk-in"
        device = "pos" if walk_in else ("mobile" if rnd.random() < 0.7 else "web")
        ctx = self._context(channel, t0, device)
        anon = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        user, visitor = {"userId": uid}, {"anonymousId": anon}
        traits = self._traits(people, k, channel, index)
        out: list = []
        first_at = t0 + float(arrivals.first_purchase_delay[k])
        buys_at_once = first_at - t0 < 3600
        signed_up_at = t0  # from then on the customer browses logged in (as a rule)

        if walk_in:
            self._add(out, t0, {"type": "identify", **user, "traits": traits, "context": ctx})
        elif channel == "facebook" and not buys_at_once and rnd.random() < 0.5:
            # A Facebook lead ad: name and phone, no account yet; a later sign-up finds them by phone.
            lead = {k2: traits[k2] for k2 in ("name", "phone", "facebook_id", "acquisition_channel") if k2 in traits}
            self._add(out, t0, {"type": "identify", **visitor, "traits": lead, "context": ctx})
            self._add(out, t0 + 1, {"type": "track", **visitor, "event": "Lead Form Submitted", "context": ctx,
                                    "properties": {"form": "Đăng ký nhận ưu đãi", "campaign": ctx["campaign"]["name"]}})
            signed_up_at = first_at - 1500  # before the visit that ends in the first order
            if signed_up_at < w.end:
                self._add(out, signed_up_at, {"type": "identify", **user, "traits": traits, "context": ctx})
                self._add(out, signed_up_at + 1, {"type": "track", **user, "event": "Signed Up", "context": ctx,
                                                "properties": {"method": "phone"}})
        else:
            t, _ = self._session_pages(out, t0 - rnd.uniform(120, 900), visitor, ctx, 1 + int(rnd.random() * 3),
                                       favourite)
            self._add(out, t + 30, {"type": "identify", **user, **visitor, "traits": traits, "context": ctx})
            self._add(out, t + 31, {"type": "track", **user, "event": "Signed Up", "context": ctx,
                                    "properties": {"method": _SIGNUP.get(channel, "phone")}})

        times, gone = purchase_times(rnd, first_at, lam, p, start=w.start, end=w.end, multipliers=w.multipliers,
                                     peak=w.peak)
        for n, t in enumerate(times):
            in_store = walk_in and (n == 0 or rnd.random() < 0.7)
            if n == 0 and (walk_in or buys_at_once):
                octx = ctx
            else:
                octx = self._context("walk-in" if in_store else self._source(), t, "pos" if in_store else device)
                if not in_store:
                    t, _ = self._session_pages(out, t - rnd.uniform(300, 1200), user, octx,
                                               1 + int(rnd.random() * 3), favourite)
            t, order = self._order(out, t, user, octx, f"DH{index + 1:07d}-{n + 1:02d}", favourite, n == 0, in_store)
            self._after_order(out, t, user, octx, order, n, in_store)
        if len(times) >= 3 and rnd.random() < 0.4:
            t = rnd.uniform(times[2], min(w.end, times[2] + 60 * DAY))
            if t < w.end:
                self._add(out, t, {"type": "track", **user, "event": "Referral Sent", "context": ctx,
                                   "properties": {"channel": rnd.choice(("zalo", "facebook", "sms")),
                                                  "referral_code": f"REF-{uid}"}})
        if self.browsing:
            self._browse(out, t0, gone, lam, user, visitor, device, favourite, signed_up_at)
        return self._finish(out, index)

    def _after_order(self, out, t, user, ctx, order, n, in_store) -> None:
        rnd, end = self.rnd, self.window.end
        if not in_store and rnd.random() < 0.03:
            when = t + rnd.uniform(2, 14) * DAY
            if when < end:
                props = {"order_id": order["order_id"], "currency": "VND",
                         "reason": rnd.choice(("Sai kích cỡ", "Hàng lỗi", "Không đúng mô tả"))}
                if len(order["products"]) > 1 and rnd.random() < 0.5:
                    item = order["products"][-1]
                    props["total"] = item["price"] * item["quantity"]
                self._add(out, when, {"type": "track", **user, "event": "Order Refunded", "context": ctx,
                                      "properties": props})
        if n >= 1 and rnd.random() < 0.25:
            when = t + rnd.uniform(3, 10) * DAY
            if when < end:
                rating = _pick(_RATING_CDF, rnd.random())
                item = rnd.choice(order["products"])
                self._add(out, when, {"type": "track", **user, "event": "Review Submitted", "context": ctx,
                                      "properties": {"order_id": order["order_id"], "product_id": item["product_id"],
                                                     "rating": rating, "review_body": _REVIEWS[rating]}})

    def _browse(self, out, t0, gone, lam, user, visitor, device, favourite, signed_up_at) -> None:
        """Visits that end without an order: some only look, some leave a cart behind."""
        rnd = self.rnd
        span = max(0.0, gone - t0) / DAY
        visits = min(12, _poisson(rnd, (lam * 1.2 + 0.004) * span))
        for _ in range(visits):
            t = t0 + rnd.random() * span * DAY
            # Walk-in customers never browsed anonymously before giving their phone at the till.
            who = user if t >= signed_up_at and (device == "pos" or rnd.random() < 0.7) else visitor
            ctx = self._context(self._source(), t, device if device != "pos" else "mobile")
            t, seen = self._session_pages(out, t, who, ctx, 1 + int(rnd.random() * 3), favourite)
            if rnd.random() < 0.25:
                item = seen[-1].properties(1)
                t += rnd.uniform(15, 90)
                self._add(out, t, {"type": "track", **who, "event": "Product Added", "context": ctx, "properties": item})
                if rnd.random() < 0.4:
                    self._add(out, t + rnd.uniform(30, 200), {
                        "type": "track", **who, "event": "Checkout Started", "context": ctx,
                        "properties": {"products": [item], "value": item["price"], "currency": "VND"}})

    def _traits(self, people: People, k: int, channel: str, index: int) -> dict[str, Any]:
        rnd = self.rnd
        phone = people.phone[k]
        traits: dict[str, Any] = {
            "name": people.full_name[k],
            "phone": phone if rnd.random() < 0.8 else f"{phone[:4]} {phone[4:7]} {phone[7:]}",
            "city": str(people.city[k]),
            "acquisition_channel": channel,
        }
        if rnd.random() < 0.9:
            traits["gender"] = "Nữ" if people.gender[k] == "female" else "Nam"
        if rnd.random() < 0.85:
            traits["birthday"] = people.birthday[k].isoformat()
        for key, value in (("email", people.email[k]), ("zalo_id", people.zalo_id[k]),
                           ("facebook_id", people.facebook_id[k])):
            if value:
                traits[key] = value
        if channel == "referral" and index > 0:
            traits["referred_by"] = f"KH{int(rnd.random() * index) + 1:07d}"
        return traits

    def _finish(self, out: list, index: int) -> list[dict]:
        out.sort(key=lambda e: (e[0], e[1]))
        messages = []
        for n, (t, _, msg) in enumerate(out):
            msg["messageId"] = f"demo-{self.seed}-{index}-{n}"
            msg["timestamp"] = datetime.fromtimestamp(t, UTC)
            messages.append(msg)
        return messages


def _poisson(rnd: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rnd.gauss(mean, math.sqrt(mean))))
    limit, k, prod = math.exp(-mean), 0, rnd.random()
    while prod > limit:
        k += 1
        prod *= rnd.random()
    return k
