"""Hypothesis strategies for rule trees over the values of tests/segments/world.py."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.segments import world as w

DAYS = st.sampled_from([0, 1, 7, 30, 90, 400])
DATES = st.sampled_from(["2025-01-01", "2025-06-14", "2025-06-15", "2025-02-28", "1992-02-29", "2000-07-01"])
NUMBERS = st.sampled_from([0, 1, 2, 2.5, 5, 100, 250_000, 333_333, 1_000_000, -1])
STRINGS = st.sampled_from([*w.HOSTILE, *w.CITIES, *w.NAMES, "gold", "silver", "5", "an", "@shop.vn", "Hà", ""])
WINDOWS = st.one_of(st.none(), st.builds(lambda d: {"last_days": d}, st.sampled_from([1, 7, 30, 90])),
                    st.builds(lambda a, b: {"since": min(a, b), "until": max(a, b)},
                              st.sampled_from(["2025-04-01", "2025-05-20", "2025-06-15"]),
                              st.sampled_from(["2025-05-01", "2025-06-10", "2025-06-20"])))


def comparison(kind: str):
    if kind == "string":
        return st.one_of(
            st.builds(lambda op, v: {"op": op, "value": v},
                      st.sampled_from(["eq", "ne", "contains", "not_contains", "starts_with", "ends_with"]),
                      STRINGS.filter(bool)),
            st.builds(lambda op, v: {"op": op, "value": v}, st.sampled_from(["in", "not_in"]),
                      st.lists(STRINGS.filter(bool), min_size=1, max_size=3)),
            st.builds(lambda op: {"op": op}, st.sampled_from(["exists", "not_exists"])),
        )
    if kind == "number":
        return st.one_of(
            st.builds(lambda op, v: {"op": op, "value": v},
                      st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]), NUMBERS),
            st.builds(lambda a, b: {"op": "between", "value": sorted([a, b])}, NUMBERS, NUMBERS),
            st.builds(lambda op: {"op": op}, st.sampled_from(["exists", "not_exists"])),
        )
    relative = st.builds(lambda op, v: {"op": op, "value": v},
                         st.sampled_from(["within_last_days", "more_than_days_ago", "within_next_days"]
                                         + (["anniversary_within_days"] if kind == "date" else [])), DAYS)
    return st.one_of(
        st.builds(lambda op, v: {"op": op, "value": v}, st.sampled_from(["on", "before", "after"]), DATES),
        st.builds(lambda a, b: {"op": "between", "value": sorted([a, b])}, DATES, DATES),
        st.builds(lambda op: {"op": op}, st.sampled_from(["exists", "not_exists"])), relative,
    )


def json_comparison():
    return st.one_of(
        comparison("string"), comparison("number"),
        st.builds(lambda op: {"op": op}, st.sampled_from(["is_true", "is_false", "exists", "not_exists"])),
        st.builds(lambda op, v: {"op": op, "value": v}, st.sampled_from(["in", "not_in"]),
                  st.lists(NUMBERS, min_size=1, max_size=3)),
    )


def _with(base: dict):
    return lambda extra: {**base, **extra}


def conditions(static_id: int, dynamic_id: int | None = None):
    profile = st.one_of(
        st.sampled_from(["email", "full_name", "city", "gender"]).flatmap(
            lambda f: comparison("string").map(_with({"type": "profile", "field": f}))),
        comparison("date").map(_with({"type": "profile", "field": "birthday"})),
        st.sampled_from(["created_at", "last_seen_at", "first_seen_at"]).flatmap(
            lambda f: comparison("datetime").map(_with({"type": "profile", "field": f}))),
        st.sampled_from(["tier", "score", "vip", "note", "missing"]).flatmap(
            lambda k: json_comparison().map(_with({"type": "profile", "field": f"traits.{k}"}))),
    )
    stage = st.one_of(
        st.builds(lambda op, s: {"type": "stage", "op": op, "stages": s}, st.sampled_from(["in", "not_in"]),
                  st.lists(st.sampled_from(w.STAGES), min_size=1, max_size=2)),
        st.builds(lambda s, d: {"type": "stage_entered", "stage": s, "within_days": d},
                  st.sampled_from(w.STAGES), st.sampled_from([1, 7, 30, 90])),
    )
    prop = st.sampled_from(["category", "price", "nope"]).flatmap(
        lambda p: json_comparison().map(_with({"property": p})))
    event = st.builds(
        lambda name, op, n, window, where: {"type": "event", "name": name, "op": op, "count": n,
                                            "where": where, **({"window": window} if window else {})},
        st.sampled_from(w.EVENTS), st.sampled_from(["at_least", "at_most", "exactly"]), st.integers(0, 3),
        WINDOWS, st.lists(prop, max_size=2))
    orders = st.one_of(
        st.sampled_from(["count", "revenue", "average_order_value"]).flatmap(
            lambda m: comparison("number").map(_with({"type": "orders", "metric": m}))),
        st.sampled_from(["first_order_at", "last_order_at"]).flatmap(
            lambda m: comparison("datetime").map(_with({"type": "orders", "metric": m}))),
    )
    bought = st.builds(lambda key, value, window: {"type": "bought", key: value, **({"window": window} if window else {})},
                       st.just("sku"), st.sampled_from(w.SKUS), WINDOWS) | st.builds(
        lambda value, window: {"type": "bought", "category": value, **({"window": window} if window else {})},
        st.sampled_from(w.CATEGORIES), WINDOWS)
    score = st.one_of(
        comparison("string").map(_with({"type": "score", "field": "rfm_segment"})).filter(
            lambda c: c["op"] in ("eq", "ne", "in", "not_in", "exists", "not_exists")),
        st.sampled_from(["r_score", "p_alive", "churn_risk", "predicted_clv_12m"]).flatmap(
            lambda f: comparison("number").map(_with({"type": "score", "field": f}))),
    )
    consent = st.builds(lambda ch: {"type": "consent", "channel": ch, "purpose": "marketing"},
                        st.sampled_from(["email", "zalo", "sms"]))
    refs = [static_id] + ([dynamic_id] if dynamic_id else [])
    segment = st.builds(lambda i: {"type": "segment", "segment_id": i}, st.sampled_from(refs))
    return st.one_of(profile, stage, event, orders, bought, score, consent, segment)


def trees(static_id: int, dynamic_id: int | None = None, depth: int = 3):
    leaf = conditions(static_id, dynamic_id)
    return st.recursive(leaf, lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(children, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
        children.map(lambda x: {"not": x}),
    ), max_leaves=6)
